"""atheris: image intake (Pillow header checks, EXIF rotation, decode) only raises documented MediaError codes."""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["pipelines"]):
    from pipelines.errors import PipelineError
    from pipelines.media import decode_image

from fuzz.harness import expect_media_error, main


def test_one_input(data: bytes) -> None:
    try:
        image = decode_image(data)
    except PipelineError as exc:
        expect_media_error(exc)
    else:
        if image.ndim != 3 or image.shape[2] != 3:
            raise RuntimeError(f"decoded to shape {image.shape}")


if __name__ == "__main__":
    main(test_one_input)
