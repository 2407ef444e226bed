"""Image intake: decode bytes or files to BGR uint8 arrays, EXIF-rotated, with cheap size limits.

Decompression bombs and huge-dimension images are refused from the header, before pixels are decoded.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines.errors import MediaError
from pipelines.reasons import ReasonCode
from pipelines.sniff import sniff

ALLOWED_IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "MPO"})


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 32


DEFAULT_IMAGE_LIMITS = ImageLimits()
# An ID-card photo: the card fills a few megapixels of any shot, and the reader works at about 2 MP. 16 MP passes
# every phone camera's full-size picture (12 MP is 4032x3024 = 12.2 MP; 16 MP sensors give 4608x3456 = 15.9 MP;
# 48-200 MP sensors save 12 MP by default) and the dev data's largest card image (the 2480x3508 template scan,
# 8.7 MP); what is larger is refused from its header, before decoding: a 130 KB flat PNG of 40 MP (the general
# bomb limit) cost 2.3 CPU-seconds and ~600 MiB in the API process per card read (review: workload 2).
ID_CARD_IMAGE_LIMITS = ImageLimits(max_pixels=16_000_000)

# Scans a JPEG may hold. libjpeg walks every block of the picture once per scan, and a 10-byte empty scan is valid:
# 10,000 of them after a 16 MP progressive header (131 KB) cost 10.8 CPU-s to decode, 1M (10 MB) about 18 minutes,
# in the API's upload check, the H5 card read and the worker (review: media 2). A baseline JPEG (what phone cameras
# save) has 1 scan, or 1 per colour component; libjpeg's progressive script writes 10 for colour (6 for grey); of the
# dev data's 1,388 JPEGs, 1,381 have 1 scan and the rest 7-11. 64 scans cost at most about 0.1 CPU-s at 16 MP.
MAX_JPEG_SCANS = 64
_SOI, _SOS, _EOI = 0xD8, 0xDA, 0xD9
# A marker: 0xFF, then neither 0x00 (a stuffed 0xFF in scan data), a restart marker (0xD0-0xD7) nor a fill byte.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_scans(data: bytes, stop_after: int = MAX_JPEG_SCANS) -> int:
    """The number of scans (SOS segments) of a JPEG's first image, from its markers alone (nothing is decoded),
    counted up to `stop_after` + 1: segments are skipped by their length (an EXIF thumbnail's own scans are inside
    one), entropy-coded data up to the next marker (a regular expression, so a hostile 10 MB scan costs milliseconds
    too). Stops at the first EOI."""
    scans, pos = 0, 2
    while scans <= stop_after and (m := _MARKER.search(data, pos)) is not None:
        at, marker = m.start(), data[m.start() + 1]
        if marker == _EOI:
            break
        if marker == _SOI or at + 4 > len(data):
            pos = at + 2
            continue
        scans += marker == _SOS
        pos = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")  # past the segment (a scan's data follows SOS)
    return scans


def check_before_decoding(img: Image.Image, data: bytes, limits: ImageLimits) -> None:
    """What an image may cost, from its header, before a pixel is decoded: its format, its size in pixels and, for a
    JPEG, its number of scans (`MAX_JPEG_SCANS`); MediaError otherwise. The one check of the pipeline's intake
    (`decode_image`) and of the card photo's upload (service/certification/sessions.py)."""
    if img.format not in ALLOWED_IMAGE_FORMATS:
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"image format {img.format}")
    width, height = img.size
    if width * height > limits.max_pixels:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{width}x{height} pixels")
    if min(width, height) < limits.min_side:
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"{width}x{height} is too small")
    if img.format in ("JPEG", "MPO") and (scans := jpeg_scans(data)) > MAX_JPEG_SCANS:
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"JPEG of {scans} scans (more than {MAX_JPEG_SCANS})")


@contextmanager
def _media_errors(data: bytes) -> Iterator[None]:
    """Pillow's exceptions (and its bomb warning) as MediaErrors with a reason code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        # Name what the bytes are (pipelines/sniff.py), never PIL's message (it shows a Python object).
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"not a supported image: {sniff(data).name}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot decode image: {exc}") from exc


def open_image(data: bytes, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> Image.Image:
    """The image opened and checked from its header (`check_before_decoding`), no pixel decoded: milliseconds,
    whatever the file (the H5 card read runs it before taking one of its few slots); MediaError otherwise."""
    if len(data) == 0:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, "empty file")
    if len(data) > limits.max_bytes:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    with _media_errors(data):
        img = Image.open(io.BytesIO(data))
        check_before_decoding(img, data, limits)
    return img


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """Decode an image to a BGR uint8 array (EXIF orientation applied) or raise MediaError."""
    img = open_image(data, limits)
    with _media_errors(data):
        img.load()
        rgb = (ImageOps.exif_transpose(img) or img).convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def load_image(path: str | Path, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot read {p}: {exc.strerror}") from exc
    if size > limits.max_bytes:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{size} bytes > {limits.max_bytes}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot read {p}: {exc.strerror}") from exc
    return decode_image(data, limits)
