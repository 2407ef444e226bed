"""A pensioner who fails and passes within a minute (rejected, "重新录制视频", accepted) ends on the accept: the
failed attempt's result message is not sent once a later attempt of the same person from the same WeChat user
has been decided (that one's message tells where they stand). Before, both went out in the order of the session
ids' UUIDs, so half the time the last message she read was “认证未通过”; and a reject message whose first send
failed went out on WeChat's retry, minutes after she had passed."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, utcnow
from service.features.proxy.models import ProxyOperator, ProxyOperatorIdentity, ProxySession, ProxySessionKind
from service.features.wechat.models import NoticeStatus, WeChatNotice, WeChatSessionLink
from service.features.wechat.notify import run_notifications
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import channel, values

FIRST_ID = "00000000-0000-4000-8000-000000000001"  # sorts (and is stored) before the other
LAST_ID = "ffffffff-ffff-4fff-bfff-ffffffffffff"


def decided(
    db: Session, b: Beneficiary, openid: str, decision: str, ago_s: int, sid: str | None = None, **kw: str
) -> str:
    """A session of `b` opened from `openid`'s WeChat, decided `ago_s` seconds ago."""
    now, sid = utcnow(), sid or str(uuid.uuid4())
    db.add(
        CertSession(
            id=sid,
            beneficiary_id=b.id,
            channel=kw.get("channel", Channel.SELF),
            token_hash="t-" + sid,
            nonce="n-" + sid,
            nonce_expires_at=now,
            expires_at=now,
            state=SessionState.DECIDED,
            decision=decision,
            reasons=["CHALLENGE_MISSING_ACTION"] if decision == "reject" else [],
            decided_at=now - dt.timedelta(seconds=ago_s),
        )
    )
    db.flush()
    db.add(WeChatSessionLink(session_id=sid, openid=openid))
    db.flush()
    return sid


def outcomes(fake: FakeWeChat, openid: str) -> list[str]:
    return [values(m)["keyword2"] for m in fake.state.sent_templates if m["touser"] == openid]


def test_a_reject_then_an_accept_within_a_minute_ends_on_the_accept(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="周桂芳", valid_until=dt.date.today() + dt.timedelta(days=365))
    # Stored first and first by id, decided last: the order the rows come back in is not the order of events.
    accepted = decided(db, b, "o-retry", "accept", 10, FIRST_ID)
    rejected = decided(db, b, "o-retry", "reject", 40, LAST_ID)
    db.commit()
    run = run_notifications(ctx, channel(ctx).api)
    assert outcomes(fake_wx, "o-retry") == ["认证通过"]
    assert (run.sent, run.cancelled) == (1, 1)
    notices = {n.ref: n.status for n in db.scalars(select(WeChatNotice))}
    assert notices == {accepted: NoticeStatus.SENT, rejected: NoticeStatus.CANCELLED}  # kept as a record


def test_a_reject_whose_send_failed_is_not_sent_after_the_accept(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    b = factories.beneficiary(db, ctx.keyring, name="吴淑兰", valid_until=dt.date.today() + dt.timedelta(days=365))
    decided(db, b, "o-busy-wechat", "reject", 60)
    db.commit()
    api = channel(ctx).api
    fake_wx.state.fail_sends = 1  # WeChat busy: the reject message waits for the next run
    assert run_notifications(ctx, api).sent == 0
    decided(db, b, "o-busy-wechat", "accept", 0)  # meanwhile she tried again and passed
    db.commit()
    run_notifications(ctx, api)
    assert outcomes(fake_wx, "o-busy-wechat") == ["认证通过"]


def test_only_the_same_kind_from_the_same_user_supersedes(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The elder's consent and the relative's certification of her are different messages; her own attempt
    from her own phone is not superseded by a relative's session from theirs."""
    elder = factories.beneficiary(db, ctx.keyring, name="王桂兰", valid_until=dt.date.today() + dt.timedelta(days=9))
    op = ProxyOperator(
        id=str(uuid.uuid4()),
        channel="wechat",
        channel_hash=uuid.uuid4().hex,
        token_hash="-",
        identity=ProxyOperatorIdentity(name="李建国", verified_at=utcnow(), template_consent=False),
    )
    db.add(op)
    own = decided(db, elder, "o-elder", "reject", 50)
    for kind, ago in ((ProxySessionKind.CONSENT, 40), (ProxySessionKind.CERTIFICATION, 5)):
        sid = decided(db, elder, "o-son", "accept", ago, channel=Channel.PROXY)
        db.add(ProxySession(session_id=sid, kind=kind.value, operator_id=op.id))
    db.commit()
    run_notifications(ctx, channel(ctx).api)
    assert outcomes(fake_wx, "o-son") == ["授权已确认", "认证通过"]  # in the order they were decided
    assert outcomes(fake_wx, "o-elder") == ["认证未通过"]
    assert db.scalar(select(WeChatNotice.status).where(WeChatNotice.ref == own)) == NoticeStatus.SENT


def test_an_accept_is_always_told(ctx: ServiceContext, db: Session, fake_wx: FakeWeChat) -> None:
    """Certified, then (the start page tapped again) a failed attempt: both messages, in the order of events."""
    b = factories.beneficiary(db, ctx.keyring, name="郑秀云", valid_until=dt.date.today() + dt.timedelta(days=365))
    decided(db, b, "o-again", "reject", 5, FIRST_ID)
    decided(db, b, "o-again", "accept", 50, LAST_ID)
    db.commit()
    run_notifications(ctx, channel(ctx).api)
    assert outcomes(fake_wx, "o-again") == ["认证通过", "认证未通过"]
