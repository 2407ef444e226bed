"""A request left open from an earlier cycle (filed before the person's last certification, before a certification
closed the person's requests: assist.close_on_certification) is no request of this cycle: the H5 form does not
show it as "申请已提交,正在办理", and the request filed on the last valid day is stored, so the daily run waits for
the office (cycle.being_decided) instead of suspending. Before, the form answered "无需重复提交" and stored nothing,
and the person was suspended the next night (the shelter ignores a request filed before the last certification).
The real app through TestClient (SQLite file, the fake WeChat server)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from service.certification.cycle import CycleState, run_cycle, states_of
from service.certification.models import Beneficiary, BeneficiaryStatus, Certification, utcnow
from service.features.console.alt_cert import certify_alternative
from service.features.console.assist import submit
from service.features.console.models import AssistRequest
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.wechat.h5.test_assist_requests import (  # noqa: F401 (w: the fixture)
    OPENID,
    World,
    apply,
    failed_session,
    form,
    open_requests,
    w,
)


def _certified_a_year_ago_with_a_request_left_open(w: World) -> int:  # noqa: F811
    """The person certified at the counter a year ago, today their last valid day, and the home-visit request they
    had filed from this WeChat a few days before it still open (left so before certifications closed requests):
    its id."""
    today = local_today(w.ctx.settings)
    year_ago = today - dt.timedelta(days=365)
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None
        certify_alternative(db, w.ctx, b, "counter", year_ago, None, {"note": "柜台认证"})
        b.valid_until = today
        req = submit(db, b, "home_visit", "13800138000", "卧床", OPENID, "wechat:test")
        db.flush()
        rid = req.id
        cert = db.scalars(select(Certification).where(Certification.beneficiary_id == b.id)).one()
        cid = cert.id
    factories.update(w.ctx, Certification, cid, created_at=utcnow() - dt.timedelta(days=365), valid_until=today)
    factories.update(w.ctx, AssistRequest, rid, created_at=utcnow() - dt.timedelta(days=370))
    return rid


def test_a_request_of_the_last_cycle_does_not_block_the_one_filed_on_the_last_valid_day(w: World) -> None:  # noqa: F811
    stale = _certified_a_year_ago_with_a_request_left_open(w)
    sid = failed_session(w)  # today's video, rejected: the failure screen's link to the form
    page, _ = form(w, f"/h5/apply/{sid}")
    assert 'id="apply-form"' in page and "正在办理" not in page
    status, text = apply(w, sid)
    assert status == 200 and 'id="apply-done"' in text and "已提交" in text
    [new] = open_requests(w)
    assert new.id != stale and new.session_id == sid
    today = local_today(w.ctx.settings)
    with w.ctx.db() as db:
        old = db.get(AssistRequest, stale)
        b = db.get(Beneficiary, w.beneficiary_id)
        assert old is not None and b is not None
        assert (old.status, old.outcome) == ("closed", "certified")  # answered by last year's certification
        tomorrow = today + dt.timedelta(days=1)
        cases = w.ctx.hooks.case_sources()
        assert states_of(db, [b], tomorrow, w.ctx.rules, cases=cases)[b.id] is CycleState.AWAITING_DECISION
        assert run_cycle(db, tomorrow, w.ctx.rules, cases=cases) == []
    with w.ctx.db() as db:
        b = db.get(Beneficiary, w.beneficiary_id)
        assert b is not None and b.status == BeneficiaryStatus.ACTIVE
