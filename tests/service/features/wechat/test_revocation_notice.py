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
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession, utcnow
from service.certification.revocation import revoke_certification
from service.features.wechat.accounts import own_account
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notify import run_notifications
from service.infra import clock
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, certified_by, channel, values, zh
from tests.service.features.wechat.test_notify_hours import china

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
        "keyword3": f"{zh(TODAY - 10 * DAY)}的认证已被经办机构撤销",
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
    b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
    _revoke(ctx, db, cid, "wrong_accept")
    monkeypatch.setattr(clock, "now_utc", lambda: china(22, 2, 0))
    run_notifications(ctx, channel(ctx).api, TODAY)
    notice = db.scalars(select(WeChatNotice)).one()
    assert (notice.kind, notice.status, notice.openid) == ("revoked", NoticeStatus.PENDING, "o-own")
    assert fake_wx.state.sent_templates == []
    again = certified_by(db, ctx, b, "o-own", when=utcnow())  # she certified again before the morning
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
