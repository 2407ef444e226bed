"""Follow-ups of the dates review (docs/security.md Part AJ): the ID card's expiry judged on the bureau's day, and
no function quietly taking the server's or UTC's date for "today". Each test failed on the code before its fix."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import numpy as np
import pytest

from pipelines.decision.runner import CertificationReport
from pipelines.decision.runner import Certifier as RealCertifier
from pipelines.id_card.fields import emblem_fields
from pipelines.id_card.ocr import TextLine
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import CertSession, utcnow
from service.certification.processing import claim, process
from service.features.console import dashboard
from service.features.console.alt_cert import mark_deceased
from service.features.wechat.h5.elder import is_elder
from service.infra import clock
from tests.service import factories
from tests.service.certifiers import FixedCertifier


class DateRecorder(FixedCertifier):
    """Accepts, and keeps the date it was asked to judge the card on (None: none given, the server's own)."""

    def __init__(self) -> None:
        super().__init__()
        self.days: list[dt.date | None] = []

    def run(self, *args: Any, **kwargs: Any) -> CertificationReport:
        self.days.append(kwargs.get("today", args[6] if len(args) > 6 else None))
        return super().run(*args[:6])


def _queued(ctx: ServiceContext, at: dt.datetime) -> str:
    """A session whose card and video were sent at `at` (naive UTC, as stored), waiting for a worker."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, expires_at=utcnow() + dt.timedelta(hours=1), queued_at=at, state="queued")
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        db.add(s)
        sid = s.id
    ctx.storage.put(f"sessions/{sid}/id_card", b"card")
    ctx.storage.put(f"sessions/{sid}/video", b"video")
    return sid


@pytest.mark.parametrize(
    ("sent", "worked", "day"),
    [
        # 07:30 in Beijing on 6 December is 23:30 UTC on the 5th: a card valid "至 2026.12.06" is valid today, and
        # one valid to the 5th expired yesterday, though the server's (UTC) date still says the 5th.
        (dt.datetime(2026, 12, 5, 23, 30), dt.datetime(2026, 12, 5, 23, 30, 5), dt.date(2026, 12, 6)),
        # Sent at 23:50 in Beijing on the card's last day, read by a worker at 00:10: the card shown was valid.
        (dt.datetime(2026, 12, 5, 15, 50), dt.datetime(2026, 12, 5, 16, 10), dt.date(2026, 12, 5)),
    ],
)
def test_the_worker_has_the_card_read_on_the_bureaus_date_it_was_sent(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, sent: dt.datetime, worked: dt.datetime, day: dt.date
) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: worked.replace(tzinfo=dt.UTC))
    sid = _queued(ctx, sent)
    certifier = DateRecorder()
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, certifier), sid, "w1")
    assert certifier.days == [day]
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None and row.decision == "accept"
    # What the reader makes of that date (pipelines/id_card/fields.py): a card valid to that day is valid, one
    # valid to the day before has expired.
    assert _expired(day, day) is False and _expired(day - dt.timedelta(days=1), day) is True


def _expired(until: dt.date, on: dt.date) -> bool | None:
    text = f"有效期限{until.year - 10}.{until:%m.%d}-{until:%Y.%m.%d}"
    line = TextLine(text, 0.99, [0.99] * len(text), np.zeros((4, 2), np.float32), np.zeros((0, 0), np.float32))
    return emblem_fields([line], on).expired


class Stop(Exception):
    """Ends the run once the card has been read: the test needs no liveness model."""


class SpyReader:
    def __init__(self) -> None:
        self.days: list[dt.date | None] = []

    def read(self, image_bgr: np.ndarray, today: dt.date | None = None) -> Any:
        self.days.append(today)
        raise Stop


def test_the_certifier_hands_the_date_to_the_card_reader() -> None:
    """The card reader judges the emblem side's validity on the date it is given (pipelines/id_card/fields.py),
    the server's own date when given none: the certifier must pass the one it was asked."""
    certifier = RealCertifier()
    spy = SpyReader()
    certifier.__dict__["reader"] = spy  # the cached property, filled: no OCR model loads
    card = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(Stop):
        certifier.run(card, b"", None, today=dt.date(2026, 12, 6))
    with pytest.raises(Stop):
        certifier.run(card, b"", None)  # the offline commands: the machine's date, as before
    assert spy.days == [dt.date(2026, 12, 6), None]


def test_is_elder_has_no_quiet_default_date() -> None:
    """Born 6 December 1966: 60 on the bureau's 6 December, not on the server's UTC 5 December (23:30 UTC). The
    date must be given (every caller gives the bureau's): a forgotten one is an error, not the server's date."""
    born = dt.date(1966, 12, 6)
    assert is_elder(born, None, dt.date(2026, 12, 6)) is True
    with pytest.raises(TypeError):
        is_elder(born)  # type: ignore[call-arg]


def test_mark_deceased_has_no_quiet_default_date(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        with pytest.raises(TypeError):
            mark_deceased(db, cast(Any, None), b, dt.date(2026, 12, 6), "民政部门")  # type: ignore[call-arg]


def test_dashboard_compute_has_no_quiet_default_date(ctx: ServiceContext) -> None:
    now = dt.datetime(2026, 12, 5, 23, 30)  # the bureau's 6 December: the cycle states are taken on that day
    with ctx.db() as db:
        with pytest.raises(TypeError):
            dashboard.compute(db, ctx.rules, now)  # type: ignore[call-arg]
        assert dashboard.compute(db, ctx.rules, now, today=dt.date(2026, 12, 6)).today == dt.date(2026, 12, 6)
