"""Image intake: decode bytes or files to BGR uint8 arrays, EXIF-rotated, with cheap size limits.

Decompression bombs and huge-dimension images are refused from the header, before pixels are decoded.
"""

from __future__ import annotations

import io
import warnings
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


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """Decode an image to a BGR uint8 array (EXIF orientation applied) or raise MediaError."""
    if len(data) == 0:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, "empty file")
    if len(data) > limits.max_bytes:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_IMAGE_FORMATS:
                raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"image format {img.format}")
            width, height = img.size
            if width * height > limits.max_pixels:
                raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"{width}x{height} pixels")
            if min(width, height) < limits.min_side:
                raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"{width}x{height} is too small")
            img.load()
            rgb = (ImageOps.exif_transpose(img) or img).convert("RGB")
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(ReasonCode.MEDIA_TOO_LARGE, f"too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        # Name what the bytes are (pipelines/sniff.py), never PIL's message (it shows a Python object).
        raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, f"not a supported image: {sniff(data).name}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError(ReasonCode.MEDIA_CORRUPT, f"cannot decode image: {exc}") from exc
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
