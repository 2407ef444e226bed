"""A revoked certification is told to the person (service/features/wechat/revoked.py): they must certify again
before their recomputed validity ends. Through the WeChat account the reminders use (the person's latest accepted
self-certification, not a revoked one's, not one made for the record's previous ID-number holder), queued by the
schedule and sent in the bureau's daytime; not for 冒领 (impersonation: telling the account may tip off whoever
collects for the person), and not once the person has certified again.

Before: nothing told the person. Their validity silently went back (maybe to a date already past) and the next
daily run suspended the payment without a word beyond the ordinary reminders.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, utcnow
from service.certification.revocation import ACTION as REVOKED_ACTION
from service.certification.revocation import revoke_certification
from service.features.proxy.models import ProxySession
from service.features.wechat.accounts import own_account
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.features.wechat.revoked import revocations_to_tell
from service.infra import clock
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import (
    LAST_YEAR,
    TODAY,
    certified_by,
    channel,
    proxy_certified_by,
    values,
    zh,
)
from tests.service.features.wechat.test_notify_hours import china
from tests.service.test_lock_order import lock_waits, until
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)

DAY = dt.timedelta(days=1)
NOTE = "复核发现受理有误"


def _certification(db: Session, b: Beneficiary, session_id: str, on: dt.date, until: dt.date) -> int:
    c = Certification(
        beneficiary_id=b.id, session_id=session_id, certified_on=on, valid_until=until, code="code-" + session_id
    )
    db.add(c)
    b.valid_until, b.last_certified_on = until, on
    db.flush()
    return c.id


def _person_certified_twice(ctx: ServiceContext, db: Session, own: str, other: str) -> tuple[Beneficiary, int]:
    """赵淑珍 certified from her own phone (`own`) last year, then a certification from `other` ten days ago that
    staff later find was accepted in error: (the person, the second certification's id)."""
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 300 * DAY)
    genuine = certified_by(db, ctx, b, own)
    _certification(db, b, genuine, LAST_YEAR.date(), TODAY + 60 * DAY)
    wrong = certified_by(db, ctx, b, other, when=utcnow() - 10 * DAY)
    return b, _certification(db, b, wrong, TODAY - 10 * DAY, TODAY + 355 * DAY)


def _sent(fake: FakeWeChat) -> list[dict[str, Any]]:
    return list(fake.state.sent_templates)


def _revoke(ctx: ServiceContext, db: Session, cid: int, reason: str) -> None:
    revoke_certification(db, ctx.rules, cid, reason, NOTE, "staff:sup1", hold_days=180)
    db.commit()


@pytest.mark.usefixtures("daytime")
def test_the_persons_own_account_learns_the_new_date(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(b)
    assert b.valid_until is not None and b.valid_until > TODAY + 30 * DAY  # not due: no reminder besides
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.sent == 1
    (msg,) = fake_wx.state.sent_templates
    assert (msg["touser"], msg["template_id"]) == ("o-own", "tpl-overdue")  # no "revoked" template configured
    assert values(msg) == {
        "first": "赵淑珍的待遇资格认证已被撤销",
        "keyword1": "赵淑珍",
        "keyword2": zh(b.valid_until),
        "keyword3": f"{zh(TODAY - 10 * DAY)}的认证已被撤销",  # 22 characters in full: its 20-character wording
        "remark": f"请在{zh(b.valid_until)}前重新完成认证,以免影响待遇发放。",
    }
    assert run_notifications(ctx, channel(ctx).api, TODAY + DAY).sent == 0  # once


def test_a_validity_already_past_says_so(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, daytime: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="钱德明", valid_until=TODAY + 300 * DAY)
    genuine = certified_by(db, ctx, b, "o-own", when=utcnow() - 400 * DAY)
    _certification(db, b, genuine, TODAY - 400 * DAY, TODAY - 35 * DAY)
    wrong = certified_by(db, ctx, b, "o-other", when=utcnow() - 8 * DAY)
    cid = _certification(db, b, wrong, TODAY - 5 * DAY, TODAY + 360 * DAY)
    _revoke(ctx, db, cid, "other")
    db.refresh(b)
    assert b.valid_until is not None and b.valid_until < TODAY
    run_notifications(ctx, channel(ctx).api, TODAY)
    past = f"认证有效期已于{zh(b.valid_until)}届满,请尽快重新认证,逾期未认证将暂停发放。"
    # Only the notice: the ordinary overdue reminder, due too now, is held back the day the notice goes.
    sent = [(m["touser"], values(m)["first"], values(m)["keyword2"], values(m)["remark"]) for m in _sent(fake_wx)]
    assert sent == [("o-own", "钱德明的待遇资格认证已被撤销", zh(b.valid_until), past)]
    monkeypatch.setattr(clock, "now_utc", lambda: daytime + DAY)
    run_notifications(ctx, channel(ctx).api, TODAY + DAY)  # the next day: the reminder as for anyone overdue
    assert [(m["touser"], m["template_id"]) for m in _sent(fake_wx)[1:]] == [("o-own", "tpl-overdue")]
    assert "已被撤销" not in values(_sent(fake_wx)[1])["first"]


@pytest.mark.usefixtures("daytime")
def test_impersonation_is_not_told(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    _b, cid = _person_certified_twice(ctx, db, "o-own", "o-impostor")
    _revoke(ctx, db, cid, "impersonation")
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 0
    assert db.scalars(select(WeChatNotice.kind)).all() == []


@pytest.mark.usefixtures("daytime")
def test_never_the_account_of_the_previous_id_number_holder(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="孙立群", valid_until=TODAY + 300 * DAY)
    # Opened for the record's previous ID number, decided (after a long review) after the new holder's own.
    previous = certified_by(db, ctx, b, "o-previous-holder", when=utcnow() - 10 * DAY)
    s = db.get(CertSession, previous)
    assert s is not None
    s.created_at = utcnow() - 60 * DAY
    b.identity_since = utcnow() - 30 * DAY
    own = certified_by(db, ctx, b, "o-new-holder", when=utcnow() - 20 * DAY)
    _certification(db, b, own, TODAY - 20 * DAY, TODAY + 345 * DAY)
    wrong = certified_by(db, ctx, b, "o-wrong", when=utcnow() - 9 * DAY)
    cid = _certification(db, b, wrong, TODAY - 9 * DAY, TODAY + 356 * DAY)
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in fake_wx.state.sent_templates] == ["o-new-holder"]


def test_at_night_it_waits_and_a_new_certification_cancels_it(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 2, 0))  # before the sessions: utcnow reads the clock
    b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    notice = db.scalars(select(WeChatNotice)).one()
    assert (notice.kind, notice.status, notice.openid) == ("revoked", NoticeStatus.PENDING, "o-own")
    assert fake_wx.state.sent_templates == []
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 8, 30))
    again = certified_by(db, ctx, b, "o-own", when=utcnow())  # she certified again before the morning's run
    _certification(db, b, again, TODAY, TODAY + 365 * DAY)
    db.commit()
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 9, 0))
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.cancelled == 1  # her new certification's own result message went out instead
    assert [m["data"]["keyword2"]["value"] for m in fake_wx.state.sent_templates] == ["认证通过"]
    db.refresh(notice)
    assert notice.status == NoticeStatus.CANCELLED


@pytest.mark.usefixtures("daytime")
def test_never_an_account_that_made_a_revoked_session_of_the_person(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """Before: the rule left out the revoked session, not its account: the phone that made it, with another
    accepted self-certification of the person (an earlier one), was the person's "own" account, told of the
    revocation and reminded (contradicting revoked.py and docs/wechat.md)."""
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 300 * DAY)
    earlier = certified_by(db, ctx, b, "o-fraud", when=utcnow() - 400 * DAY)
    _certification(db, b, earlier, TODAY - 400 * DAY, TODAY - 35 * DAY)
    wrong = certified_by(db, ctx, b, "o-fraud", when=utcnow() - 10 * DAY)
    cid = _certification(db, b, wrong, TODAY - 10 * DAY, TODAY + 355 * DAY)
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert _sent(fake_wx) == [] and db.scalars(select(WeChatNotice.kind)).all() == []
    db.refresh(b)
    assert own_account(db, b.id) is None


@pytest.mark.usefixtures("daytime")
def test_one_revocation_is_told_once_though_the_own_account_changes(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """Before: the notice was recorded per account, and the own account recomputed each run for a week: once a
    later revocation made another account the person's own, the first revocation was told to it a second time."""
    b = factories.beneficiary(db, ctx.keyring, name="李桂兰", valid_until=TODAY + 300 * DAY)
    first = certified_by(db, ctx, b, "o-a", when=utcnow() - 30 * DAY)
    _certification(db, b, first, TODAY - 30 * DAY, TODAY + 335 * DAY)
    second = certified_by(db, ctx, b, "o-b", when=utcnow() - 20 * DAY)
    cert_b = _certification(db, b, second, TODAY - 20 * DAY, TODAY + 345 * DAY)
    third = certified_by(db, ctx, b, "o-c", when=utcnow() - 10 * DAY)
    cert_c = _certification(db, b, third, TODAY - 10 * DAY, TODAY + 355 * DAY)
    _revoke(ctx, db, cert_c, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-b"]
    _revoke(ctx, db, cert_b, "other")  # o-a is the person's own account now
    run_notifications(ctx, channel(ctx).api, TODAY)
    refs = db.execute(select(WeChatNotice.ref, WeChatNotice.openid).order_by(WeChatNotice.id)).all()
    assert [tuple(r) for r in refs] == [(f"{b.id}:cert{cert_c}", "o-b"), (f"{b.id}:cert{cert_b}", "o-a")]
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-b", "o-a"]


def _revoked_days_ago(db: Session, cid: int, days: int) -> None:
    """The revocation of `cid` (and its audit entry) moved `days` back: revoked then, no schedule run since."""
    cert = db.get(Certification, cid)
    assert cert is not None and cert.revoked_at is not None
    cert.revoked_at -= days * DAY
    for made in db.scalars(select(Certification).where(Certification.beneficiary_id == cert.beneficiary_id)):
        made.created_at -= (days + 1) * DAY  # all before the revocation: none is a certification since
    for entry in db.scalars(select(AuditEntry).where(AuditEntry.action == REVOKED_ACTION)):
        if (entry.detail or {}).get("certification") == cid:
            entry.at -= days * DAY
    db.commit()


@pytest.mark.usefixtures("daytime")
def test_a_schedule_stopped_ten_days_still_tells_it_once(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    """Before: the notice was found from the revocations' audit entries of the last 7 days; a WeChat schedule
    stopped (or WeChat switched off) for longer never sent it, and nothing said so. Now the revocation leaves its
    notice due (`certifications.notice_state`), whatever the gap; the ordinary overdue reminder, due too, still
    waits the day the notice goes."""
    b = factories.beneficiary(db, ctx.keyring, name="钱德明", valid_until=TODAY + 300 * DAY)
    genuine = certified_by(db, ctx, b, "o-own", when=utcnow() - 400 * DAY)
    _certification(db, b, genuine, TODAY - 400 * DAY, TODAY - 35 * DAY)
    wrong = certified_by(db, ctx, b, "o-other", when=utcnow() - 30 * DAY)
    cid = _certification(db, b, wrong, TODAY - 30 * DAY, TODAY + 335 * DAY)
    _revoke(ctx, db, cid, "wrong_accept")
    _revoked_days_ago(db, cid, 11)  # the schedule stopped the day of the revocation, resumed eleven days later
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert [(m["touser"], values(m)["first"]) for m in _sent(fake_wx)] == [("o-own", "钱德明的待遇资格认证已被撤销")]
    assert run.sent == 1
    run_notifications(ctx, channel(ctx).api, TODAY + DAY)  # once (the next day, the overdue reminder may go)
    told = [m for m in _sent(fake_wx) if values(m)["first"].endswith("已被撤销")]
    assert len(told) == 1 and db.scalars(select(WeChatNotice.ref).where(WeChatNotice.kind == "revoked")).all() == [
        f"{b.id}:cert{cid}"
    ]
    cert = db.get(Certification, cid)
    assert cert is not None
    db.refresh(cert)
    assert cert.notice_state == "queued"


@pytest.mark.usefixtures("daytime")
def test_a_revocation_no_message_can_tell_is_settled(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    """Not told (impersonation; a person certified only through a relative who made the revoked session and has no
    binding in force: no account is theirs, and that relative is never addressed: Parts AO, BL) is settled at the
    first run, not looked at again every minute for ever."""
    _b, impostor = _person_certified_twice(ctx, db, "o-own", "o-impostor")
    _revoke(ctx, db, impostor, "impersonation")
    elder = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 300 * DAY)
    proxy_certified_by(db, ctx, elder, "o-relative")
    by_relative = db.scalars(select(ProxySession.session_id)).one()
    wrong = _certification(db, elder, by_relative, TODAY - 10 * DAY, TODAY + 355 * DAY)
    _revoke(ctx, db, wrong, "wrong_accept")
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 0
    assert db.scalars(select(WeChatNotice.kind)).all() == []
    states = db.scalars(select(Certification.notice_state).where(Certification.id.in_((impostor, wrong)))).all()
    assert states == ["skipped", "skipped"]


@pytest.mark.usefixtures("daytime")
def test_a_revocation_from_before_the_stored_state_is_told_within_its_week_only(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """A revocation made before this version has no stored state (NULL): it is told as it was then, found by its
    audit entry within the week after it (a schedule that ran meanwhile told it already); an older one is not told
    now (months later, the office had it in hand)."""
    _recent_b, recent = _person_certified_twice(ctx, db, "o-recent", "o-wrong-1")
    _old_b, old = _person_certified_twice(ctx, db, "o-old", "o-wrong-2")
    for cid in (recent, old):
        _revoke(ctx, db, cid, "wrong_accept")
    db.execute(update(Certification).values(notice_state=None))  # as the migration leaves a revoked row
    db.commit()
    _revoked_days_ago(db, recent, 3)
    _revoked_days_ago(db, old, 10)
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-recent"]
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 0


def test_two_schedulers_at_once_settle_a_notice_once(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """Two schedules (Celery beat on two hosts, or an embedded schedule beside beat) read the same due notice at once;
    the second's settling waits for the first's row lock and then finds nothing due: one of them records it. Before
    (the settling unconditional), both returned it. PostgreSQL: SQLite serialises the two transactions."""
    ctx = pg_ctx
    with ctx.db() as db:
        b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
        db.commit()
        _revoke(ctx, db, cid, "wrong_accept")
    settled, go = threading.Event(), threading.Event()

    def schedule(hold: bool) -> list[tuple[str, str]]:
        with ctx.db() as db:
            told = revocations_to_tell(db, utcnow() - 7 * DAY)
            if hold:  # settled, not yet committed: the row stays locked
                settled.set()
                go.wait(10)
            return told

    first, first_told = started(lambda: schedule(True))
    assert settled.wait(10)
    second, second_told = started(lambda: schedule(False))
    assert until(lambda: lock_waits(ctx) > 0)  # the second read it due and waits on the first's settling
    go.set()
    first.join(20)
    second.join(20)
    assert first_told == [[(f"{b.id}:cert{cid}", "o-own")]] and second_told == [[]]
    with ctx.db() as db:
        assert db.scalar(select(Certification.notice_state).where(Certification.id == cid)) == "queued"
