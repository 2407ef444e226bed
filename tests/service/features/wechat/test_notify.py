"""Notifications through the fake WeChat server: reminders go only to people who are really due, overdue or
suspended, to the openid that certified them, with real names and dates in every keyword; never while a
session of theirs is under way, never after an accept; each notice once however often the schedule runs (a
new validity period re-arms them); failed sends are retried, then given up with a record; the schedule's tick
also refreshes the token."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import record_certification
from service.certification.models import Beneficiary, Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.features.proxy.models import ProxyOperator, ProxyOperatorIdentity, ProxySession, ProxySessionKind
from service.features.wechat.client import TOKEN_KEY
from service.features.wechat.models import NoticeStatus, WeChatNotice, WeChatSessionLink, WeChatUser
from service.features.wechat.notify import deliver, queue_notices, run_notifications
from service.features.wechat.runtime import WeChatChannel, build_channel
from service.features.wechat.schedule import tick
from tests.service import factories
from tests.service.features.wechat.conftest import PUBLIC
from tests.service.features.wechat.fake_wechat import FakeWeChat

TODAY = dt.date(2026, 11, 22)
# Last year's certification: older than the result window, so it brings no result message of its own.
LAST_YEAR = utcnow() - dt.timedelta(days=300)
FIELDS = {"first", "keyword1", "keyword2", "keyword3", "remark"}
PLACEHOLDERS = ("none", "null", "undefined", "—", "-", "n/a", "{")


# Reminders are sent in the bureau's daytime only (test_notify_hours.py); these run at 10:00 of its day.
pytestmark = pytest.mark.usefixtures("daytime")


def zh(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def channel(ctx: ServiceContext) -> WeChatChannel:
    ch = build_channel(ctx.settings)
    assert ch is not None
    return ch


def sent_to(fake: FakeWeChat, template: str) -> list[str]:
    return [m["touser"] for m in fake.state.sent_templates if m["template_id"] == template]


def values(msg: dict[str, Any]) -> dict[str, str]:
    """Every keyword of a message as WeChat received it, checked to be real text (never a placeholder)."""
    out = {k: str(v["value"]) for k, v in msg["data"].items()}
    assert set(out) == FIELDS, out
    for key, text in out.items():
        assert text.strip(), key
        assert not any(p in text.lower() for p in PLACEHOLDERS if len(p) > 1), (key, text)
        assert text.strip() not in PLACEHOLDERS, (key, text)
    return out


def certified_by(db: Session, ctx: ServiceContext, b: Beneficiary, openid: str, when: dt.datetime = LAST_YEAR) -> str:
    """`b` certified themselves from `openid`'s WeChat (an accepted self session from the H5 pages)."""
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", when
    db.add(WeChatSessionLink(session_id=s.id, openid=openid))
    db.flush()
    return s.id


def proxy_certified_by(db: Session, ctx: ServiceContext, elder: Beneficiary, openid: str) -> None:
    """A relative certified `elder` from their own WeChat (a proxy session): the elder's reminders are not theirs."""
    op = ProxyOperator(
        id=str(uuid.uuid4()),
        channel="wechat",
        channel_hash=uuid.uuid4().hex,
        token_hash="-",
        identity=ProxyOperatorIdentity(name="李建国", verified_at=LAST_YEAR, template_consent=False),
    )
    db.add(op)
    s = create_session(db, ctx, elder, Channel.PROXY, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", LAST_YEAR
    db.flush()
    db.add(ProxySession(session_id=s.id, kind=ProxySessionKind.CERTIFICATION.value, operator_id=op.id))
    db.add(WeChatSessionLink(session_id=s.id, openid=openid))
    db.flush()


def test_reminders_only_to_people_really_due_every_keyword_real(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    day = dt.timedelta(days=1)
    due = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 10 * day)
    late = factories.beneficiary(db, ctx.keyring, name="钱德明", valid_until=TODAY - 3 * day)
    off = factories.beneficiary(db, ctx.keyring, name="李玉兰", valid_until=TODAY - 40 * day)
    fine = factories.beneficiary(db, ctx.keyring, name="孙立群", valid_until=TODAY + 200 * day)
    undated = factories.beneficiary(db, ctx.keyring, name="周建华", valid_until=None)  # an older database's row
    dead = factories.beneficiary(db, ctx.keyring, name="郑永福", valid_until=TODAY - 90 * day)
    for openid, b in (
        ("o-due", due),
        ("o-late", late),
        ("o-off", off),
        ("o-fine", fine),
        ("o-undated", undated),
        ("o-dead", dead),
    ):
        certified_by(db, ctx, b, openid)
    off.status, off.suspended_on = "suspended", TODAY - 39 * day
    dead.status = "deceased"
    # Only opened a session (as the H5 start page does, binding the openid) and never finished: not her phone.
    opened = factories.beneficiary(db, ctx.keyring, name="吴秀梅", valid_until=TODAY - 5 * day)
    s = create_session(db, ctx, opened, Channel.SELF, consent=False, actor="test").session
    s.state = SessionState.EXPIRED
    db.add_all(
        [WeChatSessionLink(session_id=s.id, openid="o-opened"), WeChatUser(openid="o-opened", beneficiary_id=opened.id)]
    )
    elder = factories.beneficiary(db, ctx.keyring, name="王桂兰", valid_until=TODAY + 5 * day)
    proxy_certified_by(db, ctx, elder, "o-relative")
    db.commit()
    api = channel(ctx).api

    first = run_notifications(ctx, api, TODAY)
    assert (first.queued, first.sent) == (3, 3)
    got = {m["touser"]: m for m in fake_wx.state.sent_templates}
    assert set(got) == {"o-due", "o-late", "o-off"}
    assert (got["o-due"]["template_id"], got["o-due"]["url"]) == ("tpl-due", PUBLIC + "/h5/")
    assert values(got["o-due"]) == {
        "first": "赵淑珍的待遇资格认证即将到期",
        "keyword1": "赵淑珍",
        "keyword2": "2026年12月2日",
        "keyword3": "待遇正常发放",
        "remark": "请在2026年12月2日前完成认证,以免影响待遇发放。",
    }
    # Overdue but still paid: the notice says so, and nothing about a suspension.
    assert got["o-late"]["template_id"] == "tpl-overdue"
    assert values(got["o-late"]) == {
        "first": "钱德明的待遇资格认证已到期",
        "keyword1": "钱德明",
        "keyword2": "2026年11月19日",
        "keyword3": "待遇仍正常发放,逾期未认证将暂停发放",
        "remark": "请尽快完成认证,逾期未认证将暂停发放;行动不便可申请上门认证。",
    }
    # Really suspended: both dates. No "suspended" template configured here, so the overdue one carries it.
    assert got["o-off"]["template_id"] == "tpl-overdue"
    assert values(got["o-off"]) == {
        "first": "李玉兰的待遇已暂停发放",
        "keyword1": "李玉兰",
        "keyword2": "2026年10月13日",
        "keyword3": "自2026年10月14日起暂停发放",
        "remark": "待遇已暂停发放,完成认证后将恢复发放,暂停期间的待遇按规定补发。",
    }
    for _ in range(3):  # the schedule runs again and again (and the next day)
        again = run_notifications(ctx, api, TODAY + day)
        assert (again.queued, again.sent) == (0, 0)

    # Certified again: a new validity period, and its own reminder when that one comes due.
    due.valid_until = TODAY + 365 * day
    db.commit()
    later = run_notifications(ctx, api, TODAY + 350 * day)
    assert later.sent == 3
    assert sent_to(fake_wx, "tpl-due") == ["o-due", "o-due"]
    # 孙立群's period ran out meanwhile (the first run's two notices go out in no particular order), and 李玉兰,
    # suspended over a year now, is told again, once in this cycle (before: never again; Part CT's floor)
    overdue = sent_to(fake_wx, "tpl-overdue")
    assert sorted(overdue[:2]) == ["o-late", "o-off"] and sorted(overdue[2:]) == ["o-fine", "o-off"]
    new = {m["touser"]: values(m) for m in fake_wx.state.sent_templates[3:]}
    assert (new["o-due"]["keyword2"], new["o-fine"]["keyword2"]) == ("2027年11月22日", "2027年6月10日")
    assert new["o-fine"]["first"] == "孙立群的待遇资格认证已到期"


def test_nothing_while_a_session_is_under_way_then_the_reminder(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="冯淑华", valid_until=TODAY + dt.timedelta(days=12))
    certified_by(db, ctx, b, "o-busy")
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session  # open, not expired
    db.commit()
    api = channel(ctx).api
    under_way: list[tuple[str, str | None]] = [
        (SessionState.OPEN, None),
        (SessionState.QUEUED, None),
        (SessionState.PROCESSING, None),
        (SessionState.DECIDED, "review"),  # waiting for staff
        (SessionState.FAILED, None),  # a job that gave up: in the review queue
    ]
    for state, decision in under_way:
        s.state, s.decision = state, decision
        db.commit()
        run = run_notifications(ctx, api, TODAY)
        assert (run.queued, run.sent) == (0, 0), state
    s.state, s.decision = SessionState.EXPIRED, None
    db.commit()
    assert run_notifications(ctx, api, TODAY).sent == 1
    assert sent_to(fake_wx, "tpl-due") == ["o-busy"]


def test_a_reminder_queued_before_a_session_or_an_accept_is_not_sent(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="陈秀英", valid_until=TODAY - dt.timedelta(days=2))
    certified_by(db, ctx, b, "o-accept")
    db.commit()
    api = channel(ctx).api
    with ctx.db() as unit:
        assert queue_notices(unit, ctx, TODAY) == 1
    # A second later she opens a session: the queued notice waits (not lost, not spent).
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    s.state = SessionState.PROCESSING
    db.commit()
    run = deliver(ctx, api, TODAY)
    assert (run.sent, run.cancelled) == (0, 0)
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.openid == "o-accept"))
    assert notice is not None
    db.refresh(notice)
    assert (notice.status, notice.attempts) == (NoticeStatus.PENDING, 0)
    # ...and is accepted: a new validity period, so the overdue notice is no longer true.
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow()
    record_certification(db, b, TODAY, ctx.rules)
    db.commit()
    run = deliver(ctx, api, TODAY)
    assert (run.sent, run.cancelled) == (0, 1)
    db.refresh(notice)
    assert notice.status == NoticeStatus.CANCELLED
    assert run_notifications(ctx, api, TODAY).sent == 0
    assert fake_wx.state.sent_templates == []


def test_result_message_once_with_retries_and_a_record(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="张秀英", valid_until=TODAY + dt.timedelta(days=364))
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    db.add(WeChatSessionLink(session_id=s.id, openid="o-result"))
    db.commit()
    api = channel(ctx).api
    assert run_notifications(ctx, api, TODAY).queued == 0  # not decided yet: nothing to tell

    yesterday = utcnow() - dt.timedelta(days=1)
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", yesterday.replace(hour=17, minute=30)
    db.commit()
    fake_wx.state.fail_sends = 2  # WeChat is busy twice
    assert run_notifications(ctx, api, TODAY).sent == 0
    assert run_notifications(ctx, api, TODAY).sent == 0
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.ref == s.id))
    assert notice is not None
    db.refresh(notice)
    assert notice.status == NoticeStatus.PENDING and notice.attempts == 2
    assert "system error" in (notice.last_error or "")
    assert run_notifications(ctx, api, TODAY).sent == 1
    assert run_notifications(ctx, api, TODAY).sent == 0
    db.refresh(notice)
    assert notice.status == NoticeStatus.SENT and notice.attempts == 3 and notice.msgid
    [msg] = [m for m in fake_wx.state.sent_templates if m["template_id"] == "tpl-result"]
    assert msg["touser"] == "o-result" and msg["url"] == f"{PUBLIC}/h5/result/{s.id}"
    assert values(msg) == {
        "first": "张秀英的待遇资格认证结果",
        "keyword1": "张秀英",
        "keyword2": "认证通过",
        "keyword3": zh(yesterday.date() + dt.timedelta(days=1)),  # 17:30 UTC is the next morning in China
        "remark": "本次认证有效期至2027年11月21日。",
    }


def test_a_notice_is_given_up_after_the_attempts(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    b = factories.beneficiary(db, ctx.keyring, valid_until=TODAY - dt.timedelta(days=1))
    certified_by(db, ctx, b, "o-unreachable")
    db.commit()
    api = channel(ctx).api
    fake_wx.state.fail_sends = 100
    runs = [run_notifications(ctx, api, TODAY) for _ in range(ctx.settings.wechat.notify_max_attempts + 2)]
    assert sum(r.failed for r in runs) == 1
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.openid == "o-unreachable"))
    assert notice is not None
    db.refresh(notice)
    assert notice.status == NoticeStatus.FAILED and notice.attempts == ctx.settings.wechat.notify_max_attempts
    assert sent_to(fake_wx, "tpl-overdue") == []


def test_the_schedule_tick_refreshes_the_token_centrally(ctx: ServiceContext, fake_wx: FakeWeChat) -> None:
    ch = channel(ctx)
    tick(ctx, ch)
    tick(ctx, ch)
    assert fake_wx.state.token_fetches == 1  # fetched once, kept while it lasts (test_token_quota.py)
    stored = ch.api.store.get(TOKEN_KEY)
    assert stored is not None
    ch.api.store.set(TOKEN_KEY, stored[0], time.time() + ctx.settings.wechat.schedule_s)  # lapses before the next run
    tick(ctx, ch)
    assert fake_wx.state.token_fetches == 2  # renewed by the schedule
    fake_wx.state.media["m"] = b"\xff\xd8x"
    ch.api.download_media("m")
    assert fake_wx.state.token_fetches == 2  # none by the senders
