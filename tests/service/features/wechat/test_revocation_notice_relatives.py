"""A proxy-only certification's revocation told (docs/security.md, Part BL): a person certified only through
relatives (代认证) has no WeChat account of their own, so the revocation notice (Parts AG, AO) reached nobody, and
the next daily run suspended the pension without a word. The notice now goes, when the person has no account of
their own, to each relative whose binding to the person is in force (active, neither locked nor flagged), at the
account that opened that relative's proxy sessions; never to an account that made a revoked session of the person
(the revoked session's own relative included), never for 冒领, and worded for a relative: the person's name and the
date to certify by, nothing of the payment's state nor of who made the revoked certification.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.features.proxy.models import (
    BindingStatus,
    ProxyBinding,
    ProxyOperatorIdentity,
    ProxySession,
    ProxySessionKind,
)
from service.features.wechat.models import NoticeStatus, WeChatNotice, WeChatSessionLink
from service.features.wechat.notify import run_notifications
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, certified_by, channel, values, zh
from tests.service.features.wechat.test_revocation_notice import DAY, _certification, _revoke

pytestmark = pytest.mark.usefixtures("daytime")


def _relative(
    db: Session,
    ctx: ServiceContext,
    elder: Beneficiary,
    openid: str,
    status: str = BindingStatus.ACTIVE,
    when: dt.datetime = LAST_YEAR,
    person: str | None = None,
    linked: bool = True,
) -> tuple[ProxyBinding, str]:
    """A relative bound to `elder` (binding `status`) who certified them from their WeChat `openid` at `when` (an
    accepted proxy session under the binding, opened from the H5 pages, linked to `openid` unless not `linked`: the
    link is sent without waiting): (the binding, the session id). `person`: the relative's verified person (their
    keyed ID hash), shared by two accounts of one relative."""
    identity = ProxyOperatorIdentity(name="李建国", person_hash=person, verified_at=LAST_YEAR, template_consent=False)
    op, binding = factories.relative_binding(db, elder.id, status, identity=identity)
    s = create_session(db, ctx, elder, Channel.PROXY, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", when
    db.flush()
    kind = ProxySessionKind.CERTIFICATION.value
    db.add(ProxySession(session_id=s.id, kind=kind, operator_id=op.id, binding_id=binding.id))
    if linked:
        db.add(WeChatSessionLink(session_id=s.id, openid=openid, created_at=when))
    db.flush()
    return binding, s.id


def _family(ctx: ServiceContext, db: Session) -> tuple[Beneficiary, int, dict[str, ProxyBinding]]:
    """周秀英, certified only by relatives: her son last year, her daughter ten days ago (the certification revoked
    below); a nephew whose binding ended. (The person, the daughter's certification, the bindings by openid.)"""
    elder = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 300 * DAY)
    son, by_son = _relative(db, ctx, elder, "o-son")
    _certification(db, elder, by_son, LAST_YEAR.date(), TODAY + 60 * DAY)
    nephew, _ = _relative(db, ctx, elder, "o-nephew", status=BindingStatus.ENDED)
    daughter, by_daughter = _relative(db, ctx, elder, "o-daughter", when=utcnow() - 10 * DAY)
    cid = _certification(db, elder, by_daughter, TODAY - 10 * DAY, TODAY + 355 * DAY)
    return elder, cid, {"o-son": son, "o-nephew": nephew, "o-daughter": daughter}


def _sent(fake: FakeWeChat) -> list[dict[str, Any]]:
    return list(fake.state.sent_templates)


def test_a_proxy_only_persons_revocation_is_told_to_the_relative_bound_in_force(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    elder, cid, _bindings = _family(ctx, db)
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(elder)
    until = elder.valid_until  # recomputed without the revoked certification: the son's
    assert until is not None and until > TODAY
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    (msg,) = _sent(fake_wx)  # not the daughter (her session was revoked), not the nephew (unbound)
    assert run.sent == 1 and msg["touser"] == "o-son"
    day = zh(until)
    assert values(msg) == {
        "first": "您绑定的家属周秀英的待遇资格认证已被撤销",
        "keyword1": "周秀英",
        "keyword2": day,
        "keyword3": "此前的一次认证已被经办机构撤销",
        "remark": f"请在{day}前为其重新办理认证,或陪同本人到社保经办窗口办理。",
    }
    state = db.scalar(select(Certification.notice_state).where(Certification.id == cid))
    assert state == "queued"
    assert run_notifications(ctx, channel(ctx).api, TODAY + DAY).sent == 0  # once


def test_a_relative_is_told_nothing_of_a_suspension(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    """The person's own notice says the payment stopped; a relative's says only that the person must certify."""
    elder, cid, _bindings = _family(ctx, db)
    _revoke(ctx, db, cid, "other")
    elder.status, elder.valid_until, elder.suspended_on = "suspended", TODAY - 5 * DAY, TODAY - 1 * DAY
    db.commit()
    run_notifications(ctx, channel(ctx).api, TODAY)
    (msg,) = _sent(fake_wx)
    text = "".join(values(msg).values())
    assert msg["touser"] == "o-son" and "暂停" not in text and "届满" not in text
    assert values(msg)["keyword2"] == "请尽快重新认证"


def test_impersonation_is_told_to_no_relative(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    """Guard (passed before): 冒领 is told to nobody; the family may be whoever collected."""
    _elder, cid, _bindings = _family(ctx, db)
    _revoke(ctx, db, cid, "impersonation")
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 0
    assert db.scalar(select(Certification.notice_state).where(Certification.id == cid)) == "skipped"


def test_a_person_with_an_account_of_their_own_is_told_and_no_relative(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """Guard (passed before): the person's own account is told, as before; the relatives are not told besides."""
    elder, cid, _bindings = _family(ctx, db)
    certified_by(db, ctx, elder, "o-own", when=utcnow() - 200 * DAY)
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-own"]


def test_a_binding_ended_before_the_send_is_not_told(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, daytime: dt.datetime
) -> None:
    """Recorded, then the elder ended the son's binding before it was sent: checked again, cancelled."""
    _elder, cid, bindings = _family(ctx, db)
    bindings["o-daughter"].locked = True  # as the console's revocation does (Part AB)
    _revoke(ctx, db, cid, "wrong_accept")
    night = daytime + dt.timedelta(hours=13)  # 23:00 in the bureau: recorded, not sent
    assert run_notifications(ctx, channel(ctx).api, TODAY, night).sent == 0
    (notice,) = db.scalars(select(WeChatNotice)).all()
    assert (notice.openid, notice.status) == ("o-son", NoticeStatus.PENDING)
    bindings["o-son"].status, bindings["o-son"].ended_at = BindingStatus.ENDED, utcnow()
    db.commit()
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 0
    db.refresh(notice)
    assert notice.status == NoticeStatus.CANCELLED and _sent(fake_wx) == []


def _counter_certified(ctx: ServiceContext, db: Session, elder: Beneficiary, days_ago: int = 10) -> int:
    """A certification of `elder` at the counter (staff), `days_ago` days ago: its id."""
    s = create_session(db, ctx, elder, Channel.STAFF, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow() - days_ago * DAY
    db.flush()
    return _certification(db, elder, s.id, TODAY - days_ago * DAY, TODAY + (365 - days_ago) * DAY)


@pytest.mark.parametrize("locked", [True, False], ids=["console", "api_or_cli"])
def test_the_revoked_sessions_relative_is_not_told_at_another_of_their_accounts(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, locked: bool
) -> None:
    """The daughter made the revoked certification from one WeChat account (its binding locked when the console
    revoked it, not by the operator API or the CLI); a second account of hers (the same verified person) is bound
    in force too: a relative is one person."""
    elder = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 300 * DAY)
    _son, by_son = _relative(db, ctx, elder, "o-son", person="p-son")
    _certification(db, elder, by_son, LAST_YEAR.date(), TODAY + 60 * DAY)
    _relative(db, ctx, elder, "o-daughter-2", person="p-daughter")
    daughter, by_daughter = _relative(db, ctx, elder, "o-daughter", when=utcnow() - 10 * DAY, person="p-daughter")
    cid = _certification(db, elder, by_daughter, TODAY - 10 * DAY, TODAY + 355 * DAY)
    daughter.locked = locked  # as the console's revocation does (Part AB)
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-son"]


def test_the_relative_who_made_an_unlinked_revoked_session_is_not_told(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The revoked session was never linked to the daughter's WeChat (the H5 pages send the link without waiting)
    and her binding is not locked (revoked through the operator API or `pension-cert revoke`): she made it, by
    the proxy session's operator, and is not told."""
    elder = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 300 * DAY)
    _son, by_son = _relative(db, ctx, elder, "o-son")
    _certification(db, elder, by_son, LAST_YEAR.date(), TODAY + 60 * DAY)
    daughter, _ = _relative(db, ctx, elder, "o-daughter")  # an earlier session of hers, linked
    s = create_session(db, ctx, elder, Channel.PROXY, consent=False, actor="test").session
    s.state, s.decision, s.decided_at = SessionState.DECIDED, "accept", utcnow() - 10 * DAY
    db.flush()
    kind = ProxySessionKind.CERTIFICATION.value
    db.add(ProxySession(session_id=s.id, kind=kind, operator_id=daughter.operator_id, binding_id=daughter.id))
    cid = _certification(db, elder, s.id, TODAY - 10 * DAY, TODAY + 355 * DAY)
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-son"]


def test_after_an_impersonation_revocation_no_relative_is_told_of_a_later_one(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The son's certification was revoked as 冒领; a later counter certification is revoked in error: the family
    (whoever may have collected) is not told of it either, the bureau's investigation decides."""
    elder, cid, _bindings = _family(ctx, db)
    _revoke(ctx, db, cid, "impersonation")
    counter = _counter_certified(ctx, db, elder, days_ago=5)
    _revoke(ctx, db, counter, "wrong_accept")
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 0 and _sent(fake_wx) == []
    assert db.scalar(select(Certification.notice_state).where(Certification.id == counter)) == "skipped"


def test_a_counter_certifications_revocation_is_not_called_the_familys(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The relative's title says what is true whoever made the revoked certification (here the counter)."""
    elder, _cid, _bindings = _family(ctx, db)
    _revoke(ctx, db, _counter_certified(ctx, db, elder, days_ago=3), "other")
    run_notifications(ctx, channel(ctx).api, TODAY)
    sent = _sent(fake_wx)
    assert sorted(m["touser"] for m in sent) == ["o-daughter", "o-son"]
    for msg in sent:
        assert values(msg)["first"] == "您绑定的家属周秀英的待遇资格认证已被撤销"
        assert "代办" not in "".join(values(msg).values())


@pytest.mark.parametrize("state", ["locked", "flagged", "pending_consent", "locked_at_another_account"])
def test_a_relative_whose_binding_is_not_in_force_is_not_told(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, state: str
) -> None:
    """A sister who did not make the revoked certification, whose binding is locked, flagged, still awaiting the
    elder's consent, or in force at an account whose other binding (the same person) is locked: not told."""
    elder, cid, _bindings = _family(ctx, db)
    sister, _ = _relative(db, ctx, elder, "o-sister", person="p-sister")
    if state == "locked_at_another_account":
        other, _ = _relative(db, ctx, elder, "o-sister-2", person="p-sister")
        other.locked = True
    elif state == "pending_consent":
        sister.status = BindingStatus.PENDING_CONSENT
    else:
        setattr(sister, state, True)
    _revoke(ctx, db, cid, "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-son"]


def test_two_relatives_are_both_recorded_and_each_told_once(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """A counter certification revoked: the son and the daughter (both bound in force, neither made it) are each
    recorded and told once, a second run sends nothing."""
    elder, _cid, _bindings = _family(ctx, db)
    cid = _counter_certified(ctx, db, elder, days_ago=3)
    _revoke(ctx, db, cid, "wrong_accept")
    assert run_notifications(ctx, channel(ctx).api, TODAY).sent == 2
    notices = db.scalars(select(WeChatNotice).order_by(WeChatNotice.openid)).all()
    assert [(n.openid, n.ref, n.status) for n in notices] == [
        ("o-daughter", f"{elder.id}:cert{cid}", NoticeStatus.SENT),
        ("o-son", f"{elder.id}:cert{cid}", NoticeStatus.SENT),
    ]
    assert run_notifications(ctx, channel(ctx).api, TODAY + DAY).sent == 0
    assert sorted(m["touser"] for m in _sent(fake_wx)) == ["o-daughter", "o-son"]


def test_a_relative_with_two_accounts_is_told_once_at_the_latest(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The son bound the elder from two accounts (the same verified person) and certified her from both: one
    message, at the account of his latest proxy session."""
    elder = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 300 * DAY)
    _relative(db, ctx, elder, "o-son-old", person="p-son")
    _relative(db, ctx, elder, "o-son-new", when=utcnow() - 30 * DAY, person="p-son")
    _revoke(ctx, db, _counter_certified(ctx, db, elder, days_ago=3), "wrong_accept")
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert [m["touser"] for m in _sent(fake_wx)] == ["o-son-new"]
