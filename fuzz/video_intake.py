"""atheris: video intake (PyAV open, validation, sparse decode) only raises documented MediaError codes."""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["pipelines"]):
    from pipelines.errors import PipelineError
    from pipelines.liveness.video import SamplingConfig, VideoLimits, VideoReader

from fuzz.harness import expect_media_error, main

LIMITS, SAMPLING = VideoLimits(), SamplingConfig()


def test_one_input(data: bytes) -> None:
    try:
        reader = VideoReader(data, LIMITS, SAMPLING)
        try:
            for _ in reader.frames():
                pass
        finally:
            reader.close()
    except PipelineError as exc:
        expect_media_error(exc)


if __name__ == "__main__":
    main(test_one_input)
