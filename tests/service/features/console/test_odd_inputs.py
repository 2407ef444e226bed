"""Odd requests a console page must answer without a server error, on SQLite and PostgreSQL alike: a NUL
character in a filter, a search, a reason or a case id (PostgreSQL stores none: the query itself failed), and
record ids or sequence numbers past the database's integer (PostgreSQL: out of range; SQLite: OverflowError).
Each was a 500; now a 400 page (NUL) or an invalid parameter (422), and nothing is written. An activity-evidence
CSV row with more fields than its header (any backend) or a NUL in a cell (PostgreSQL) failed the whole import
with a 500; now that row is reported and the others are imported."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, utcnow
from service.features.console.models import AltCertification, ReviewDecision
from tests.service import factories
from tests.service.features.console.conftest import login, new_client

HUGE = str(10**20)


def _review_case(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, state="decided", decision="review", decided_at=utcnow())
        s.reasons = ["SPOOF_SUSPECTED"]
        db.add(s)
        return s.id


def test_a_nul_character_anywhere_in_a_console_request_is_a_400_page(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _review_case(ctx)
    csrf = login(app_client, "sup1")
    assert app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code == 200
    gets = [
        "/console/queue?channel=self%00",
        "/console/queue?region=42%00",
        "/console/cases/%00",
        f"/console/cases/{sid}%00/img/card/0",
        "/console/audit?action=case%00&actor=x",
    ]
    for url in gets:
        r = app_client.get(url)
        assert r.status_code == 400 and "请求含有无效字符" in r.text, url
    posts = [
        (f"/console/cases/{sid}/decide", {"decision": "accept", "reason": "人像一致\x00"}),
        ("/console/roster/search", {"q": "张\x00"}),
        (f"/console/cases/{sid}%00/claim", {}),
    ]
    for url, data in posts:
        r = app_client.post(url, data={"csrf": csrf, **data})
        assert r.status_code == 400 and "请求含有无效字符" in r.text, url
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(ReviewDecision)) == 0  # nothing decided
    # A login form with one is refused alike (before any look-up of the name).
    out = TestClient(app_client.app)
    page = out.get("/console/login")
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = out.post("/console/login", data={"username": "sup1\x00", "password": "x", "csrf": token})
    assert r.status_code == 400


def test_ids_past_the_databases_integer_are_invalid_parameters_not_server_errors(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    csrf = login(app_client, "sup1")
    for url in (
        f"/console/beneficiaries/{HUGE}",
        f"/console/beneficiaries/-{HUGE}",
        f"/console/requests/{HUGE}",
        f"/console/audit?before={HUGE}",
        f"/console/audit?before=-{HUGE}",
    ):
        assert app_client.get(url).status_code == 422, url
    form = {
        "csrf": csrf,
        "kind": "counter",
        "on_date": "2025-01-01",
        "evidence": "本人到柜台",
        "date_of_death": "2025-01-01",
        "source": "民政部门",
        "reply": "请到柜台办理",
    }
    for url in (
        f"/console/alerts/{HUGE}/resolve",
        f"/console/requests/{HUGE}/close",
        f"/console/requests/{HUGE}/certify",
        f"/console/beneficiaries/{HUGE}/certify",
        f"/console/beneficiaries/{HUGE}/deceased",
    ):
        assert app_client.post(url, data=form).status_code == 422, url
    assert (
        app_client.post(f"/console/alerts/{HUGE}/identity", data={**form, "finding": "same_person"}).status_code == 422
    )
    admin = new_client(app_client)
    admin_csrf = login(admin, "admin")
    assert admin.post(f"/console/users/{HUGE}", data={"csrf": admin_csrf, "op": "disable"}).status_code == 422
    # The largest id that can exist is still looked up: missing, as before.
    assert app_client.get(f"/console/beneficiaries/{2**31 - 1}").status_code == 404
    assert app_client.get(f"/console/audit?before={2**31 - 1}").status_code == 200


def test_evidence_rows_with_extra_fields_or_a_nul_are_reported_not_a_500(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        exts = [factories.beneficiary(db, ctx.keyring).external_id for _ in range(3)]
    day = "2025-06-30"
    body = (
        "external_id,event_date,source,reference\n"
        f"{exts[0]},{day},bank,BK-1,柜台2号\n"  # a fifth field the header does not name
        f"{exts[1]}\x00,{day},bank,BK-2\n"  # a damaged cell
        f"{exts[2]},{day},bank,BK-3,\n"  # a trailing comma: harmless
    )
    csrf = login(app_client, "sup1")
    r = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", body.encode(), "text/csv")})
    assert r.status_code == 200
    assert 'id="certified">1<' in r.text and 'id="rejected">2<' in r.text
    assert "该行的列数多于表头" in r.text and "该行含有无效字符" in r.text and "\x00" not in r.text
    with ctx.db() as db:
        certified = db.scalars(
            select(Beneficiary.external_id).join(AltCertification, AltCertification.beneficiary_id == Beneficiary.id)
        ).all()
        assert certified == [exts[2]]
