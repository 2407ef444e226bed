"""Image bombs: tiny PNG/JPEG/WebP files declaring huge pictures are refused from the header, not decoded.

Cheapness is checked on memory: the process's peak resident size must not grow (a decoded 20000x20000 picture
would take over a gigabyte).
"""

from __future__ import annotations

import io
import resource
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from fuzz import bombs
from pipelines.errors import MediaError
from pipelines.media import (
    ID_CARD_IMAGE_LIMITS,
    MAX_JPEG_SCANS,
    decode_image,
    jpeg_scans,
    jpeg_segments,
    parts_limit,
    png_chunks,
)
from pipelines.reasons import ReasonCode

BOMBS: dict[str, Callable[[], bytes]] = {
    "png_100000x100000": lambda: bombs.png_bomb(100_000, 100_000),
    "png_20000x20000": lambda: bombs.png_bomb(20_000, 20_000),
    "png_7000x7000": lambda: bombs.png_bomb(7000, 7000),  # under Pillow's own limit, over ours
    "jpeg_65500x65500": lambda: bombs.jpeg_bomb(65500, 65500),
    "jpeg_10000x5000": lambda: bombs.jpeg_bomb(10_000, 5000),
    "webp_16383x16383": lambda: bombs.webp_bomb(16383, 16383),
    "webp_9000x9000": lambda: bombs.webp_bomb(9000, 9000),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_image_bombs_are_refused_from_the_header(name: str) -> None:
    data = BOMBS[name]()
    assert len(data) < 4096
    decode_image(bombs.png_bomb(64, 64))  # warm-up: the decoder's own first-use allocations are not the bomb's
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(MediaError) as info:
        decode_image(data)
    assert info.value.reason is ReasonCode.MEDIA_TOO_LARGE
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20 * 1024  # KiB


def test_the_bomb_builders_make_real_images() -> None:
    """Each bomb is a valid small image with only its declared size changed: same builder, honest size."""
    for make in (bombs.png_bomb, bombs.jpeg_bomb, bombs.webp_bomb):
        image = decode_image(make(64, 64))
        assert image.shape == (64, 64, 3)


def assert_refused_at_once(data: bytes) -> None:
    """Refused as a card photo (MEDIA_UNSUPPORTED) in under half a CPU-second."""
    start = time.process_time()
    with pytest.raises(MediaError) as info:
        decode_image(data, ID_CARD_IMAGE_LIMITS)
    assert info.value.reason is ReasonCode.MEDIA_UNSUPPORTED
    assert time.process_time() - start < 0.5


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_before_decoding() -> None:
    """A 16 MP grey progressive JPEG followed by 10,000 empty 10-byte scans (131 KB): a valid card photo by its
    size, 10.8 CPU-s to decode (libjpeg walks every block once per scan). Refused from its markers (review: media 2)."""
    data = bombs.jpeg_scan_bomb(4000, 4000, 10_000)
    assert len(data) < 140_000 and jpeg_scans(data, stop_after=20_000) == 10_001
    assert_refused_at_once(data)


def test_real_progressive_and_baseline_jpegs_are_decoded(data_dir: Path) -> None:
    """What cameras and encoders write stays far below the scan limit: a real card photo as baseline (1 scan) and
    re-saved progressive (libjpeg's script: 10 scans), and the bomb builder's own 64-scan picture decode."""
    card = (data_dir / "idcard/synthetic/card_005.jpg").read_bytes()
    progressive = io.BytesIO()
    Image.open(io.BytesIO(card)).save(progressive, "JPEG", progressive=True, quality=90)
    assert jpeg_scans(card) == 1 and jpeg_scans(progressive.getvalue()) == 10
    assert decode_image(progressive.getvalue(), ID_CARD_IMAGE_LIMITS).shape == decode_image(card).shape
    at_limit = bombs.jpeg_scan_bomb(640, 480, MAX_JPEG_SCANS - 1)
    assert jpeg_scans(at_limit) == MAX_JPEG_SCANS and decode_image(at_limit).shape == (480, 640, 3)


@pytest.mark.parametrize(
    "make",
    [lambda: bombs.jpeg_segment_bomb(3_500_000), lambda: bombs.png_chunk_bomb(1_100_000)],
    ids=["jpeg-3.5M-comments", "png-1.1M-chunks"],
)
def test_a_picture_in_millions_of_parts_is_refused_before_pillow_reads_them(make: Callable[[], bytes]) -> None:
    """14 MB: a card photo by its size. Pillow reads each JPEG segment before the first scan and each PNG chunk in
    Python, one call each: 11.5 and 13 CPU-s (the API's upload check opens the card twice). Refused from a count
    of the parts, before Pillow opens the file."""
    data = make()
    assert 13_000_000 < len(data) <= ID_CARD_IMAGE_LIMITS.max_bytes
    assert_refused_at_once(data)


def _jpeg_at(segments: int) -> bytes:
    """A 640x480 JPEG of exactly `segments` marker segments, comments added."""
    base = bombs.jpeg_segment_bomb(0, (640, 480))
    return bombs.jpeg_segment_bomb(segments - jpeg_segments(base, 10**6), (640, 480))


def test_the_parts_limit_is_exact_and_far_above_what_encoders_write(data_dir: Path) -> None:
    """256 parts and one per KiB: a JPEG at the limit decodes, one segment more is refused; a PNG whose image data
    is split in 1-KiB chunks (smaller than any common encoder's) decodes; the dev data's largest PNG (a scan in
    8-KiB chunks) and every test photo stay far below."""
    n = 200
    while jpeg_segments(at := _jpeg_at(n + 1), 10**6) <= parts_limit(len(at)):
        n += 1
    at_limit = _jpeg_at(n)
    assert jpeg_segments(at_limit, 10**6) == n == parts_limit(len(at_limit))
    assert decode_image(at_limit).shape == (480, 640, 3)
    with pytest.raises(MediaError) as info:
        decode_image(_jpeg_at(n + 1))
    assert info.value.reason is ReasonCode.MEDIA_UNSUPPORTED
    small_chunks = bombs.png_in_small_chunks((800, 500), 1024)
    assert png_chunks(small_chunks, 10**6) > 256 and decode_image(small_chunks).shape == (500, 800, 3)
    scan = (data_dir / "idcard/template/empty.png").read_bytes()
    assert png_chunks(scan, 10**6) < parts_limit(len(scan)) / 5
    decode_image(scan)
