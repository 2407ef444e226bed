"""Image bombs: tiny PNG/JPEG/WebP files declaring huge pictures are refused from the header, not decoded.

Cheapness is checked on memory: the process's peak resident size must not grow (a decoded 20000x20000 picture
would take over a gigabyte).
"""

from __future__ import annotations

import resource
from collections.abc import Callable

import pytest

from fuzz import bombs
from pipelines.errors import MediaError
from pipelines.media import decode_image
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
