"""WeChat's template rules since its 2023 announcement (《关于规范公众号模板消息的再次公告》): `first` and `remark`
are dropped silently, a historic template's keyword takes 20 characters, and today's category templates (类目模板)
have typed keys (`thing1`, `time2`, `phrase3`, …) whose values must keep their type's rule or the whole send fails
(47003). Before, every message was the classic first/keyword1-3/remark: the title and the next step were in the
dropped fields, and a bureau configuring the ids of templates it obtains today got 47003 on every send. The fake
server checks as WeChat does once told a template's keys (fake_wechat.invalid_key)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.wechat.messages import PHRASES
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_send import UNFIT
from service.features.wechat.notify import run_notifications
from service.features.wechat.runtime import build_channel
from service.features.wechat.template_fit import TemplateConfigError, TemplateFitError, fit
from service.infra.config import Settings
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_decision_notices import channel_api, decide, make_case
from tests.service.features.wechat.test_notify import TODAY, certified_by, channel, zh
from tests.service.features.wechat.test_revocation_notice import _person_certified_twice, _revoke

pytestmark = pytest.mark.usefixtures("daytime")
DAY = dt.timedelta(days=1)
# A bureau's category templates (ids as obtained in the account's console) and their key mappings.
CATEGORY: dict[str, dict[str, Any]] = {
    "result": {
        "id": "cat-result",
        "keys": {
            "thing1": "title",
            "name2": "name",
            "phrase3": "state",
            "time4": "decided_on",
            "thing5": "next_step",
            "character_string6": "ref",
        },
    },
    "due_soon": {"id": "cat-due", "keys": {"thing1": "name", "date2": "due_date", "thing3": "next_step"}},
    "overdue": {
        "id": "cat-over",
        "keys": {"name1": "name", "date2": "due_date", "phrase3": "state", "thing4": "next_step"},
    },
    "suspended": {
        "id": "cat-susp",
        "keys": {"thing1": "title", "name2": "name", "phrase3": "state", "time4": "due_date", "thing5": "next_step"},
    },
    "revoked": {"id": "cat-rev", "keys": {"name1": "name", "thing2": "status", "thing3": "next_step"}},
    "review": {
        "id": "cat-review",
        "keys": {"name1": "name", "thing2": "status", "phrase3": "state", "thing4": "next_step"},
    },
}


def _category(fake: FakeWeChat, tmp_path: Path, database_url: str, **templates: Any) -> Settings:
    """The service configured with `templates`, the fake told each template's keys (it then checks as WeChat)."""
    for entry in templates.values():
        if isinstance(entry, dict):
            fake.state.template_keys[entry["id"]] = set(entry["keys"])
    return wechat_settings(fake, tmp_path, database_url=database_url, wechat_templates=templates)


@pytest.fixture
def settings(tmp_path: Path, backend_urls: dict[str, str], fake_wx: FakeWeChat) -> Settings:
    return _category(fake_wx, tmp_path, backend_urls["database_url"], **CATEGORY)


def _shown(fake: FakeWeChat, template: str) -> list[dict[str, str]]:
    """What the person sees of each message sent with `template`: every shown value checked valid by the fake."""
    return [
        {k: str(v["value"]) for k, v in m["data"].items()} for m in fake.state.delivered if m["template_id"] == template
    ]


def test_each_reminder_and_result_with_a_category_template_is_delivered_valid_with_its_next_step(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    due = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 10 * DAY)
    late = factories.beneficiary(db, ctx.keyring, name="钱德明", valid_until=TODAY - 3 * DAY)
    off = factories.beneficiary(db, ctx.keyring, name="李玉兰", valid_until=TODAY - 40 * DAY)
    off.status, off.suspended_on = "suspended", TODAY - 39 * DAY
    for openid, b in (("o-due", due), ("o-late", late), ("o-off", off)):
        certified_by(db, ctx, b, openid)
    accepted = factories.beneficiary(db, ctx.keyring, name="张秀英", valid_until=TODAY + 360 * DAY)
    decided = utcnow() - dt.timedelta(hours=1)
    sid = certified_by(db, ctx, accepted, "o-result", when=decided)
    db.commit()

    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert (run.sent, run.failed, fake_wx.state.template_calls) == (4, 0, 4)  # no 47003: every value valid
    assert _shown(fake_wx, "cat-due") == [
        {"thing1": "赵淑珍", "date2": "2026年12月2日", "thing3": "请在2026年12月2日前完成认证"}
    ]
    assert _shown(fake_wx, "cat-over") == [
        {
            "name1": "钱德明",
            "date2": "2026年11月19日",
            "phrase3": "已到期",
            "thing4": "请尽快完成认证,逾期未认证将暂停发放。",
        }
    ]
    assert _shown(fake_wx, "cat-susp") == [
        {
            "thing1": "李玉兰的待遇已暂停发放",
            "name2": "李玉兰",
            "phrase3": "已暂停",
            "time4": "2026年10月13日 23:59",  # a validity date runs to the end of its day
            "thing5": "待遇已暂停,完成认证后恢复发放",
        }
    ]
    local = decided.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(ctx.settings.time_zone))
    assert _shown(fake_wx, "cat-result") == [
        {
            "thing1": "张秀英的待遇资格认证结果",
            "name2": "张秀英",
            "phrase3": "已通过",
            "thing5": f"本次认证有效期至{zh(TODAY + 360 * DAY)}。",
            "character_string6": sid.replace("-", ""),
            "time4": f"{zh(local.date())} {local:%H:%M}",  # the bureau's date and time of the decision
        }
    ]


def test_a_staff_decision_and_a_revocation_with_category_templates_show_their_next_step(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    case = make_case(db, ctx, "self")
    db.commit()
    api = channel_api(ctx)
    run_notifications(ctx, api)  # the machine's "under review" result
    decide(ctx, case, "reject")
    run_notifications(ctx, api)
    assert _shown(fake_wx, "cat-review") == [
        {
            "name1": "张秀英",
            "thing2": "认证未通过",
            "phrase3": "未通过",
            "thing4": "审核未通过,可重新认证或到社保窗口办理",  # the 20-character wording, not a cut sentence
        }
    ]
    b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(b)
    assert b.valid_until is not None
    run_notifications(ctx, channel(ctx).api, TODAY)
    assert _shown(fake_wx, "cat-rev") == [
        {
            "name1": "赵淑珍",
            "thing2": f"{zh(TODAY - 10 * DAY)}的认证已被撤销",
            "thing3": f"请在{zh(b.valid_until)}前重新完成认证",
        }
    ]
    assert fake_wx.state.template_calls == len(fake_wx.state.delivered)  # none refused


def test_the_classic_format_delivers_the_essential_text_in_shown_keywords(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template id alone (a historic template): keyword1-3 of 20 characters at most carry the name, the date or
    outcome and the next step; before, the next step was in `remark` (dropped) and a revocation's keyword3 was 22
    characters."""
    classic = {"result": "tpl-result", "due_soon": "tpl-due", "overdue": "tpl-overdue"}
    monkeypatch.setattr(ctx.settings.wechat, "templates", classic)
    for tid in classic.values():
        fake_wx.state.template_keys[tid] = {"keyword1", "keyword2", "keyword3"}
    due = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 10 * DAY)
    certified_by(db, ctx, due, "o-due")
    rejected = factories.beneficiary(db, ctx.keyring, name="孙立群", valid_until=TODAY + 10 * DAY)
    s = db.get(CertSession, certified_by(db, ctx, rejected, "o-result", when=utcnow() - dt.timedelta(hours=1)))
    assert s is not None
    s.decision, s.reasons = "reject", ["FACE_MISMATCH"]
    db.commit()
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert (run.sent, fake_wx.state.template_calls) == (2, 2)
    assert _shown(fake_wx, "tpl-due") == [
        {"keyword1": "赵淑珍", "keyword2": "2026年12月2日", "keyword3": "请在2026年12月2日前完成认证"}
    ]
    assert _shown(fake_wx, "tpl-result") == [
        {"keyword1": "孙立群", "keyword2": "认证未通过", "keyword3": "点击查看原因,可重新认证或申请上门认证"}
    ]
    sent = {m["template_id"]: m["data"] for m in fake_wx.state.sent_templates}
    assert sent["tpl-due"]["first"]["value"] == "赵淑珍的待遇资格认证即将到期"  # sent, dropped by WeChat


def _read(fake: FakeWeChat, tmp_path: Path, templates: dict[str, Any]) -> dict[str, Any]:
    """WECHAT_TEMPLATES as the settings read it (the mapped form validated into WeChatTemplate)."""
    return dict(wechat_settings(fake, tmp_path, wechat_templates=templates).wechat.templates)


def _due(**keys: str) -> dict[str, Any]:
    return {"due_soon": {"id": "cat-due", "keys": keys}}


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        (_due(thing1="nam", thing3="next_step"), r"key thing1: unknown field 'nam'"),
        (_due(thingy1="name", thing3="next_step"), r"key thingy1: unknown key type 'thingy'"),
        (_due(phrase1="status", thing3="next_step"), r"key phrase1: a phrase key cannot carry status"),
        (_due(date1="name", thing3="next_step"), r"key date1: a date key cannot carry name"),
        (_due(character_string1="ref", thing3="next_step"), r"key character_string1: a due_soon notice has no ref"),
        (_due(amount1="name", thing3="next_step"), r"key amount1: no notice has a value of type amount"),
        (_due(first="title", thing3="next_step"), r"key first: WeChat no longer shows first/remark"),
        (_due(thing1="name", date2="due_date"), r"no key carries next_step"),
        # suspended has no template of its own: it is sent with the overdue one, checked for its fields too
        ({"overdue": {"id": "x", "keys": {"time1": "decided_on", "thing2": "next_step"}}}, r"a suspended notice"),
    ],
    ids=[
        "unknown-field",
        "unknown-type",
        "phrase-text",
        "date-name",
        "kind-lacks",
        "no-value",
        "first",
        "no-step",
        "fallback",
    ],
)
def test_a_misconfigured_mapping_is_refused_at_start(
    ctx: ServiceContext,
    fake_wx: FakeWeChat,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    templates: dict[str, Any],
    message: str,
) -> None:
    monkeypatch.setattr(ctx.settings.wechat, "templates", _read(fake_wx, tmp_path, templates))
    with pytest.raises(TemplateConfigError, match=r"PENSION_CERT_WECHAT_TEMPLATES cannot be used.*" + message):
        build_channel(ctx.settings)


def test_the_api_does_not_start_with_a_misconfigured_mapping(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from service.adapters.http.app import create_app

    monkeypatch.setattr(ctx.settings.wechat, "templates", _read(fake_wx, tmp_path, _due(phrase1="status")))
    with pytest.raises(TemplateConfigError, match=r"\[due_soon\] key phrase1: a phrase key cannot carry status"):
        create_app(ctx=ctx)


def test_a_mapping_without_keys_is_refused_when_the_settings_are_read(fake_wx: FakeWeChat, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keys"):
        _read(fake_wx, tmp_path, {"due_soon": {"id": "cat-due"}})


def test_a_thing_takes_the_short_wording_never_a_cut_text() -> None:
    long = (
        "经工作人员审核,本次认证未通过。可重新认证,或到社保经办窗口办理、申请上门认证。",
        "审核未通过,可重新认证或到社保窗口办理",
    )
    assert fit("thing4", "next_step", long) == long[1]
    assert fit("keyword3", "next_step", long) == long[1]  # a historic keyword: 20 too
    assert fit("remark", "next_step", long) == long[0]  # sent whole where no limit applies
    with pytest.raises(TemplateFitError, match="限20个字"):
        fit("thing4", "next_step", (long[0],))  # no shorter wording: not sent rather than cut


def test_a_phrase_only_from_the_vocabulary_and_a_character_string_never_chinese() -> None:
    assert {fit("phrase3", "state", word) for word in PHRASES} == PHRASES
    with pytest.raises(TemplateFitError, match="phrase"):
        fit("phrase3", "state", "认证通过")  # 4 Chinese characters, but not a word of the vocabulary
    assert fit("character_string6", "ref", "0f3a9c") == "0f3a9c"
    with pytest.raises(TemplateFitError, match="character_string"):
        fit("character_string6", "ref", "张三0f3a")
    assert fit("date2", "due_date", dt.date(2027, 3, 9)) == "2027年3月9日"
    assert fit("time2", "decided_on", dt.datetime(2027, 3, 9, 15, 1)) == "2027年3月9日 15:01"
    with pytest.raises(TemplateFitError, match="需要日期"):
        fit("date2", "due_date", "请尽快重新认证")


def test_a_name_that_cannot_fit_a_name_key_is_never_cut_the_notice_fails_for_staff(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A name key takes 10 Chinese characters: a 12-character name is not cut (another person's name) nor sent
    blindly (47003): the notice is failed at once, with the reason staff read, and not retried."""
    keys = {"name1": "name", "thing2": "next_step"}
    monkeypatch.setattr(ctx.settings.wechat, "templates", _read(fake_wx, tmp_path, _due(**keys)))
    b = factories.beneficiary(db, ctx.keyring, name="阿卜杜热合曼·买买提江", valid_until=TODAY + 10 * DAY)
    certified_by(db, ctx, b, "o-long")
    db.commit()
    api = channel(ctx).api
    assert run_notifications(ctx, api, TODAY).failed == 1
    assert run_notifications(ctx, api, TODAY + DAY).sent == 0
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.openid == "o-long"))
    assert notice is not None
    db.refresh(notice)
    assert (notice.status, notice.attempts) == (NoticeStatus.FAILED, 1)
    assert (notice.last_error or "").startswith(UNFIT) and "姓名不截断" in (notice.last_error or "")
    assert fake_wx.state.template_calls == 0  # never asked WeChat


def test_a_value_wechat_refuses_gives_the_notice_up_at_once(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat
) -> None:
    """The template in WeChat's console has other keys than configured (47003): sent again it fails alike."""
    fake_wx.state.template_keys["cat-due"] = {"thing1", "date2", "thing4"}  # no thing3
    b = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 10 * DAY)
    certified_by(db, ctx, b, "o-due")
    db.commit()
    api = channel(ctx).api
    assert run_notifications(ctx, api, TODAY).failed == 1
    run_notifications(ctx, api, TODAY + DAY)
    notice = db.scalar(select(WeChatNotice).where(WeChatNotice.openid == "o-due"))
    assert notice is not None
    db.refresh(notice)
    assert (notice.status, notice.attempts, fake_wx.state.template_calls) == (NoticeStatus.FAILED, 1, 1)
    assert "data.thing3.value invalid" in (notice.last_error or "")
