"""A staff decision on a review case (accept, reject, retake) sends exactly one template message to whoever
started the session from WeChat, titled with what was decided for whom: a pensioner's own certification, an
elder's consent to a relative's binding, a relative's proxy certification of the elder. Decided through the
console's real decision path (claims, the supervisor's second decision for a proxy rejection), delivered
through the fake WeChat server; every keyword is asserted."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.cycle import CycleRules, valid_until
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, utcnow
from service.certification.sessions import create_session
from service.features.console.auth import Role, Staff
from service.features.console.config import ConsoleConfig
from service.features.console.models import StaffUser
from service.features.console.review_queue import claim_case, decide_case
from service.features.proxy import operators
from service.features.proxy.models import (
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxyOperatorIdentity,
    ProxySession,
    ProxySessionKind,
)
from service.features.proxy.sessions import open_verification
from service.features.wechat import WeChatApi
from service.features.wechat.h5 import identity
from service.features.wechat.models import WeChatSessionLink
from service.features.wechat.notify import run_notifications
from service.features.wechat.runtime import build_channel
from tests.service import factories
from tests.service.features.wechat.conftest import PUBLIC
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import values, zh

ELDER, RELATIVE, PENSIONER = "王桂兰", "李建国", "张秀英"
REASON = "人像与证件一致，动作完整"


@dataclass
class Case:
    session_id: str
    openid: str
    person: int  # the beneficiary the decision is about


def staff(db: Session, username: str, role: Role) -> Staff:
    user = StaffUser(username=username, display_name=username, role=role.value, password_hash="-")
    db.add(user)
    db.flush()
    return Staff(user.id, user.username, user.display_name, role, csrf="-")


def under_review(db: Session, ctx: ServiceContext, b: Beneficiary, channel: Channel, openid: str) -> CertSession:
    """A session the machine sent to review (as the pipeline does), opened from `openid`'s WeChat."""
    s = create_session(db, ctx, b, channel, consent=False, actor="test").session
    s.state, s.decision, s.reasons = SessionState.DECIDED, "review", ["SPOOF_SUSPECTED"]
    s.result, s.decided_at = {"scores": {"card_similarity": 0.61}}, utcnow() - dt.timedelta(minutes=5)
    db.add(WeChatSessionLink(session_id=s.id, openid=openid))
    db.flush()
    return s


def make_case(db: Session, ctx: ServiceContext, kind: str) -> Case:
    if kind == "self":
        b = factories.beneficiary(db, ctx.keyring, name=PENSIONER, valid_until=dt.date.today() + dt.timedelta(days=3))
        return Case(under_review(db, ctx, b, Channel.SELF, "o-pensioner").id, "o-pensioner", b.id)
    elder = factories.beneficiary(db, ctx.keyring, name=ELDER, valid_until=dt.date.today() + dt.timedelta(days=3))
    op = ProxyOperator(
        id=str(uuid.uuid4()),
        channel="wechat",
        channel_hash=uuid.uuid4().hex,
        token_hash="-",
        identity=ProxyOperatorIdentity(name=RELATIVE, verified_at=utcnow(), template_consent=False),
    )
    db.add(op)
    db.flush()
    consent = kind == "consent"
    binding = ProxyBinding(
        id=str(uuid.uuid4()),
        operator_id=op.id,
        beneficiary_id=elder.id,
        relationship="child",
        status=BindingStatus.PENDING_CONSENT if consent else BindingStatus.ACTIVE,
    )
    db.add(binding)
    db.flush()
    s = under_review(db, ctx, elder, Channel.PROXY, "o-relative")
    session_kind = ProxySessionKind.CONSENT if consent else ProxySessionKind.CERTIFICATION
    db.add(ProxySession(session_id=s.id, kind=session_kind.value, operator_id=op.id, binding_id=binding.id))
    db.flush()
    return Case(s.id, "o-relative", elder.id)


def decide(ctx: ServiceContext, case: Case, decision: str) -> None:
    """Through the console's decision path: a reviewer claims and decides; a proxy rejection needs a second
    decision by a supervisor (no message until then)."""
    cfg = ConsoleConfig()
    with ctx.db() as db:
        reviewer = staff(db, "rev-" + decision, Role.REVIEWER)
        supervisor = staff(db, "sup-" + decision, Role.SUPERVISOR)
    with ctx.db() as db:
        claim_case(db, cfg, reviewer, case.session_id)
    with ctx.db() as db:
        outcome = decide_case(db, ctx, reviewer, case.session_id, decision, REASON)
    if outcome == "awaiting_supervisor":
        assert run_notifications(ctx, channel_api(ctx)).sent == 0  # a first decision is not a decision yet
        with ctx.db() as db:
            claim_case(db, cfg, supervisor, case.session_id)
        with ctx.db() as db:
            outcome = decide_case(db, ctx, supervisor, case.session_id, decision, REASON)
    assert outcome == "settled"


def channel_api(ctx: ServiceContext) -> WeChatApi:
    ch = build_channel(ctx.settings)
    assert ch is not None
    return ch.api


TITLE = {
    "self": f"{PENSIONER}的待遇资格认证：人工审核结果",
    "consent": f"{ELDER}的代办授权确认：人工审核结果",
    "proxy": f"{ELDER}的待遇资格认证(家属代办)：人工审核结果",
}
OUTCOME = {
    "self": {"accept": "认证通过", "reject": "认证未通过", "retry": "需要重新认证"},
    "consent": {"accept": "授权已确认", "reject": "授权未确认", "retry": "需要重新录制授权视频"},
    "proxy": {"accept": "认证通过", "reject": "认证未通过", "retry": "需要重新认证"},
}
# A staff reject: no "点击查看原因" (the page shows no reason of the review itself: h5/result_view.py).
REJECTED = "经工作人员审核,本次认证未通过。可重新认证,或到社保经办窗口办理、申请上门认证。"
RETAKE = "工作人员请您重新录制视频,点击进入重新认证。"


def expected_remark(kind: str, decision: str, decided: dt.date, rules: CycleRules) -> str:
    if decision == "reject":
        return REJECTED
    if decision == "retry":
        return RETAKE
    if kind == "consent":
        return f"现在可以为{ELDER}办理代办认证。"
    # Accepted certifications: a year from the day of the decision (the cycle's 12-month rule).
    return f"本次认证有效期至{zh(valid_until(decided, rules))}。"


@pytest.mark.parametrize("decision", ["accept", "reject", "retry"])
@pytest.mark.parametrize("kind", ["self", "consent", "proxy"])
def test_each_staff_decision_sends_exactly_one_correct_message(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, kind: str, decision: str
) -> None:
    case = make_case(db, ctx, kind)
    db.commit()
    api = channel_api(ctx)
    # The machine's "under review" message went out when it decided (the schedule ran meanwhile).
    assert run_notifications(ctx, api).sent == 1
    [pending] = fake_wx.state.sent_templates
    assert values(pending)["keyword2"] == "已提交人工审核"
    fake_wx.state.sent_templates.clear()

    decide(ctx, case, decision)
    for _ in range(3):  # however often the schedule runs: one message
        run_notifications(ctx, api)
    [msg] = fake_wx.state.sent_templates
    s = db.get(CertSession, case.session_id)
    assert s is not None
    db.refresh(s)
    decided_utc = s.decided_at
    assert decided_utc is not None
    china_day = (decided_utc + dt.timedelta(hours=8)).date()
    assert msg["touser"] == case.openid
    assert msg["template_id"] == "tpl-result"  # no "review" template configured: the result one carries it
    assert msg["url"] == f"{PUBLIC}/h5/result/{case.session_id}"
    name = PENSIONER if kind == "self" else ELDER
    assert values(msg) == {
        "first": TITLE[kind],
        "keyword1": name,
        "keyword2": OUTCOME[kind][decision],
        "keyword3": zh(china_day),
        "remark": expected_remark(kind, decision, china_day, ctx.rules),
    }
    b = db.get(Beneficiary, case.person)
    assert b is not None
    db.refresh(b)
    if decision == "accept" and kind != "consent":  # the message's date is the one stored: the bureau's day
        assert b.valid_until == valid_until(china_day, ctx.rules)
    elif kind == "consent":  # a consent certifies nobody
        assert b.valid_until == dt.date.today() + dt.timedelta(days=3)


def test_a_review_template_of_its_own_and_the_machine_titles_by_session_kind(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    ctx.settings.wechat.templates = {**ctx.settings.wechat.templates, "review": "tpl-review"}
    consent = make_case(db, ctx, "consent")
    make_case(db, ctx, "proxy")
    # The relative's own real-name check: a session without a beneficiary, about the identity they claim (another
    # relative, not yet verified: a verified one verifies again only through staff).
    assert db.get(ProxySession, consent.session_id) is not None
    operator = operators.login(db, ctx, "wechat", "o-relative", "test").operator
    s = open_verification(db, ctx, operator, factories.id_number(region="110101"), RELATIVE, consent=False).session
    s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "review", ["SPOOF_SUSPECTED"], utcnow()
    db.add(WeChatSessionLink(session_id=s.id, openid="o-relative"))
    db.commit()
    api = channel_api(ctx)
    assert run_notifications(ctx, api).sent == 3
    titles = sorted(values(m)["first"] for m in fake_wx.state.sent_templates)
    assert titles == sorted(
        [f"{ELDER}的代办授权确认结果", f"{ELDER}的待遇资格认证(家属代办)结果", f"{RELATIVE}的代办人实名核验结果"]
    )
    assert {m["template_id"] for m in fake_wx.state.sent_templates} == {"tpl-result"}
    fake_wx.state.sent_templates.clear()

    decide(ctx, Case(s.id, "o-relative", 0), "accept")
    run_notifications(ctx, api)
    [msg] = fake_wx.state.sent_templates
    assert (msg["touser"], msg["template_id"]) == ("o-relative", "tpl-review")
    got = values(msg)
    assert (got["first"], got["keyword1"], got["keyword2"]) == (
        f"{RELATIVE}的代办人实名核验：人工审核结果",
        RELATIVE,
        "实名核验通过",
    )
    assert got["remark"] == "您现在可以为家人办理代办认证。"


def _staff_decided_page(
    client: TestClient, ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, decision: str, reason: str
) -> tuple[str, dict[str, str]]:
    """A pensioner's self session the machine sent to review for `reason`, then decided by staff through the
    console: (its result page, the staff decision's WeChat message)."""
    case = make_case(db, ctx, "self")
    s = db.get(CertSession, case.session_id)
    assert s is not None
    s.reasons = [reason]
    db.commit()
    api = channel_api(ctx)
    run_notifications(ctx, api)
    fake_wx.state.sent_templates.clear()
    decide(ctx, case, decision)
    run_notifications(ctx, api)
    [msg] = fake_wx.state.sent_templates
    client.cookies.set(identity.COOKIE, identity.mint(ctx, case.openid))
    page = client.get(f"/h5/result/{case.session_id}")
    assert page.status_code == 200, page.text
    return page.text, values(msg)


@pytest.mark.parametrize("reason", ["FACE_CLOSER_TO_RELATIVE", "CHALLENGE_EXTRA_ACTIONS"])
def test_a_staff_reject_page_does_not_ask_to_wait_for_the_review(
    client: TestClient, ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, reason: str
) -> None:
    """After staff rejected a case the machine sent to them, the page gave as the reason "请耐心等待审核结果" /
    "已转工作人员审核" and the retake hint, the message promised a reason to read ("点击查看原因")."""
    page, msg = _staff_decided_page(client, ctx, db, fake_wx, "reject", reason)
    assert "等待审核" not in page and "已转工作人员审核" not in page and "请在光线充足处" not in page
    assert "经工作人员审核,本次认证未通过" in page and "<h1" in page and "认证未通过" in page
    assert msg["remark"] == REJECTED and "查看原因" not in msg["remark"]


def test_a_staff_retake_request_is_not_called_a_failed_certification(
    client: TestClient, ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """A staff retake request (retry) was headed "认证未通过" with the machine's "已转工作人员审核"; the message
    says "需要重新认证 / 工作人员请您重新录制视频"."""
    page, msg = _staff_decided_page(client, ctx, db, fake_wx, "retry", "CHALLENGE_EXTRA_ACTIONS")
    assert "认证未通过" not in page and "已转工作人员审核" not in page
    assert re.search(r"<h1[^>]*>请重新录制视频</h1>", page) and 'id="again"' in page
    assert msg["keyword2"] == "需要重新认证"


def test_a_relatives_failed_real_name_check_is_told_its_own_next_step(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """A relative's own real-name verification, rejected: the message advised "申请上门认证" (a home certification
    for a person who is no pensioner); now how to check again."""
    operator = operators.login(db, ctx, "wechat", "o-relative", "test").operator
    s = open_verification(db, ctx, operator, factories.id_number(region="110101"), RELATIVE, consent=False).session
    s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "reject", ["FACE_MISMATCH"], utcnow()
    db.add(WeChatSessionLink(session_id=s.id, openid="o-relative"))
    db.commit()
    assert run_notifications(ctx, channel_api(ctx)).sent == 1
    [msg] = fake_wx.state.sent_templates
    got = values(msg)
    assert got["keyword2"] == "实名核验未通过"
    assert "上门认证" not in got["remark"] and "重新核验" in got["remark"], got["remark"]


@pytest.mark.parametrize(
    ("reason", "remark", "line"),
    [
        (
            "LIGHT_NOT_SEEN",
            "点击查看原因。可在室内调亮手机屏幕、脸靠近屏幕后重新认证,或到社保经办窗口办理、申请上门认证。",
            "请在室内调亮手机屏幕,脸靠近屏幕。",
        ),
        (
            "CAPTURE_TOO_DARK",
            "点击查看原因。可在光线充足处重新认证,或到社保经办窗口办理、申请上门认证。",
            "请在光线充足处正对镜头。",
        ),
    ],
    ids=["screen-light", "dark"],
)
def test_a_machine_reject_advises_the_next_take_by_its_reason(
    client: TestClient, ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, reason: str, remark: str, line: str
) -> None:
    """The screen's colours not seen on the face (LIGHT_NOT_SEEN, under LIGHT_CHALLENGE enforce): bright light is
    what drowns them. Before, the message and the page under the tries left both said to go where the light is
    bright (在光线充足处), against the reason's own text; now both say indoors, the screen bright, the face near."""
    b = factories.beneficiary(db, ctx.keyring, name=PENSIONER, valid_until=dt.date.today() + dt.timedelta(days=3))
    s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
    s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "reject", [reason], utcnow()
    db.add(WeChatSessionLink(session_id=s.id, openid="o-pensioner"))
    db.commit()
    assert run_notifications(ctx, channel_api(ctx)).sent == 1
    [msg] = fake_wx.state.sent_templates
    assert values(msg)["remark"] == remark
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "o-pensioner"))
    page = client.get(f"/h5/result/{s.id}")
    assert page.status_code == 200, page.text
    attempts = re.search(r'<p class="big" id="attempts-left">(.*?)</p>', page.text)
    assert attempts is not None and attempts.group(1).endswith(line), page.text
    assert ("光线充足" in page.text) is (reason != "LIGHT_NOT_SEEN")
