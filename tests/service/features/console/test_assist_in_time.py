"""A request for a home visit (上门认证) or a manual review filed in time is the office's backlog, as a video waiting
for staff is (docs/security.md Part CW): the daily run does not suspend the person while it is open, and the lists,
the dashboard, the person page and the family page read them as waiting (认证待审核), not overdue. Before, only
sessions sheltered: an elder who could not get a video through on the last valid day and asked for a home visit the
same afternoon was suspended at 01:00, listed overdue, and their relative told to certify at once. The rule is the
cycle's one (cycle.being_decided, fed by the console's open requests through ctx.hooks), with the same bounds: filed
in the lapsed validity (the bureau's calendar), for the record's present person, and no longer than `due_soon_days`
past the last valid day. SQLite and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, BeneficiaryStatus, CycleEvent
from service.features.console import assist
from service.features.console.models import AssistRequest
from service.features.wechat.h5.family import elder_status
from service.infra.clock import local_midnight, local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import login

HANDLED = "申请已按时提交,正在办理,结果会通过公众号通知"  # the family page, after what the request asks for


def _file(ctx: ServiceContext, external_id: str, last: dt.date, at: dt.datetime, kind: str = "home_visit") -> int:
    """A person valid to `last` and their request of `kind`, filed at `at` (naive UTC) from the H5 form: its id."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, external_id=external_id, valid_until=last)
        openid = f"openid-{external_id}"
        req = assist.submit(db, b, kind, "13800138000", "卧床,无法拍视频", openid, f"wechat:{openid}")
        db.flush()
        rid = req.id
    factories.update(ctx, AssistRequest, rid, created_at=at)
    return rid


def _list(client: TestClient, which: str, day: dt.date) -> list[str]:
    body = client.get(f"/api/v1/lists/{which}", params={"today": day.isoformat()}, headers=ADMIN).json()
    return [i["external_id"] for i in body["items"]]


def _run(client: TestClient, day: dt.date) -> int:
    r = client.post("/api/v1/cycle/run", params={"today": day.isoformat()}, headers=ADMIN)
    assert r.status_code == 200, r.text
    suspended: int = r.json()["suspended"]
    return suspended


def _status(ctx: ServiceContext, external_id: str) -> tuple[int, str, list[str]]:
    """(id, status, the payment rows written) of the person."""
    with ctx.db() as db:
        b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == external_id)).one()
        rows = db.scalars(select(CycleEvent.kind).where(CycleEvent.beneficiary_id == b.id)).all()
        return b.id, str(b.status), list(rows)


def test_a_home_visit_asked_for_on_the_last_valid_day_waits_for_staff_and_is_not_suspended(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    today = local_today(ctx.settings)
    last = today - dt.timedelta(days=2)
    evening = local_midnight(ctx.settings, last) + dt.timedelta(hours=23)  # 23:00 on the last valid day, Beijing
    rid = _file(ctx, "INTIME", last, evening)
    _file(ctx, "LATE", last, evening + dt.timedelta(hours=1, minutes=30))  # 00:30 the next day: late
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, external_id="LAPSED", valid_until=last)  # asked for nothing
    assert _list(app_client, "overdue", today) == ["LAPSED", "LATE"]
    assert _list(app_client, "awaiting_decision", today) == ["INTIME"]
    assert app_client.get("/api/v1/beneficiaries/INTIME", headers=ADMIN).json()["cycle_state"] == "awaiting_decision"
    csrf = login(app_client, "sup1")
    table = list(csv.reader(io.StringIO(app_client.get("/console/dashboard.csv").text)))
    total = dict(zip(table[0], next(r for r in table[1:] if r and r[0] == "total"), strict=False))
    assert (total["overdue"], total["awaiting_decision"]) == ("2", "1")
    bid, _, _ = _status(ctx, "INTIME")
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert re.search(r'<b id="cycle">认证待审核</b>', page)
    with ctx.db() as db:  # the family page: the request is being handled, not "认证已于…到期,请尽快认证"
        person = db.get(Beneficiary, bid)
        assert person is not None
        assert elder_status(db, ctx, person, today) == (
            "review",
            "上门认证申请已按时提交,正在办理,结果会通过公众号通知",
        )
    assert _run(app_client, today) == 2  # LATE and LAPSED; the one who asked in time waits for the visit
    assert _status(ctx, "INTIME")[1:] == (BeneficiaryStatus.ACTIVE, [])
    # Staff visit today and record it: certified from the visit's day, never suspended, no payment row at all.
    visit = {"csrf": csrf, "kind": "home_visit", "on_date": today.isoformat(), "evidence": "上门核实本人"}
    assert app_client.post(f"/console/requests/{rid}/certify", data=visit).status_code == 200
    assert _run(app_client, today + dt.timedelta(days=1)) == 0
    assert _status(ctx, "INTIME")[1:] == (BeneficiaryStatus.ACTIVE, [])
    assert _list(app_client, "awaiting_decision", today) == []


def test_an_open_request_shelters_no_longer_than_due_soon_days_nor_once_answered(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The office's backlog is bounded as for videos: a request still open `due_soon_days` past the last valid day
    shelters no longer (anyone who knows a name and number can file one). One closed without a certification (the
    person will come to the counter) shelters nobody: the next run suspends."""
    today = local_today(ctx.settings)
    last = today - dt.timedelta(days=2)
    noon = local_midnight(ctx.settings, last) + dt.timedelta(hours=12)
    _file(ctx, "OPEN", last, noon, kind="manual_review")
    rid = _file(ctx, "ANSWERED", last, noon)
    assert _run(app_client, today) == 0
    csrf = login(app_client, "rev1")
    reply = {"csrf": csrf, "reply": "请本人到柜台办理"}
    assert app_client.post(f"/console/requests/{rid}/close", data=reply).status_code == 200
    assert _list(app_client, "overdue", today) == ["ANSWERED"]
    assert _run(app_client, today + dt.timedelta(days=1)) == 1
    assert _status(ctx, "ANSWERED")[1:] == (BeneficiaryStatus.SUSPENDED, ["suspended"])
    bound = last + dt.timedelta(days=ctx.rules.due_soon_days)
    with ctx.db() as db:
        bid = _status(ctx, "OPEN")[0]
        person = db.get(Beneficiary, bid)
        assert person is not None
        assert elder_status(db, ctx, person, today) == (
            "review",
            "人工审核申请已按时提交,正在办理,结果会通过公众号通知",
        )
    assert _run(app_client, bound) == 0
    assert _list(app_client, "awaiting_decision", bound) == ["OPEN"]
    assert _run(app_client, bound + dt.timedelta(days=1)) == 1
    assert _status(ctx, "OPEN")[1:] == (BeneficiaryStatus.SUSPENDED, ["suspended"])
