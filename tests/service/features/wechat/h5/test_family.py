"""The family page's status line for each bound elder, through the real app: certified until, due, overdue,
being checked, in review; only the caller's own active bindings, and only with the operator token."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from service.certification import sessions
from service.certification.models import Beneficiary, Channel, SessionState, utcnow
from service.features.console.alt_cert import certify_alternative
from service.features.proxy import operators
from service.features.proxy.models import BindingStatus, ProxyBinding
from service.infra.clock import local_midnight, local_today
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App


def bind(
    app: App, valid_days: int | None, status: BindingStatus = BindingStatus.ACTIVE, grace_dated: bool = False
) -> tuple[str, str, int]:
    """(operator token, binding id, elder id) for a new elder valid for `valid_days` more days (`grace_dated`: the
    date is the roster's first-import grace)."""
    with app.ctx.db() as db:
        login = operators.login(db, app.ctx, "wechat", OPENID, operators.H5_CLIENT)
        today = utcnow().date()
        until = today + dt.timedelta(days=valid_days) if valid_days is not None else None
        elder = factories.beneficiary(db, app.ctx.keyring, valid_until=until, grace_dated=grace_dated)
        db.flush()
        row = ProxyBinding(
            id=str(uuid.uuid4()),
            operator_id=login.operator.id,
            beneficiary_id=elder.id,
            relationship="child",
            status=status,
        )
        db.add(row)
        db.commit()
        return login.token, row.id, elder.id


def statuses(app: App, token: str) -> dict[str, tuple[str, str]]:
    r = app.client.get("/h5/api/family/elders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {e["binding_id"]: (e["state"], e["text"]) for e in r.json()["elders"]}


@pytest.mark.parametrize(
    ("days", "state", "words"),
    [
        (200, "certified", "已认证,有效期至"),
        (10, "due_soon", "前完成认证"),
        (-3, "overdue", "已于"),
        (None, "undated", "暂无认证记录"),
    ],
)
def test_the_cycle_state_of_each_elder(app: App, days: int | None, state: str, words: str) -> None:
    token, binding, _ = bind(app, days)
    got_state, text = statuses(app, token)[binding]
    assert got_state == state and words in text
    if days is not None:
        day = utcnow().date() + dt.timedelta(days=days)  # the real date, never a placeholder; written as people read it
        assert f"{day.year}年{day.month}月{day.day}日" in text and day.isoformat() not in text


def test_an_elder_dated_only_by_the_import_grace_is_offered_certification(app: App) -> None:
    """Before: an elder the roster brought in without dates (given the 90-day grace date) read 已认证,有效期至…, and
    the page offered nothing to do, though nobody had certified them."""
    token, binding, _ = bind(app, 90, grace_dated=True)
    state, text = statuses(app, token)[binding]
    assert state == "awaiting_first" and "尚未认证" in text and "首次认证" in text and "已认证" not in text


@pytest.mark.parametrize(
    ("session_state", "decision", "state"),
    [(SessionState.DECIDED, "review", "review"), (SessionState.QUEUED, None, "checking")],
)
def test_a_session_in_review_or_being_checked_comes_first(
    app: App, session_state: SessionState, decision: str | None, state: str
) -> None:
    token, binding, elder_id = bind(app, 200)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, elder_id)
        assert b is not None
        s = sessions.create_session(db, app.ctx, b, Channel.PROXY, False, "test").session
        s.state, s.decision = session_state, decision
        db.commit()
    assert statuses(app, token)[binding][0] == state


def test_of_two_sessions_opened_in_one_instant_the_one_still_being_checked_comes_first(app: App) -> None:
    """Two sessions with one `created_at` (a batch, the clock's resolution): the latest is read by
    `models.newest_first` (undecided or decided later first, then the id), not in whatever order the database
    returns a tie; the line says 正在核验 however the rows were stored."""
    token, binding, elder_id = bind(app, 200)
    at = utcnow().replace(microsecond=0)
    with app.ctx.db() as db:
        decided = {"state": SessionState.DECIDED, "decision": "review", "decided_at": at, "created_at": at}
        db.add(factories.session_row(elder_id, id="ffffffff-0000-4000-8000-000000000001", **decided))
        db.add(
            factories.session_row(elder_id, id="00000000-0000-4000-8000-000000000002", state="queued", created_at=at)
        )
        db.commit()
    assert statuses(app, token)[binding] == ("checking", "认证材料正在核验")


def test_an_elder_whose_certification_made_in_time_waits_for_staff_is_not_told_to_certify(app: App) -> None:
    """The video queued at 23:30 on the last valid day, its job failed (awaiting staff; before: past the branches
    for a session in review or being checked, the page read 认证已于…到期,请尽快认证), and one with a later session
    of the relative's still open on top: the lists' rule (cycle.states_of), not a lapse."""
    token, binding, elder_id = bind(app, 200)
    last = local_today(app.ctx.settings) - dt.timedelta(days=2)
    at = local_midnight(app.ctx.settings, last) + dt.timedelta(hours=23, minutes=30)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, elder_id)
        assert b is not None
        b.valid_until = last
        db.add(factories.session_row(elder_id, state=SessionState.FAILED, queued_at=at, created_at=at))
        db.commit()
    state, text = statuses(app, token)[binding]
    assert state == "review" and "按时提交" in text and "到期" not in text, text


def test_only_active_bindings_and_only_with_the_operator_token(app: App) -> None:
    _, active, _ = bind(app, 200)
    token, pending, _ = bind(app, 200, BindingStatus.PENDING_CONSENT)  # a new login: the latest token counts
    got = statuses(app, token)
    assert active in got and pending not in got
    r = app.client.get("/h5/api/family/elders")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


def test_a_locked_binding_of_an_elder_certified_by_a_home_visit_reads_certified(app: App) -> None:
    """Before: the lock replaced every line, so after staff recorded a home visit the page still read 多次认证未通过,
    该绑定已锁定 and offered no certificate (the script links it for `certified` only). The lock replaces only the
    lines that ask the relative to certify; staff lift it with the console's 解除锁定 (a home visit does not)."""
    token, binding, elder_id = bind(app, -3)  # overdue
    factories.update(app.ctx, ProxyBinding, binding, failures=3, locked=True)
    assert statuses(app, token)[binding] == ("locked", "多次认证未通过,该绑定已锁定,请联系经办机构人工审核")
    today = local_today(app.ctx.settings)
    with app.ctx.db() as db:
        b = db.get(Beneficiary, elder_id)
        assert b is not None
        certify_alternative(db, app.ctx, b, "home_visit", today, None, {"note": "上门见到本人"})
        db.commit()
        until = b.valid_until
    assert until is not None and until > today
    state, text = statuses(app, token)[binding]
    assert state == "certified" and text == f"已认证,有效期至{until.year}年{until.month}月{until.day}日"
    assert factories.update(app.ctx, ProxyBinding, binding).locked is True  # staff decide, not the home visit
    assert app.client.get(f"/h5/family/bindings/{binding}/certificate.png").status_code == 200  # what the link opens


@pytest.mark.parametrize("days", [-3, 10])
def test_an_elder_the_roster_stopped_is_not_asked_to_certify(app: App, days: int) -> None:
    """The roster says the benefit system stopped paying the elder here (transferred out: cycle.stopped_by_roster):
    the dashboard counts them 名册已停发 and no reminder asks them to certify. Before, the family page still told the
    relative 认证已于…到期,请尽快认证 (or 请在…前完成认证); now it says why nothing is asked."""
    token, binding, elder = bind(app, days)
    factories.update(app.ctx, Beneficiary, elder, roster_status="suspended")
    state, text = statuses(app, token)[binding]
    assert state == "stopped_by_roster" and "无需在此认证" in text and "到期" not in text and "完成认证" not in text
