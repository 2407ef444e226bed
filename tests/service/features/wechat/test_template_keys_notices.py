"""Category templates (typed keys) from start to finish for the two notices test_template_keys.py did not send
through one: a citizen's assist request closed by staff (a home visit certified, a reply) and a relative's
revocation notice (and, beside it, the person's own). Each goes through the fake WeChat server told the template's
keys, which answers 47003 for a key the template lacks or a value breaking its type's rule, as WeChat does
(fake_wechat.invalid_key). They found one defect: a revocation's `detail` had no 20-character wording."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.features.console import assist
from service.features.console.auth import Role, Staff
from service.features.console.models import AssistKind, AssistOutcome, AssistRequest, StaffUser
from service.features.wechat.notify import run_notifications
from service.infra.clock import local_today
from service.infra.config import Settings
from tests.service import factories
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, channel, zh
from tests.service.features.wechat.test_revocation_notice import _certification, _person_certified_twice, _revoke
from tests.service.features.wechat.test_revocation_notice_relatives import _relative
from tests.service.features.wechat.test_template_keys import CATEGORY, _category, _shown

pytestmark = pytest.mark.usefixtures("daytime")
DAY = dt.timedelta(days=1)
# Every key type a notice of the kind can fill: the assist notice has a template of its own, a revocation too.
TEMPLATES: dict[str, dict[str, Any]] = {
    **CATEGORY,
    "assist": {
        "id": "cat-assist",
        "keys": {
            "thing1": "title",
            "name2": "name",
            "thing3": "status",
            "phrase4": "state",
            "date5": "decided_on",
            "thing6": "detail",
            "thing7": "next_step",
            "character_string8": "ref",
        },
    },
    "revoked": {
        "id": "cat-rev",
        "keys": {
            "thing1": "title",
            "name2": "name",
            "thing3": "status",
            "phrase4": "state",
            "thing5": "detail",
            "thing6": "next_step",
        },
    },
}


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str], fake_wx: FakeWeChat) -> Settings:
    return _category(fake_wx, tmp_path, backend_urls["database_url"], **TEMPLATES)


def _staff(db: Session) -> Staff:
    user = StaffUser(username="rev1", display_name="审核员甲", role=Role.REVIEWER.value, password_hash="x")
    db.add(user)
    db.flush()
    return Staff(user.id, user.username, user.display_name, Role.REVIEWER, "csrf")


def _request(db: Session, b: Beneficiary, kind: str, openid: str) -> AssistRequest:
    req = AssistRequest(beneficiary_id=b.id, kind=kind, phone="13800138000", openid=openid)
    db.add(req)
    db.flush()
    return req


def _valid(fake: FakeWeChat) -> None:
    """WeChat took every send: none answered 47003."""
    assert fake.state.template_calls == len(fake.state.delivered)


def test_an_assist_request_closed_by_staff_is_delivered_valid_with_a_category_template(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """A home visit certified (the new date) and a manual review answered (a short reply, then one over 20
    characters), each told to the WeChat user who asked, every key of its type."""
    staff = _staff(db)
    visited = factories.beneficiary(db, ctx.keyring, name="欧阳秀英", valid_until=TODAY - 3 * DAY)
    answered = factories.beneficiary(db, ctx.keyring, name="孙立群", valid_until=TODAY + 200 * DAY)
    home = _request(db, visited, AssistKind.HOME_VISIT, "o-home")
    review = _request(db, answered, AssistKind.MANUAL_REVIEW, "o-review")
    assist.certify_and_close(db, ctx, staff, home, "home_visit", local_today(ctx.settings), "上门见到本人,核对身份证")
    assist.close(db, ctx, staff, review, AssistOutcome.ANSWERED, "视频清晰,请明天再试一次")
    db.commit()
    db.refresh(visited)
    assert visited.valid_until is not None and visited.valid_until > TODAY

    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert (run.sent, run.failed) == (2, 0)
    _valid(fake_wx)
    closed = zh(local_today(ctx.settings))  # the bureau's date of the closing (the clock held at 10:00)
    by_user = {m["touser"]: m for m in fake_wx.state.delivered if m["template_id"] == "cat-assist"}
    assert _shown(fake_wx, "cat-assist") == [
        {
            "thing1": "欧阳秀英的上门认证申请已办结",
            "name2": "欧阳秀英",
            "thing3": "已完成认证",
            "phrase4": "已办结",
            "date5": closed,
            "thing6": "欧阳秀英的上门认证申请",
            "thing7": f"本次认证有效期至{zh(visited.valid_until)}。",
            "character_string8": str(home.id),
        },
        {
            "thing1": "孙立群的人工审核申请已办结",
            "name2": "孙立群",
            "thing3": "已处理",
            "phrase4": "已办结",
            "date5": closed,
            "thing6": "孙立群的人工审核申请",
            "thing7": "工作人员答复:视频清晰,请明天再试一次",
            "character_string8": str(review.id),
        },
    ]
    assert urlsplit(by_user["o-review"]["url"]).path == f"/h5/reply/{review.id}"

    long = _request(db, answered, AssistKind.MANUAL_REVIEW, "o-review")
    assist.close(db, ctx, staff, long, AssistOutcome.ANSWERED, "视频不够清晰,请在光线充足处重录,或到社保窗口办理。")
    db.commit()
    assert run_notifications(ctx, channel(ctx).api, TODAY).failed == 0
    _valid(fake_wx)
    assert _shown(fake_wx, "cat-assist")[-1]["thing7"] == "工作人员已回复,请点击查看"


def test_an_assist_request_sent_with_the_result_template_is_delivered_valid(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No template of its own: the assist notice falls back to the result template (its time and reference keys)."""
    monkeypatch.setattr(
        ctx.settings.wechat, "templates", {k: v for k, v in ctx.settings.wechat.templates.items() if k != "assist"}
    )
    b = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 5 * DAY)
    req = _request(db, b, AssistKind.HOME_VISIT, "o-home")
    assist.close(db, ctx, _staff(db), req, AssistOutcome.ANSWERED, "下周二上午上门,请家中留人")
    db.commit()
    assert run_notifications(ctx, channel(ctx).api, TODAY).failed == 0
    _valid(fake_wx)
    [shown] = _shown(fake_wx, "cat-result")
    assert shown.pop("time4").startswith(zh(local_today(ctx.settings)) + " ")
    assert shown == {
        "thing1": "周秀英的上门认证申请已办结",
        "name2": "周秀英",
        "phrase3": "已办结",
        "thing5": "工作人员答复:下周二上午上门,请家中留人",
        "character_string6": str(req.id),
    }


def _proxy_only(ctx: ServiceContext, db: Session, name: str, son_until: dt.date) -> tuple[Beneficiary, int]:
    """`name` certified only by relatives: the son last year (valid until `son_until`), the daughter three days ago
    (the certification revoked by the caller): (the person, the daughter's certification)."""
    elder = factories.beneficiary(db, ctx.keyring, name=name, valid_until=TODAY + 300 * DAY)
    _, by_son = _relative(db, ctx, elder, "o-son")
    _certification(db, elder, by_son, LAST_YEAR.date(), son_until)
    _, by_daughter = _relative(db, ctx, elder, "o-daughter", when=LAST_YEAR + 360 * DAY)
    return elder, _certification(db, elder, by_daughter, TODAY - 3 * DAY, TODAY + 362 * DAY)


@pytest.mark.parametrize(("name", "ahead"), [("周秀英", True), ("欧阳秀英", True), ("周秀英", False)])
def test_a_relatives_revocation_notice_is_delivered_valid_with_a_category_template(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, name: str, ahead: bool
) -> None:
    """The relative's wording (the date while it is ahead, else 请尽快), every key of its type, to the son only."""
    son_until = TODAY + 60 * DAY if ahead else TODAY - 5 * DAY
    elder, cid = _proxy_only(ctx, db, name, son_until)
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(elder)
    assert elder.valid_until == son_until
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.failed == 0
    _valid(fake_wx)
    assert [m["touser"] for m in fake_wx.state.delivered if m["template_id"] == "cat-rev"] == ["o-son"]
    title = f"您绑定的家属{name}的待遇资格认证已被撤销"
    assert _shown(fake_wx, "cat-rev") == [
        {
            "thing1": title if len(title) <= 20 else "家属的待遇资格认证已被撤销",
            "name2": name,
            "thing3": "此前的一次认证已被经办机构撤销",
            "phrase4": "已撤销",
            "thing5": "此前的一次认证已被经办机构撤销",
            "thing6": f"请在{zh(son_until)}前为其重新认证" if ahead else "请尽快为其重新办理认证",
        }
    ]


def test_the_persons_own_revocation_notice_is_delivered_valid_with_a_category_template(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The person's own notice through the same template: its `detail` (what was revoked, dated) took no shorter
    wording, so a thing key failed it (模板字段thing5限20个字, never sent) for any date:
    2026年11月12日的认证已被经办机构撤销 is 22 characters."""
    b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(b)
    assert b.valid_until is not None
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.failed == 0
    _valid(fake_wx)
    revoked = f"{zh(TODAY - 10 * DAY)}的认证已被撤销"
    assert _shown(fake_wx, "cat-rev") == [
        {
            "thing1": "赵淑珍的待遇资格认证已被撤销",
            "name2": "赵淑珍",
            "thing3": revoked,
            "phrase4": "已撤销",
            "thing5": revoked,
            "thing6": f"请在{zh(b.valid_until)}前重新完成认证",
        }
    ]
