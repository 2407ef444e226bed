"""`pension-cert match`: compare two face images, or every pair of a CSV list (models loaded once)."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import PipelineError
from service.adapters.cli.common import CliError, emit, file_problem, read_csv_rows, require_media

if TYPE_CHECKING:  # imported where used: building the parser must not load numpy, OpenCV or onnxruntime
    from pipelines.face_match import FaceMatcher, FaceObservation


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("match", help="face similarity of two images, or of the pairs in a CSV")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="IMAGE_A IMAGE_B")
    p.add_argument("--pairs", type=Path, help="CSV with columns path_a,path_b (extra columns ignored)")
    p.add_argument("--root", type=Path, default=Path("."), help="directory the CSV paths are relative to")
    p.add_argument("--pack", help="model pack (default: $PENSION_CERT_MODEL_PACK or 'default')")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no flip test-time augmentation")
    p.set_defaults(func=_run)


def build_matcher(pack: str | None, flip: bool) -> FaceMatcher:
    from models.packs import load_pack  # lazy: the face models and onnxruntime load only when a command runs
    from pipelines.face_match import FaceMatcher, MatchConfig

    return FaceMatcher(load_pack(pack), MatchConfig(flip_tta=flip))


def _run(args: argparse.Namespace) -> int:
    if args.pairs is not None:
        if args.images:
            raise CliError("give either two images or --pairs, not both")
        return _run_pairs(args)
    if len(args.images) != 2:
        raise CliError("match needs exactly two images: IMAGE_A IMAGE_B (or --pairs CSV)")
    for image in args.images:
        require_media(Path(image), "image")  # a missing file or a PDF is refused before the models load
    from pipelines.media import load_image  # lazy: numpy and Pillow

    matcher = build_matcher(args.pack, args.flip)
    reference = matcher.observe(load_image(args.images[0]))
    probe = matcher.observe(load_image(args.images[1]))
    result = matcher.compare(reference, [probe])
    out = {"image_a": args.images[0], "image_b": args.images[1], **result.to_dict()}
    out["probe"] = probe.summary()
    emit(out)
    return 0


def _run_pairs(args: argparse.Namespace) -> int:
    rows = read_csv_rows(args.pairs, ("path_a", "path_b"))
    from pipelines.face_match import FaceObservation, cosine  # lazy: numpy, OpenCV, onnxruntime
    from pipelines.media import load_image

    matcher = build_matcher(args.pack, args.flip)
    thresholds = matcher.thresholds
    cache: dict[str, FaceObservation | CliError] = {}  # an image's face, or why it has none (code, detail)

    def observe(rel: str) -> FaceObservation | CliError:
        if rel not in cache:
            # A missing file has its own code (FILE_NOT_FOUND), as in every batch, not MEDIA_CORRUPT.
            problem = file_problem(args.root / rel)
            if problem is not None:
                cache[rel] = problem
                return problem
            try:
                # A pair list scores every pair it can: with several faces the most prominent one is used
                # and the line carries a FACE_MULTIPLE warning instead of failing.
                cache[rel] = matcher.observe(load_image(args.root / rel), allow_multiple=True)
            except PipelineError as exc:
                cache[rel] = CliError(exc.detail, code=exc.reason.value)
        return cache[rel]

    for row in rows:
        a, b = observe(row["path_a"]), observe(row["path_b"])
        out: dict[str, object] = {"path_a": row["path_a"], "path_b": row["path_b"]}
        failed = next((x for x in (a, b) if isinstance(x, CliError)), None)
        if failed is not None:
            out.update(similarity=None, band=None, error=failed.code, detail=failed.detail)
        elif isinstance(a, FaceObservation) and isinstance(b, FaceObservation):
            sim = cosine(a.embedding, b.embedding)
            out.update(similarity=round(sim, 6), band=thresholds.band(sim).value)
            if a.faces_in_image > 1 or b.faces_in_image > 1:
                out["warnings"] = ["FACE_MULTIPLE"]
        emit(out)
    return 0
