"""Bombs through the HTTP API: small uploads declaring huge content are refused with a coded 4xx, never a 500."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fuzz import bombs
from service.certification.context import ServiceContext
from tests.service import factories
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.conftest import ADMIN


@pytest.mark.parametrize(
    ("name", "make", "status", "code"),
    [
        ("r.xlsx", lambda: bombs.xlsx_zip_bomb(600 << 20), 413, "ROSTER_TOO_LARGE"),
        ("r.xlsx", bombs.xlsx_dimension_bomb, 413, "ROSTER_TOO_LARGE"),
        (
            "r.csv",
            lambda: b"external_id,id_number,name,benefit_types\nP1,1," + b"x" * 200_000 + b",a\n",
            422,
            "ROSTER_FORMAT",
        ),
    ],
    ids=["xlsx_zip_bomb", "xlsx_dimension_bomb", "csv_huge_field"],
)
def test_roster_bombs(client: TestClient, name: str, make: object, status: int, code: str) -> None:
    assert callable(make)
    r = client.post("/api/v1/roster", files={"file": (name, make(), "application/octet-stream")}, headers=ADMIN)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


@pytest.mark.parametrize("size", [(20_000, 20_000), (7000, 7000)])
def test_id_card_bomb_is_refused_at_upload(client: TestClient, ctx: ServiceContext, size: tuple[int, int]) -> None:
    with ctx.db() as db:
        external_id = factories.beneficiary(db, ctx.keyring).external_id
        db.commit()
    s = open_session(client, external_id)
    r = put_card(client, s, bombs.png_bomb(*size), ctype="image/png")
    assert r.status_code == 413, r.text  # was a 500 for sizes over Pillow's own bomb limit
    assert r.json()["error"]["code"] == "MEDIA_TOO_LARGE"
    assert (
        client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": f"Bearer {s['token']}"}).json()[
            "uploads"
        ]["id_card"]
        is False
    )


def _card_session(client: TestClient, ctx: ServiceContext) -> dict[str, Any]:
    with ctx.db() as db:
        external_id = factories.beneficiary(db, ctx.keyring).external_id
        db.commit()
    return open_session(client, external_id)


def test_an_id_card_photo_over_16_megapixels_is_refused_from_its_header(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Under the general 40 MP bomb limit but no card photo (review: workload 2): refused as too large before
    it is decoded (this one's pixels are not even there: decoding would have answered MEDIA_CORRUPT)."""
    r = put_card(client, _card_session(client, ctx), bombs.png_bomb(5000, 3400), ctype="image/png")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "MEDIA_TOO_LARGE" and r.json()["error"]["message"] == "文件过大,请重新拍摄"


def test_a_phones_full_size_12_megapixel_card_photo_is_taken(client: TestClient, ctx: ServiceContext) -> None:
    buf = io.BytesIO()
    Image.new("L", (4032, 3024), 200).save(buf, "PNG")  # a 12 MP phone camera's full-size picture
    r = put_card(client, _card_session(client, ctx), buf.getvalue(), ctype="image/png")
    assert r.status_code == 200, r.text


def _uploads(client: TestClient, s: dict[str, Any]) -> dict[str, bool]:
    r = client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": f"Bearer {s['token']}"})
    uploads: dict[str, bool] = r.json()["uploads"]
    return uploads


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_at_upload(client: TestClient, ctx: ServiceContext) -> None:
    """131 KB, 16 MP, 10,000 empty scans: it took 11 CPU-s of the API process and was stored as the card (review:
    media 2). Refused from its markers, with the Chinese sentence, and not stored."""
    s = _card_session(client, ctx)
    bomb = bombs.jpeg_scan_bomb(4000, 4000, 10_000)
    started = time.process_time()
    r = put_card(client, s, bomb)
    assert time.process_time() - started < 2  # a hang guard: it took 11 CPU-s
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "MEDIA_UNSUPPORTED" and r.json()["error"]["message"] == "文件格式不支持"
    assert _uploads(client, s)["id_card"] is False


@pytest.mark.parametrize(
    "make",
    [lambda: bombs.jpeg_segment_bomb(2_400_000), lambda: bombs.png_chunk_bomb(800_000)],
    ids=["jpeg-2.4M-comments", "png-800k-chunks"],
)
def test_a_card_photo_in_millions_of_parts_is_refused_at_upload(
    client: TestClient, ctx: ServiceContext, make: Callable[[], bytes]
) -> None:
    """9.6 MB (under the card's 10 MiB) of empty JPEG comments or PNG chunks around an 800x500 picture: 7.4 and
    5.6 CPU-s of the API process (Pillow reads each part in Python, and the check opens the card twice), then
    stored as the card. Refused from a count of its parts, with the Chinese sentence, and not stored."""
    data = make()
    assert 9_500_000 < len(data) < 10 * 1024 * 1024
    s = _card_session(client, ctx)
    started = time.process_time()
    r = put_card(client, s, data)
    assert time.process_time() - started < 2  # a hang guard: it took 5.6-7.4 CPU-s
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "MEDIA_UNSUPPORTED" and r.json()["error"]["message"] == "文件格式不支持"
    assert _uploads(client, s)["id_card"] is False


def test_a_video_of_thousands_of_4k_frames_is_refused_at_upload(client: TestClient, ctx: ServiceContext) -> None:
    """2,000 flat 4K frames in 2 s of MP4 (1,000 fps; the review's 20,000-frame clip cost a worker 80+ CPU-s):
    refused by the upload probe, with the Chinese sentence, and not stored."""
    s = _card_session(client, ctx)
    r = put_video(client, s, bombs.frame_bomb(3840, 2160, 2000, 1000), ctype="video/mp4")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "MEDIA_TOO_LARGE" and r.json()["error"]["message"] == "文件过大,请重新拍摄"
    assert _uploads(client, s)["video"] is False
    assert not ctx.storage.exists(f"sessions/{s['session_id']}/video")


def test_a_video_refused_for_its_frame_rate_is_told_so_not_that_its_format_is_unsupported(
    client: TestClient, ctx: ServiceContext
) -> None:
    """2,000 small frames per second (no camera's rate): refused by the upload probe. Before, the answer was 415
    `MEDIA_UNSUPPORTED`, 文件格式不支持: wrong (an MP4 is accepted) and no help to film again. Now its own code and a
    sentence saying what to do."""
    s = _card_session(client, ctx)
    r = put_video(client, s, bombs.frame_bomb(320, 240, 4000, 2000), ctype="video/mp4")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VIDEO_FRAME_RATE_TOO_HIGH", error
    assert error["message"] == "视频帧率过高,请用手机相机的普通录像模式重新录制,不要使用慢动作", error
    assert _uploads(client, s)["video"] is False
