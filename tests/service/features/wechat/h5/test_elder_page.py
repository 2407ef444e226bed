"""Elder mode by the roster on the server-rendered pages: a person's own result page carries the roster's
default (body data-elder, which h5.js applies until the person chooses), opened from a message link in a
browser that has never seen the capture page; the start page, knowing nobody yet, does not."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from service.certification.models import Beneficiary
from tests.service.features.wechat.h5.conftest import App
from tests.service.features.wechat.h5.test_recovery import finished


def elder_attr(html: str) -> str:
    m = re.search(r'<body [^>]*data-elder="(yes|no)"', html)
    assert m is not None, "no data-elder on the body"
    return m.group(1)


@pytest.mark.parametrize(("born", "expected"), [(dt.date(1950, 3, 14), "yes"), (dt.date(1980, 6, 1), "no")])
def test_the_result_page_follows_the_roster_birth_date(app: App, born: dt.date, expected: str) -> None:
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        b.birth_date = born
        db.commit()
    sid = finished(app, decision="accept", reasons=())
    r = app.client.get(f"/h5/result/{sid}")
    assert r.status_code == 200
    assert elder_attr(r.text) == expected


def test_the_start_page_knows_nobody_yet(app: App) -> None:
    assert elder_attr(app.client.get("/h5/").text) == "no"


def test_a_sixtieth_birthday_counts_from_the_bureaus_date(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 23:30 UTC on 4 December it is already 5 December in China: someone born on 5 December 1966 is 60 there."""
    from service.infra import clock

    monkeypatch.setattr(clock, "now_utc", lambda: dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.UTC))
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        b.birth_date = dt.date(1966, 12, 5)
        db.commit()
    sid = finished(app, decision="accept", reasons=())
    assert elder_attr(app.client.get(f"/h5/result/{sid}").text) == "yes"
