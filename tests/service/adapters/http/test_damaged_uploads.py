"""Issue #22: a truncated or undecodable card photo or video is refused at upload (4xx, reason code), before it
is stored or queued, so it never becomes a rejection that counts as one of the citizen's daily failures.

Before, the card passed Pillow's header `verify()` and the video only a container-magic check: the session
was queued, the worker rejected it with MEDIA_CORRUPT, and that rejection counted towards FAILURES_PER_DAY
(after three, the citizen is sent to staff review)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification import sessions
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, VideoFingerprint, utcnow
from tests.service import factories
from tests.service.adapters.http.helpers import (
    auth,
    beneficiary_with_number,
    open_h5_session,
    open_session,
    put_card,
    put_video,
)
from tests.service.media import LIVE_VIDEO

CARD = "idcard/synthetic/card_005.jpg"


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _beneficiary_id(ctx: ServiceContext, external_id: str) -> int:
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == external_id))
        assert b is not None
        return b.id


def _earlier_rejections(ctx: ServiceContext, beneficiary_id: int, n: int) -> None:
    """`n` sessions of this beneficiary rejected today: the daily failure count the limit is checked against."""
    now = utcnow()
    with ctx.db() as db:
        for _ in range(n):
            db.add(
                factories.session_row(
                    beneficiary_id, state="decided", decision="reject", reasons=["FACE_MISMATCH"], decided_at=now
                )
            )


def _failures_today(ctx: ServiceContext, beneficiary_id: int) -> int:
    with ctx.db() as db:
        return sessions.failures_today(db, ctx, beneficiary_id, utcnow())


def test_truncated_card_and_videos_are_refused_at_upload_and_cost_no_attempt(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    bid = _beneficiary_id(ctx, ext)
    _earlier_rejections(ctx, bid, ctx.settings.certification.failures_per_day - 1)  # one attempt left today
    s = open_session(client, ext)
    card = (data_dir / CARD).read_bytes()
    video = (data_dir / LIVE_VIDEO).read_bytes()

    r = put_card(client, s, half(card))
    assert r.status_code == 422 and r.json()["error"]["code"] == "MEDIA_CORRUPT", r.text
    damaged = {
        # index at the start, the second half of the frames gone (as a cut-off upload from a phone)
        "videos/liveportrait_source_s18.mp4": "MEDIA_CORRUPT",
        # the last packet cut through
        "spoof/videos/lestari15_real.mp4": "MEDIA_CORRUPT",
        # index at the end: gone with the second half
        "videos/liveportrait_driving_d3.mp4": "MEDIA_CORRUPT",
    }
    for rel, code in damaged.items():
        r = put_video(client, s, half((data_dir / rel).read_bytes()), ctype="video/mp4")
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (rel, r.text)
    r = put_video(client, s, half(video))  # the browser's WebM, cut in half
    assert r.status_code == 422 and r.json()["error"]["code"] == "MEDIA_CORRUPT", r.text
    # Whole, but longer than the liveness stage takes: refused now rather than rejected later.
    r = put_video(client, s, (data_dir / "videos/liveportrait_driving_d6.mp4").read_bytes(), ctype="video/mp4")
    assert r.status_code == 422 and r.json()["error"]["code"] == "VIDEO_TOO_LONG", r.text

    # Nothing stored, nothing queued, no attempt counted: the last attempt of the day is still there.
    assert not ctx.storage.exists(f"sessions/{s['session_id']}/id_card")
    assert not ctx.storage.exists(f"sessions/{s['session_id']}/video")
    with ctx.db() as db:
        row = db.get(CertSession, s["session_id"])
        assert row is not None and row.state == "open" and row.nonce_used_at is None
        assert db.scalar(select(func.count()).select_from(VideoFingerprint)) == 0
    assert _failures_today(ctx, bid) == ctx.settings.certification.failures_per_day - 1
    assert client.post("/api/v1/sessions", json={"external_id": ext}).status_code == 201  # not 429

    # The same session then takes the whole card and video.
    assert put_card(client, s, card).status_code == 200
    r = put_video(client, s, video)
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text


@pytest.mark.parametrize("card_check", [False, True])
def test_h5_truncated_card_is_refused_and_stores_nothing(
    client: TestClient, ctx: ServiceContext, data_dir: Path, monkeypatch: pytest.MonkeyPatch, card_check: bool
) -> None:
    """The H5 card step, with and without the instant OCR check in front of the session upload."""
    monkeypatch.setattr(ctx.settings.h5, "card_check", card_check)
    s = open_h5_session(client, ctx)
    card = (data_dir / CARD).read_bytes()

    def put(data: bytes) -> Any:
        url = f"/h5/api/sessions/{s['session_id']}/card"
        return client.post(url, headers=auth(s), files={"file": ("card.jpg", data, "image/jpeg")})

    for cut in (half(card), card[:-2], card[: len(card) - 4096]):  # half; only the end marker; the last 4 KiB
        r = put(cut)
        assert r.status_code == 422 and r.json()["error"]["code"] == "MEDIA_CORRUPT", r.text
    assert not ctx.storage.exists(f"sessions/{s['session_id']}/id_card")
    if not card_check:  # with the check, the OCR reader would run on the whole card (tested elsewhere)
        assert put(card).status_code == 200
        assert ctx.storage.get(f"sessions/{s['session_id']}/id_card") == card
