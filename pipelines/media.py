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
    return _jpeg_walk(data, 1 << 62, stop_after + 1)[1]


def _jpeg_walk(data: bytes, max_segments: int, max_scans: int) -> tuple[int, int]:
    """(segments, scans) of a JPEG's first image, walking its markers until EOI or either count is reached."""
    segments, scans, pos = 0, 0, 2
    while segments < max_segments and scans < max_scans and (m := _MARKER.search(data, pos)) is not None:
        at, marker = m.start(), data[m.start() + 1]
        if marker == _EOI:
            break
        if marker == _SOI or at + 4 > len(data):
            pos = at + 2
            continue
        segments += 1
        scans += marker == _SOS
        pos = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")  # past the segment (a scan's data follows SOS)
    return segments, scans


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Segments a JPEG, chunks a PNG may hold: 256, and one more per KiB of file. Pillow reads a JPEG's segments up to
# its first scan, and every chunk of a PNG, in Python, one call each: a 14 MB JPEG of 3.5 million empty 4-byte
# comments cost 11.5 CPU-s to decode (14 s in the API's upload check), a 14 MB PNG of 1.1 million empty chunks 13 s
# (fuzz/bombs.py; docs/security.md, Part DR). A camera's JPEG has tens of segments; a PNG encoder splits its image
# data into chunks of 8 KiB (libpng) to 64 KiB (Pillow): a 15-MiB PNG in 8-KiB chunks has about 1,900, under the
# 15,616 allowed at that size, and one in 1-KiB chunks still fits.
_PARTS_BASE, _BYTES_PER_PART = 256, 1024


def parts_limit(n_bytes: int) -> int:
    """How many JPEG segments or PNG chunks a file of `n_bytes` may hold."""
    return _PARTS_BASE + n_bytes // _BYTES_PER_PART


def png_chunks(data: bytes, stop_after: int) -> int:
    """The PNG's chunks up to IEND (or the file's end), counting no further than `stop_after` + 1."""
    pos, n = len(_PNG_SIGNATURE), 0
    while pos + 8 <= len(data) and n <= stop_after:
        n += 1
        if data[pos + 4 : pos + 8] == b"IEND":
            break
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
    return n


def jpeg_segments(data: bytes, stop_after: int) -> int:
    """The JPEG's marker segments up to EOI (scans included), counting no further than `stop_after` + 1."""
    return _jpeg_walk(data, stop_after + 1, 1 << 62)[0]


def check_parts(data: bytes) -> None:
    """What a JPEG or PNG costs in its parts, not its pixels, refused before Pillow opens it: more segments or
    chunks than `parts_limit` allows, or a JPEG of more than `MAX_JPEG_SCANS` scans (one walk of its markers);
    MediaError MEDIA_UNSUPPORTED. Run first by the pipeline's intake (`open_image`) and the card photo's upload
    (service/certification/sessions.py)."""
    limit = parts_limit(len(data))
    if data.startswith(_PNG_SIGNATURE) and png_chunks(data, limit) > limit:
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"PNG of more than {limit} chunks")
    if data[:2] == b"\xff\xd8":
        segments, scans = _jpeg_walk(data, limit + 1, MAX_JPEG_SCANS + 1)
        if segments > limit:
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"JPEG of more than {limit} segments")
        if scans > MAX_JPEG_SCANS:
            raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"JPEG of more than {MAX_JPEG_SCANS} scans")


def check_before_decoding(img: Image.Image, limits: ImageLimits) -> None:
    """What an image may cost, from its header, before a pixel is decoded: its format and its size in pixels (its
    parts and a JPEG's scans: `check_parts`, before it was opened); MediaError otherwise. The one check of the
    pipeline's intake (`decode_image`) and of the card photo's upload (service/certification/sessions.py)."""
    if img.format not in ALLOWED_IMAGE_FORMATS:
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"image format {img.format}")
    width, height = img.size
    if width * height > limits.max_pixels:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{width}x{height} pixels")
    if min(width, height) < limits.min_side:
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"{width}x{height} is too small")


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
    """The image opened and checked from its parts and header (`check_parts`, `check_before_decoding`), no pixel
    decoded: milliseconds,
    whatever the file (the H5 card read runs it before taking one of its few slots); MediaError otherwise."""
    if len(data) == 0:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, "empty file")
    if len(data) > limits.max_bytes:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    check_parts(data)
    with _media_errors(data):
        img = Image.open(io.BytesIO(data))
        check_before_decoding(img, limits)
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
