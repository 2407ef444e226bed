"""Image intake: real images decode with EXIF orientation; hostile or broken input is a clean reason code."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipelines.errors import MediaError
from pipelines.media import ImageLimits, decode_image, load_image
from pipelines.reasons import ReasonCode

REASONS = {ReasonCode.MEDIA_CORRUPT, ReasonCode.MEDIA_UNSUPPORTED, ReasonCode.MEDIA_TOO_LARGE}


def test_exif_orientation_is_applied(data_dir: Path) -> None:
    path = data_dir / "spoof/images/silent_face/11e7f4c_image_T1.jpg"
    with Image.open(path) as raw:
        assert raw.getexif().get(0x0112) == 6 and raw.size == (640, 480)
    assert load_image(path).shape == (640, 480, 3)  # rotated upright: portrait


def test_png_and_jpeg_round_trip_to_bgr(faces_dir: Path) -> None:
    bgr = load_image(faces_dir / "lfw/Colin_Powell/Colin_Powell_0001.jpg")
    rgb = Image.fromarray(bgr[:, :, ::-1])
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue()), bgr)


def encoded(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A small real PNG whose header claims another size (a decompression bomb's shape)."""
    data = bytearray(encoded((64, 64)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


@pytest.mark.parametrize("size", [(20000, 20000), (9000, 9000), (100_000, 500)])
def test_huge_dimensions_are_refused_from_the_header(size: tuple[int, int]) -> None:
    with pytest.raises(MediaError) as info:
        decode_image(png_declaring(*size))
    assert info.value.reason is ReasonCode.MEDIA_TOO_LARGE


def test_limits_on_bytes_tiny_images_and_formats(tmp_path: Path) -> None:
    cases = {
        b"": ReasonCode.MEDIA_CORRUPT,
        b"GIF89a" + b"\x00" * 100: ReasonCode.MEDIA_UNSUPPORTED,
        encoded((10, 10)): ReasonCode.MEDIA_UNSUPPORTED,
        encoded((64, 64), "GIF"): ReasonCode.MEDIA_UNSUPPORTED,
        encoded((400, 300), "JPEG")[:300]: ReasonCode.MEDIA_CORRUPT,
    }
    for data, reason in cases.items():
        with pytest.raises(MediaError) as info:
            decode_image(data)
        assert info.value.reason is reason, data[:20]
    with pytest.raises(MediaError) as info:
        decode_image(encoded((400, 300)), ImageLimits(max_bytes=100))
    assert info.value.reason is ReasonCode.MEDIA_TOO_LARGE
    with pytest.raises(MediaError) as info:
        load_image(tmp_path / "does-not-exist.jpg")
    assert info.value.reason is ReasonCode.MEDIA_CORRUPT


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_decode_or_fail_with_a_reason_code(data: bytes) -> None:
    try:
        image = decode_image(data)
    except MediaError as exc:
        assert exc.reason in REASONS
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=64))
def test_corrupted_real_jpeg_never_crashes(offset: int, junk: bytes) -> None:
    base = bytearray(encoded((120, 90), "JPEG"))
    pos = offset % len(base)
    base[pos : pos + len(junk)] = junk
    try:
        decode_image(bytes(base))
    except MediaError as exc:
        assert exc.reason in REASONS
