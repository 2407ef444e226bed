"""Region scopes, second look (an outsider's review of the first): a scoped member of staff learns nothing about
another district's pensioners from the traces of their own attempts, and a scoped admin grants no more than they
have.

- The audit log (read by every supervisor, scoped or not) named the record an out-of-scope attempt reached (a
  person's external id, found by the ID number typed) and had no entry for an id that does not exist: a scoped
  supervisor typed a neighbour's ID number into the search, then read in the log whether they are a pensioner
  and under which external id. A scoped attempt now leaves one entry alike for both, naming what was asked.
- A scoped admin could widen their own scope, create unscoped accounts, or reset an unscoped account's password
  and log in with it; the last unscoped admin could scope themselves (nobody left to import the roster).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.features.console.models import AssistRequest, ConsoleAlert, StaffUser
from tests.service import factories
from tests.service.features.console.conftest import login, new_client
from tests.service.features.console.test_region_scope import GUANGZHOU, WUHAN, Case, _case, _denials, _scope

Probe = Callable[[], httpx.Response]


@pytest.fixture
def far(ctx: ServiceContext, staff_users: dict[str, int]) -> Case:
    """A 广州 pensioner with a case in review; sup1 scoped to 武汉市."""
    _case(ctx, WUHAN, "武汉甲")
    _scope(ctx, "sup1", ["4201"])
    return _case(ctx, GUANGZHOU, "广州乙")


def _probes(client: TestClient, ctx: ServiceContext, far: Case, csrf: str) -> list[tuple[str, Probe, Probe]]:
    """(what, the attempt on the 广州 record, the same attempt on a record that does not exist)."""
    with ctx.db() as db:
        req = AssistRequest(
            beneficiary_id=far.bid, kind="home_visit", phone="13800000000", openid=f"o-{uuid.uuid4().hex}"
        )
        death = {"date_of_death": "2026-01-01", "certified_on": "2026-02-01", "session": "-"}
        alert = ConsoleAlert(kind="certified_after_death", beneficiary_id=far.bid, detail=death)
        db.add_all([req, alert])
        db.flush()
        rid, aid = req.id, alert.id
    nobody = factories.id_number(GUANGZHOU, birth=dt.date(1951, 2, 3))  # valid, on no roster
    unknown = str(uuid.uuid4())

    def search(q: str) -> Probe:
        return lambda: client.post("/console/roster/search", data={"q": q, "csrf": csrf})

    def evidence(number: str) -> Probe:
        rows = f"id_number,event_date,source,reference\n{number},2026-01-05,医保结算,R1\n".encode()
        return lambda: client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", rows)})

    return [
        ("case", lambda: client.get(f"/console/cases/{far.sid}"), lambda: client.get(f"/console/cases/{unknown}")),
        (
            "person",
            lambda: client.get(f"/console/beneficiaries/{far.bid}"),
            lambda: client.get("/console/beneficiaries/999999"),
        ),
        ("request", lambda: client.get(f"/console/requests/{rid}"), lambda: client.get("/console/requests/999999")),
        (
            "alert",
            lambda: client.post(f"/console/alerts/{aid}/resolve", data={"csrf": csrf}),
            lambda: client.post("/console/alerts/999999/resolve", data={"csrf": csrf}),
        ),
        ("search", search(far.number), search(nobody)),
        ("evidence", evidence(far.number), evidence(nobody)),
    ]


def test_the_audit_log_does_not_tell_a_hidden_record_from_a_missing_one(
    app_client: TestClient, ctx: ServiceContext, far: Case
) -> None:
    csrf = login(app_client, "sup1")
    for what, hidden, missing in _probes(app_client, ctx, far, csrf):
        before = len(_denials(ctx, "staff:sup1"))
        a = hidden()
        between = len(_denials(ctx, "staff:sup1"))
        b = missing()
        after = len(_denials(ctx, "staff:sup1"))
        assert a.status_code == b.status_code, what
        # One entry each (the same work, too: no timing difference from writing the log for one of them only).
        assert (between - before, after - between) == (1, 1), what
    log = app_client.get("/console/audit", params={"action": "scope.denied"}).text
    assert far.ext not in log and "广州乙" not in log
    kinds = {kind for _, kind in _denials(ctx, "staff:sup1")}
    assert kinds == {"case", "beneficiary", "request", "alert"}
    # Unscoped staff: a miss is a miss, nothing was withheld (no entry).
    other = new_client(app_client)
    other_csrf = login(other, "sup2")
    for _, hidden, missing in _probes(other, ctx, far, other_csrf):
        hidden(), missing()
    assert _denials(ctx, "staff:sup2") == []


def _user(ctx: ServiceContext, name: str) -> StaffUser:
    with ctx.db() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == name))
        assert user is not None
        db.expunge(user)
        return user


def test_a_scoped_admin_grants_no_more_than_their_own_scope(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    _scope(ctx, "admin", ["4201"])
    _scope(ctx, "rev1", ["420106"])
    rev2_hash = _user(ctx, "rev2").password_hash
    csrf = login(app_client, "admin")
    new = {"csrf": csrf, "password": "a-long-password", "role": "supervisor"}
    for i, wider in enumerate(("", "4401", "42", "420106 440106")):
        r = app_client.post("/console/users", data={**new, "username": f"x{i}", "scope": wider})
        assert r.status_code == 422 and "以内的账户" in r.text, wider
    assert app_client.post("/console/users", data={**new, "username": "wc1", "scope": "420106"}).status_code == 200

    def change(name: str, **form: str) -> httpx.Response:
        r: httpx.Response = app_client.post(f"/console/users/{staff_users[name]}", data={"csrf": csrf, **form})
        return r

    # Their own scope, wider or not: another admin's to change.
    assert change("admin", op="scope", scope="").status_code == 422
    # An account inside their scope: kept inside it.
    assert change("rev1", op="scope", scope="").status_code == 422
    assert change("rev1", op="scope", scope="4401").status_code == 422
    assert change("rev1", op="scope", scope="420111").url.path.endswith("/users")
    # An account wider than theirs (here: unscoped) is not theirs to manage at all.
    for form in (
        {"op": "password", "password": "another-long-password"},
        {"op": "role", "role": "admin"},
        {"op": "disable"},
        {"op": "scope", "scope": "4201"},
    ):
        assert change("rev2", **form).status_code == 422, form
    assert _user(ctx, "admin").scope == ["4201"]
    assert _user(ctx, "rev1").scope == ["420111"]
    rev2 = _user(ctx, "rev2")
    assert (rev2.scope, rev2.role, rev2.active, rev2.password_hash) == ([], "reviewer", True, rev2_hash)
    with ctx.db() as db:
        names = set(db.scalars(select(StaffUser.username)))
    assert "wc1" in names and not {"x0", "x1", "x2", "x3"} & names
    # The users page lists the accounts they manage and their own, not the rest of the jurisdiction's staff.
    page = app_client.get("/console/users").text
    listed = {name for name in names if f">{name}<" in page}
    assert listed == {"admin", "rev1", "wc1"}, listed


def test_an_admin_cannot_scope_themselves_out(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The last unscoped admin scoping themselves would leave nobody to import the roster or unscope anyone."""
    csrf = login(app_client, "admin")
    r = app_client.post(f"/console/users/{staff_users['admin']}", data={"csrf": csrf, "op": "scope", "scope": "4201"})
    assert r.status_code == 422 and "本人" in r.text
    assert _user(ctx, "admin").scope == []


def test_the_audit_log_shows_no_clear_id_number_in_a_target(
    app_client: TestClient, ctx: ServiceContext, far: Case
) -> None:
    """The audit viewer is not scoped (supervisors see every district's entries): a target is masked as the
    details are. An evidence file named after a person's number put it in clear in the log (its target)."""
    csrf = login(app_client, "sup1")
    rows = b"external_id,event_date,source,reference\n"
    name = f"{far.number}-医保结算.csv"
    r = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": (name, rows)})
    assert r.status_code == 200
    log = app_client.get("/console/audit", params={"action": "evidence.import"}).text
    assert far.number not in log and far.number[:4] + "*" * 10 + far.number[-4:] in log
