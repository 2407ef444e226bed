"""Region scopes (least privilege): a reviewer scoped to 武汉市 ("4201") sees and acts on the pensioners of
武汉市 only. A case, person, picture, request or alert of 广州市 ("4401") reads exactly as one that does not exist,
and every such attempt is audited (``scope.denied``); lists, searches and dashboard figures hold only what is in
scope; unscoped staff see everybody; admins set and change scopes, audited, and a bad code is refused in Chinese."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, SessionDecision, SessionState, utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.auth import Role, Staff
from service.features.console.look_alikes import KIND as LOOK_ALIKE
from service.features.console.models import AltCertification, AssistRequest, ConsoleAlert, ReviewClaim, StaffUser
from service.features.console.review_queue import CaseError, decide_case
from service.features.console.scope import ScopeError, in_scope, parse_scope
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login, new_client
from tests.service.features.console.test_queue_regions import _verification_in_review

WUHAN, GUANGZHOU = "420106", "440106"  # 武昌区 (in 武汉市, "4201"), 天河区 (in 广州市, "4401")


@dataclass(frozen=True)
class Case:
    sid: str
    bid: int
    ext: str
    number: str
    name: str


def _jpeg() -> bytes:
    img = np.full((120, 96, 3), 128, np.uint8)
    cv2.rectangle(img, (20, 20), (70, 90), (40, 60, 200), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _case(ctx: ServiceContext, region: str, name: str) -> Case:
    """A pensioner of `region` and a session of theirs in the review queue, with a stored card picture."""
    number = factories.id_number(region, birth=dt.date(1952, 6, 1))
    key = f"test/{uuid.uuid4().hex}/card"
    ctx.storage.put(key, _jpeg())
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=number, name=name, region=region)
        s = factories.session_row(
            b.id,
            state=SessionState.DECIDED,
            decision=SessionDecision.REVIEW,
            decided_at=utcnow(),
            reasons=["SPOOF_SUSPECTED"],
            id_card_key=key,
        )
        db.add(s)
        db.flush()
        return Case(s.id, b.id, b.external_id, number, name)


def _scope(ctx: ServiceContext, username: str, prefixes: list[str]) -> None:
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == username))
        assert user is not None
        user.scope = prefixes


def _denials(ctx: ServiceContext, actor: str = "staff:rev1") -> list[tuple[str, str]]:
    with ctx.db() as db:
        rows = db.scalars(
            select(ConsoleAuditEntry).where(
                ConsoleAuditEntry.action == "scope.denied", ConsoleAuditEntry.actor == actor
            )
        ).all()
        return [(e.target, e.detail["kind"]) for e in rows]


@pytest.fixture
def two(ctx: ServiceContext, staff_users: dict[str, int]) -> tuple[Case, Case]:
    """A 武汉 case and a 广州 case; rev1 and sup1 scoped to 武汉市, rev2 and sup2 unscoped."""
    wuhan, guangzhou = _case(ctx, WUHAN, "武汉甲"), _case(ctx, GUANGZHOU, "广州乙")
    _scope(ctx, "rev1", ["4201"])
    _scope(ctx, "sup1", ["4201"])
    return wuhan, guangzhou


def test_the_rule() -> None:
    scoped = Staff(1, "r", "r", Role.REVIEWER, "-", scope=("4201", "440106"))
    assert in_scope(scoped, "420106") and in_scope(scoped, "440106001")
    assert not in_scope(scoped, "440105") and not in_scope(scoped, "42") and not in_scope(scoped, "")
    assert in_scope(Staff(1, "r", "r", Role.REVIEWER, "-"), "")  # unscoped: everybody
    assert parse_scope(" 420106，4201、4201\n") == ["4201", "420106"]
    assert parse_scope("") == []
    for bad in ("42x", "420", "4201061", "9901", "１２"):
        with pytest.raises(ScopeError) as err:
            parse_scope(bad)
        assert "地区范围无效" in err.value.message


def test_the_queue_shows_only_cases_in_scope(
    app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]
) -> None:
    wuhan, guangzhou = two
    login(app_client, "rev1")
    page = app_client.get("/console/queue").text
    assert wuhan.sid in page and guangzhou.sid not in page and "广州乙" not in page
    assert guangzhou.sid not in app_client.get("/console/queue", params={"region": "4401"}).text
    other = new_client(app_client)
    login(other, "rev2")
    page = other.get("/console/queue").text
    assert wuhan.sid in page and guangzhou.sid in page  # unscoped: everybody


def test_a_case_out_of_scope_reads_as_missing_and_is_audited(
    app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]
) -> None:
    wuhan, guangzhou = two
    csrf = login(app_client, "rev1")
    unknown = str(uuid.uuid4())
    missing = app_client.get(f"/console/cases/{unknown}")
    hidden = app_client.get(f"/console/cases/{guangzhou.sid}")
    assert hidden.status_code == missing.status_code == 404 and hidden.text == missing.text
    assert "广州乙" not in hidden.text
    assert app_client.get(f"/console/cases/{wuhan.sid}").status_code == 200

    # Its pictures: the card of the 武汉 case is there, the 广州 one's reads as missing.
    assert app_client.get(f"/console/cases/{wuhan.sid}/img/card/0").status_code == 200
    img = app_client.get(f"/console/cases/{guangzhou.sid}/img/card/0")
    assert img.status_code == 404 and img.content == app_client.get(f"/console/cases/{unknown}/img/card/0").content

    # Claiming it: the answer for an unknown case, and no claim is made.
    claim = app_client.post(f"/console/cases/{guangzhou.sid}/claim", data={"csrf": csrf})
    claim_unknown = app_client.post(f"/console/cases/{unknown}/claim", data={"csrf": csrf})
    assert claim.status_code == claim_unknown.status_code == 409 and claim.text == claim_unknown.text
    decide = app_client.post(
        f"/console/cases/{guangzhou.sid}/decide", data={"csrf": csrf, "decision": "accept", "reason": "看过了"}
    )
    assert decide.status_code == 409 and "案件不存在" in decide.text
    with ctx.db() as db:
        assert db.get(ReviewClaim, guangzhou.sid) is None
        s = db.get(CertSession, guangzhou.sid)
        assert s is not None and s.decision == SessionDecision.REVIEW
    # "下一件" takes the 武汉 case, never the 广州 one.
    assert app_client.post("/console/cases/next", data={"csrf": csrf}).url.path.endswith(wuhan.sid)

    denied = _denials(ctx)
    assert denied.count((guangzhou.sid, "case")) == 4  # page, picture, claim, decision
    # An unknown id leaves the same trace (the log must not tell a hidden case from a missing one).
    assert denied.count((unknown, "case")) == 3  # page, picture, claim


def test_deciding_out_of_scope_in_the_service_is_refused(ctx: ServiceContext, two: tuple[Case, Case]) -> None:
    _, guangzhou = two
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == "sup1"))
        assert user is not None
        staff = Staff(user.id, user.username, user.display_name, Role.SUPERVISOR, "-", scope=tuple(user.scope))
        db.add(ReviewClaim(session_id=guangzhou.sid, claimed_by=user.id, claimed_at=utcnow()))  # held before
    with pytest.raises(CaseError, match="案件不存在"), ctx.db() as db:
        decide_case(db, ctx, staff, guangzhou.sid, "accept", "看过了")


def test_a_person_out_of_scope_reads_as_missing(
    app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]
) -> None:
    wuhan, guangzhou = two
    csrf = login(app_client, "sup1")
    missing = app_client.get("/console/beneficiaries/999999")
    hidden = app_client.get(f"/console/beneficiaries/{guangzhou.bid}")
    assert hidden.status_code == missing.status_code == 404 and hidden.text == missing.text
    assert app_client.get(f"/console/beneficiaries/{wuhan.bid}").status_code == 200

    today = dt.date.today().isoformat()
    death = {"csrf": csrf, "date_of_death": today, "source": "民政部门通报"}
    assert app_client.post(f"/console/beneficiaries/{guangzhou.bid}/deceased", data=death).url.path.endswith("/roster")
    alt = {"csrf": csrf, "kind": "counter", "on_date": today, "evidence": "本人到柜台"}
    assert app_client.post(f"/console/beneficiaries/{guangzhou.bid}/certify", data=alt).url.path.endswith("/roster")
    with ctx.db() as db:
        b = db.get(Beneficiary, guangzhou.bid)
        assert b is not None and b.status == "active"
        assert db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == b.id)).all() == []

    # A search by the number finds the person in scope only.
    found = app_client.post("/console/roster/search", data={"q": wuhan.number, "csrf": csrf})
    assert wuhan.ext in found.text
    none = app_client.post("/console/roster/search", data={"q": guangzhou.number, "csrf": csrf})
    assert none.status_code == 200 and guangzhou.ext not in none.text and "广州乙" not in none.text
    by_name = app_client.post("/console/roster/search", data={"q": "广州", "csrf": csrf})
    assert guangzhou.ext not in by_name.text
    # Named by what was asked (the id in the URL; "id_number" for a search), never by whom it found.
    denied = _denials(ctx, "staff:sup1")
    assert denied.count((str(guangzhou.bid), "beneficiary")) == 3  # page, death, certify
    assert ("id_number", "beneficiary") in denied and not [t for t, _ in denied if t == guangzhou.ext]


def _csv(client: TestClient) -> dict[str, list[str]]:
    text = client.get("/console/dashboard.csv", params={"level": 4}).text.lstrip("\ufeff")
    return {row[0]: row[1:] for row in csv.reader(io.StringIO(text)) if row}


def test_dashboard_counts_only_the_scope(app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]) -> None:
    login(app_client, "rev1")
    scoped = _csv(app_client)
    assert "4201" in scoped and "4401" not in scoped
    assert scoped["total"][-1] == "1" and scoped["review_backlog"] == ["1"]
    other = new_client(app_client)
    login(other, "rev2")
    everyone = _csv(other)
    assert "4201" in everyone and "4401" in everyone
    assert everyone["total"][-1] == "2" and everyone["review_backlog"] == ["2"]
    assert "广东省广州市" not in app_client.get("/console/dashboard").text
    assert "广东省广州市" in other.get("/console/dashboard").text


def test_a_district_officers_figures_are_never_named_after_the_city_or_province(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a reviewer scoped to 武昌区 (420106) at the city or province level got one row "4201, 湖北省武汉市"
    (or "42, 湖北省") holding only 武昌区's people, and a CSV that said nothing of the scope: sent up, it read as the
    whole city's figures. Now a scoped account's figures are grouped at least at its scope's level, and the CSV
    says whose they are; an unscoped account's are as before."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        for region, n in (("420106", 2), ("420111", 5)):  # 武昌区 2, 洪山区 5, both 武汉市
            for _ in range(n):
                until = today + dt.timedelta(days=200)
                factories.beneficiary(db, ctx.keyring, id_number=factories.id_number(region), valid_until=until)
    _scope(ctx, "rev1", ["420106"])
    login(app_client, "rev1")
    for level in (2, 4, 6):
        text = app_client.get("/console/dashboard.csv", params={"level": level}).text.lstrip("\ufeff")
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(text)) if row}
        assert rows["420106"][0] == "湖北省武汉市武昌区" and rows["420106"][-1] == "2"
        assert "4201" not in rows and "42" not in rows
        assert rows["scope"] == ["湖北省武汉市武昌区"] and rows["scope_codes"] == ["420106"]
        assert rows["region_level"] == ["6"]
    page = app_client.get("/console/dashboard", params={"level": 4}).text
    assert "湖北省武汉市武昌区" in page and "统计范围：湖北省武汉市武昌区" in page
    boss = new_client(app_client)
    login(boss, "rev2")  # unscoped: the city row holds the whole city
    text = boss.get("/console/dashboard.csv", params={"level": 4}).text.lstrip("\ufeff")
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(text)) if row}
    assert rows["4201"][0] == "湖北省武汉市" and rows["4201"][-1] == "7"
    assert rows["scope"] == ["全辖区"] and rows["region_level"] == ["4"]


def test_requests_and_alerts_out_of_scope_are_hidden(
    app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]
) -> None:
    wuhan, guangzhou = two
    with ctx.db() as db:
        reqs = [
            AssistRequest(beneficiary_id=c.bid, kind="home_visit", phone="13800000000", openid=f"o-{c.ext}")
            for c in two
        ]
        death = {"date_of_death": "2026-01-01", "certified_on": "2026-02-01", "session": "-"}
        pair = {"pair": f"{wuhan.bid}-{guangzhou.bid}", "other_id": guangzhou.bid, "similarity": 0.9}
        alerts = [
            ConsoleAlert(kind="certified_after_death", beneficiary_id=wuhan.bid, detail=death),
            ConsoleAlert(kind="certified_after_death", beneficiary_id=guangzhou.bid, detail=death),
            ConsoleAlert(kind=LOOK_ALIKE, beneficiary_id=wuhan.bid, detail={**pair, "threshold": 0.8, "found_on": "x"}),
        ]
        db.add_all([*reqs, *alerts])
        db.flush()
        req_ids, alert_ids = [r.id for r in reqs], [a.id for a in alerts]
    csrf = login(app_client, "sup1")
    listed = app_client.get("/console/requests").text
    assert f"/requests/{req_ids[0]}" in listed and f"/requests/{req_ids[1]}" not in listed
    missing = app_client.get("/console/requests/999999")
    hidden = app_client.get(f"/console/requests/{req_ids[1]}")
    assert hidden.status_code == missing.status_code == 404 and hidden.text == missing.text
    closed = app_client.post(f"/console/requests/{req_ids[1]}/close", data={"csrf": csrf, "reply": "请到柜台"})
    assert closed.url.path.endswith("/requests")

    page = app_client.get("/console/alerts").text
    assert f"/alerts/{alert_ids[0]}/" in page and f"/alerts/{alert_ids[1]}/" not in page
    assert f"/alerts/{alert_ids[2]}/" not in page  # a pair across two districts: for staff who see both
    for aid in alert_ids[1:]:
        app_client.post(f"/console/alerts/{aid}/resolve", data={"csrf": csrf, "note": "已核实"})
    with ctx.db() as db:
        req = db.get(AssistRequest, req_ids[1])
        assert req is not None and req.status == "open"
        assert [db.get(ConsoleAlert, a).resolved for a in alert_ids[1:]] == [False, False]  # type: ignore[union-attr]
    denied = _denials(ctx, "staff:sup1")
    assert denied.count((str(req_ids[1]), "request")) == 2 and {t for t, k in denied if k == "alert"} == {
        str(a) for a in alert_ids[1:]
    }
    other = new_client(app_client)
    login(other, "sup2")
    assert f"/alerts/{alert_ids[2]}/" in other.get("/console/alerts").text  # unscoped: every alert


def test_a_verification_session_is_scoped_by_the_claimed_region(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A relative's verification has no beneficiary: the claimed identity's region decides."""
    near = _verification_in_review(ctx, factories.id_number(WUHAN, birth=dt.date(1975, 5, 1)), "李建国")
    far = _verification_in_review(ctx, factories.id_number(GUANGZHOU, birth=dt.date(1976, 5, 1)), "陈志强")
    _scope(ctx, "rev1", ["4201"])
    login(app_client, "rev1")
    page = app_client.get("/console/queue").text
    assert near in page and far not in page
    assert app_client.get(f"/console/cases/{far}").status_code == 404
    assert app_client.get(f"/console/cases/{near}").status_code == 200


def test_evidence_and_roster_imports_of_a_scoped_supervisor(
    app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]
) -> None:
    wuhan, guangzhou = two
    csrf = login(app_client, "sup1")
    rows = "external_id,event_date,source,reference\n" + "".join(
        f"{c.ext},2026-01-05,医保结算,R{i}\n" for i, c in enumerate(two)
    )
    r = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", rows.encode(), "text/csv")})
    assert r.status_code == 200 and "名册中无此人" in r.text
    with ctx.db() as db:
        certified = set(db.scalars(select(AltCertification.beneficiary_id)))
    assert wuhan.bid in certified and guangzhou.bid not in certified
    roster = app_client.post("/console/roster/import", data={"csrf": csrf}, files={"file": ("r.csv", b"x", "text/csv")})
    assert roster.status_code == 403 and "全辖区" in roster.text
    assert 'id="import"' not in app_client.get("/console/roster").text


def test_admin_sets_and_changes_scopes_audited(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    guangzhou = _case(ctx, GUANGZHOU, "广州乙")
    reviewer = new_client(app_client)
    login(reviewer, "rev1")
    assert guangzhou.sid in reviewer.get("/console/queue").text  # unscoped so far

    csrf = login(app_client, "admin")
    new = {"csrf": csrf, "username": "wc1", "password": "a-long-password", "role": "reviewer", "scope": "420106"}
    created = app_client.post("/console/users", data=new)
    assert created.status_code == 200 and "湖北省武汉市武昌区" in created.text
    bad = app_client.post("/console/users", data={**new, "username": "wc2", "scope": "42x"})
    assert bad.status_code == 422 and "地区范围无效" in bad.text

    rev1 = staff_users["rev1"]
    changed = app_client.post(f"/console/users/{rev1}", data={"csrf": csrf, "op": "scope", "scope": "4201, 4403"})
    assert changed.status_code == 200 and changed.url.path.endswith("/users")
    refused = app_client.post(f"/console/users/{rev1}", data={"csrf": csrf, "op": "scope", "scope": "9901"})
    assert refused.status_code == 422 and "不是已知的行政区划代码" in refused.text
    with ctx.db() as db:
        users = {u.username: u for u in db.scalars(select(StaffUser))}
        assert users["wc1"].scope == ["420106"] and "wc2" not in users
        assert users["rev1"].scope == ["4201", "4403"]
        audit = {
            (e.action, e.target): e.detail
            for e in db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action.startswith("user.")))
        }
    created = audit[("user.create", "wc1")]  # kept too: a restore lists it (account_kept)
    assert created == {"role": "reviewer", "scope": ["420106"], "grant": True, "event": created["event"]}
    scoped = audit[("user.scope", "rev1")]
    assert scoped == {"from": [], "to": ["4201", "4403"], "released": [], "event": scoped["event"]}  # kept: F5
    assert "湖北省武汉市" in app_client.get("/console/users").text
    # The change holds from the reviewer's next request, without a new login.
    assert guangzhou.sid not in reviewer.get("/console/queue").text


def test_a_scoped_supervisor_reads_the_audit_entries_of_their_districts_staff(
    app_client: TestClient, ctx: ServiceContext, two: tuple[Case, Case]
) -> None:
    """The audit viewer lists, for a supervisor scoped to 武汉市, what 武汉 staff did (and they themselves), not
    what unscoped staff did with 广州's cases: those entries name 广州's sessions and the reviewers' reasons.
    Unscoped supervisors read every entry; the chain is checked whole for both."""
    wuhan, guangzhou = two
    login(app_client, "rev1")
    assert app_client.get(f"/console/cases/{wuhan.sid}").status_code == 200
    other = new_client(app_client)
    login(other, "rev2")
    assert other.get(f"/console/cases/{guangzhou.sid}").status_code == 200
    scoped = new_client(app_client)
    login(scoped, "sup1")
    rows = _audit_rows(scoped.get("/console/audit").text)
    assert "staff:rev1" in rows and wuhan.sid in rows
    assert "staff:rev2" not in rows and guangzhou.sid not in rows
    assert "staff:rev2" not in _audit_rows(scoped.get("/console/audit", params={"actor": "staff:rev2"}).text)
    unscoped = new_client(app_client)
    login(unscoped, "sup2")
    rows = _audit_rows(unscoped.get("/console/audit").text)
    assert "staff:rev1" in rows and "staff:rev2" in rows and guangzhou.sid in rows


def _audit_rows(page: str) -> str:
    """The audit table (the filter form above it repeats what was typed)."""
    return page[page.index('id="audit"') :]


def test_a_scope_change_releases_the_claims_it_puts_out_of_reach(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """rev2 holds a 广州 case and a 武汉 case; scoped to 武汉市, they can no longer open the 广州 one, so its claim
    is released at once (others took it only after the claim's lifetime), audited with the change; the 武汉 claim
    stays theirs."""
    wuhan, guangzhou = _case(ctx, WUHAN, "武汉甲"), _case(ctx, GUANGZHOU, "广州乙")
    with ctx.db() as db:
        for sid in (wuhan.sid, guangzhou.sid):
            db.add(ReviewClaim(session_id=sid, claimed_by=staff_users["rev2"], claimed_at=utcnow()))
    csrf = login(app_client, "admin")
    form = {"csrf": csrf, "op": "scope", "scope": "4201"}
    changed = app_client.post(f"/console/users/{staff_users['rev2']}", data=form)
    assert changed.status_code == 200
    with ctx.db() as db:
        held = {c.session_id: c.claimed_by for c in db.scalars(select(ReviewClaim))}
        entry = db.scalar(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "user.scope"))
        assert entry is not None
        detail = entry.detail
    assert held == {wuhan.sid: staff_users["rev2"], guangzhou.sid: None}
    assert detail == {"from": [], "to": ["4201"], "released": [guangzhou.sid], "event": detail["event"]}
