"""Read, don't type: the card photo is read before any session exists (name and number for the person to
confirm), the session is opened with the confirmed values and the same photo stored through the session's own
card check; the read reveals nothing of the roster, and the server still checks the number on the card."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.schema
from fuzz import bombs
from pipelines.id_card.synthetic import CardFields, PhotoConfig, photograph, portrait_from_face, render_card
from pipelines.reasons import ReasonCode
from service.adapters.http.app import create_app
from service.certification.context import ServiceContext
from service.certification.models import CertSession
from service.features.wechat.h5 import cardcheck, identity
from service.features.wechat.h5.elder import is_elder
from service.infra import clock
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.h5.conftest import OPENID, App
from tests.service.media import LIVE_VIDEO, card_for_video


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """The H5 app of conftest with the card reader in the API (h5_card_check), as in production."""
    with FakeWeChat() as fake:
        settings = wechat_settings(fake, tmp_path, database_url=f"sqlite:///{tmp_path / 'h5.db'}", h5_card_check=True)
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with TestClient(create_app(ctx=ctx)) as client:
            client.cookies.set(identity.COOKIE, identity.mint(ctx, OPENID))
            yield App(client, ctx, 0)


@pytest.fixture(scope="module")
def card(data_dir: Path) -> tuple[bytes, CardFields]:
    return card_for_video(data_dir, LIVE_VIDEO)


def enrol(app: App, fields: CardFields) -> None:
    with app.ctx.db() as db:
        factories.beneficiary(db, app.ctx.keyring, id_number=fields.id_number, name=fields.name)
        db.commit()


def read(client: TestClient, data: bytes) -> dict[str, object]:
    r = client.post("/h5/api/card-read", files={"file": ("card.jpg", data, "image/jpeg")})
    out: dict[str, object] = {"status": r.status_code, **r.json()}
    return out


def test_the_card_is_read_then_confirmed_and_stored_without_a_second_ocr(
    app: App, card: tuple[bytes, CardFields], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, fields = card
    enrol(app, fields)
    got = read(app.client, data)
    assert got == {"status": 200, "name": fields.name, "id_number": fields.id_number}

    opened = app.client.post(
        "/h5/api/sessions", json={"name": got["name"], "id_number": got["id_number"], "consent": True}
    ).json()
    assert opened["elder_mode"] is is_elder(None, fields.id_number, local_today(app.ctx.settings))

    def no_second_read(*_: object) -> None:
        raise AssertionError("the photo read a moment ago was read again")

    monkeypatch.setattr(cardcheck, "_ocr", no_second_read)
    r = app.client.post(
        f"/h5/api/sessions/{opened['session_id']}/card",
        files={"file": ("card.jpg", data, "image/jpeg")},
        headers={"Authorization": f"Bearer {opened['token']}", "Idempotency-Key": "card-first-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["uploads"]["id_card"] is True
    with app.ctx.db() as db:
        s = db.get(CertSession, opened["session_id"])
        assert s is not None and s.id_card_key is not None


def test_a_corrected_number_still_has_to_be_the_one_on_the_card(app: App, card: tuple[bytes, CardFields]) -> None:
    """The person 'corrects' the read to someone else's enrolled number: the session opens for that number
    (name and number agree with the roster), but the card shows another number: the server refuses the card."""
    data, fields = card
    other = factories.id_number(seq=613)
    with app.ctx.db() as db:
        factories.beneficiary(db, app.ctx.keyring, id_number=other, name=fields.name)
        db.commit()
    assert read(app.client, data)["id_number"] == fields.id_number
    opened = app.client.post("/h5/api/sessions", json={"name": fields.name, "id_number": other, "consent": True})
    assert opened.status_code == 200
    body = opened.json()
    r = app.client.post(
        f"/h5/api/sessions/{body['session_id']}/card",
        files={"file": ("card.jpg", data, "image/jpeg")},
        headers={"Authorization": f"Bearer {body['token']}", "Idempotency-Key": "card-first-2"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == ReasonCode.ID_NUMBER_MISMATCH.value


def test_the_read_says_only_what_the_photo_shows(app: App, card: tuple[bytes, CardFields]) -> None:
    """A card not on the roster reads the same as one on it: the answer never depends on the roster."""
    data, fields = card
    assert read(app.client, data) == {"status": 200, "name": fields.name, "id_number": fields.id_number}
    bad = read(app.client, b"not an image at all")
    assert bad["status"] == 422
    error = bad["error"]
    assert isinstance(error, dict) and error["code"] == ReasonCode.MEDIA_UNSUPPORTED.value and error["message"]


def _card_born_on(data_dir: Path, birth: dt.date) -> tuple[bytes, str]:
    """The sample card (the demo video's face) of a person born on `birth`: its printed birth date and number."""
    from service.adapters.cli.demo import video_frame

    _, fields = card_for_video(data_dir, LIVE_VIDEO)
    number = factories.id_number(region=fields.id_number[:6], birth=birth, seq=11 if fields.sex == "男" else 12)
    frame = video_frame(data_dir / LIVE_VIDEO, 0.5)
    h, w = frame.shape[:2]
    portrait = portrait_from_face(frame[int(h * 0.05) : int(h * 0.95), int(w * 0.2) : int(w * 0.8)])
    flat = render_card(dataclasses.replace(fields, birth_date=birth, id_number=number), portrait, data_dir)
    mild = PhotoConfig(any_rotation=False, max_blur_sigma=0.5, glare_prob=0.0, shadow_prob=0.0)
    image, _, _ = photograph(flat, np.random.default_rng(7), mild, rotation=2.0)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes(), number


def test_a_card_of_someone_born_on_the_bureaus_today_is_read(
    app: App, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The number's birth date is judged on the bureau's today (docs/security.md, Part DF), not the
    machine's: the clock held at 2099-03-09 17:30 UTC, 2099-03-10 01:30 in Beijing, a day the machine's date has not
    reached (as every day from 16:00 to 24:00 UTC, when it is the day before Beijing's). The read answered 422
    ID_CHECKSUM_FAILED, "请重拍", for a sharp photo of a valid card; a birth date after the bureau's today still is."""
    monkeypatch.setattr(clock, "now_utc", lambda: dt.datetime(2099, 3, 9, 17, 30, tzinfo=dt.UTC))
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))  # minted on the held clock
    data, number = _card_born_on(data_dir, dt.date(2099, 3, 10))
    got = read(app.client, data)
    assert got["status"] == 200 and got["id_number"] == number, got
    future, _ = _card_born_on(data_dir, dt.date(2099, 3, 11))
    refused = read(app.client, future)
    error = cast(dict[str, object], refused["error"])
    assert refused["status"] == 422 and error["code"] == ReasonCode.ID_CHECKSUM_FAILED.value, refused


def test_the_read_needs_the_wechat_login(app: App) -> None:
    app.client.cookies.clear()
    r = app.client.post("/h5/api/card-read", files={"file": ("card.jpg", b"x", "image/jpeg")})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("birth", "elder"), [(dt.date(1950, 3, 14), True), (dt.date(1966, 1, 1), True), (dt.date(1990, 5, 1), False)]
)
def test_elder_mode_follows_the_roster_birth_date(birth: dt.date, elder: bool) -> None:
    assert is_elder(birth, None, today=dt.date(2026, 12, 4)) is elder
    # A roster row without a birth date: the confirmed number's.
    assert is_elder(None, factories.id_number(birth=birth, seq=5), today=dt.date(2026, 12, 4)) is elder
    assert is_elder(dt.date(1966, 12, 5), None, today=dt.date(2026, 12, 4)) is False  # 60 tomorrow


def test_the_read_is_rate_limited_as_an_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OCR costs seconds of CPU: card reads count as uploads per IP (rate_limit_upload_ip)."""
    from service.adapters.http import limits

    monkeypatch.setattr(limits, "_clock", lambda: 1_000_000_000.0)  # one window throughout
    with FakeWeChat() as fake:
        settings = wechat_settings(
            fake,
            tmp_path,
            database_url=f"sqlite:///{tmp_path / 'h5.db'}",
            h5_card_check=True,
            rate_limit_upload_ip="2/minute",
        )
        ctx = ServiceContext(settings, schema=service.schema.metadata)
        with TestClient(create_app(ctx=ctx)) as client:
            client.cookies.set(identity.COOKIE, identity.mint(ctx, OPENID))
            answers = [read(client, b"not an image")["status"] for _ in range(3)]
    assert answers == [422, 422, 429]


def test_a_card_read_over_the_processs_slots_is_answered_busy(app: App, card: tuple[bytes, CardFields]) -> None:
    """Every card-read slot of the process taken (here: the only one, held past the wait): 503 BUSY with the
    Chinese sentence, without reading the photo (review: workload 2)."""
    data, _ = card
    checker = cardcheck.CardChecker(None, slots=1, wait_s=0.2)
    app.client.app.state.card_checker = checker  # type: ignore[attr-defined]
    assert checker._slots.acquire(blocking=False)
    r = app.client.post("/h5/api/card-read", files={"file": ("card.jpg", data, "image/jpeg")})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == {**r.json()["error"], "code": "BUSY", "message": "系统繁忙,请稍后再试"}
    assert checker._reader is None  # the photo was not read


def test_a_photo_its_header_refuses_is_answered_while_every_slot_is_taken(app: App) -> None:
    """Every card-read slot taken: a progressive JPEG of 10,000 scans is answered at once with its problem (before,
    it waited for a slot and then held it for its whole decode: two of them made every pensioner's read BUSY; review:
    media 3)."""
    checker = cardcheck.CardChecker(None, slots=1, wait_s=2)
    app.client.app.state.card_checker = checker  # type: ignore[attr-defined]
    assert checker._slots.acquire(blocking=False)
    # The slot stays held throughout: a read that waited for it would have been answered 503 BUSY after wait_s.
    answer = read(app.client, bombs.jpeg_scan_bomb(4000, 4000, 10_000))
    assert answer["status"] == 422 and answer["error"] == {
        **cast(dict[str, object], answer["error"]),
        "code": "MEDIA_UNSUPPORTED",
        "message": "文件格式不支持",
    }
    assert checker._reader is None
