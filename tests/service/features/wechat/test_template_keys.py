"""WeChat's template rules since its 2023 announcement (《关于规范公众号模板消息的再次公告》): `first` and `remark`
are dropped silently, a historic template's keyword takes 20 characters, and today's category templates (类目模板)
have typed keys (`thing1`, `time2`, `phrase3`, …) whose values must keep their type's rule or the whole send fails
(47003). Before, every message was the classic first/keyword1-3/remark: the title and the next step were in the
dropped fields, and a bureau configuring the ids of templates it obtains today got 47003 on every send. The fake
server checks as WeChat does once told a template's keys (fake_wechat.invalid_key)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.wechat.messages import CLASSIC, PHRASES
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_send import UNFIT
from service.features.wechat.notify import run_notifications
from service.features.wechat.runtime import _warn_classic, build_channel
from service.features.wechat.template_fit import TemplateConfigError, TemplateFitError, fit
from service.infra.clock import local_date
from service.infra.config import Settings
from tests.service import factories
from tests.service.features.wechat.conftest import wechat_settings
from tests.service.features.wechat.fake_wechat import FakeWeChat
from tests.service.features.wechat.test_decision_notices import channel_api, decide, make_case
from tests.service.features.wechat.test_notify import LAST_YEAR, TODAY, certified_by, channel, zh
from tests.service.features.wechat.test_revocation_notice import _certification, _person_certified_twice, _revoke
from tests.service.features.wechat.test_revocation_notice_relatives import _relative

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
            "thing4": "请尽快认证,行动不便可申请上门认证",  # the 20-character wording: still names the visit
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


# docs/wechat.md's classic table before b28035f (the labels bureaus chose their historic templates for): per kind,
# keyword1-3 and remark. A revocation is sent with the overdue template: its keyword2 is that template's date label.
OLD_CLASSIC = {
    "result": ("name", "status", "decided_on", "next_step"),  # the person, the outcome, the decision date
    "review": ("name", "status", "decided_on", "next_step"),
    "assist": ("name", "status", "decided_on", "next_step"),  # 已完成认证 / 已处理, the closing date
    "assist_video": ("name", "status", "decided_on", "next_step"),  # sent with the result template: its date, the purge
    "due_soon": ("name", "due_date", "detail", "next_step"),  # the valid-until date, the payment's state
    "overdue": ("name", "due_date", "detail", "next_step"),
    "suspended": ("name", "due_date", "detail", "next_step"),
    "revoked": ("name", "due_date", "status", "next_step"),  # the recomputed date, what was revoked
}


def test_the_classic_form_keeps_the_old_layout_of_each_kind() -> None:
    """A historic template's labels were chosen for the old layout: each keyword keeps its meaning (b28035f had
    moved the next step into keyword3, under a label like 认证时间, and a revocation's status under 到期日期)."""
    got = {k: (m["keyword1"], m["keyword2"], m["keyword3"], m["remark"]) for k, m in CLASSIC.items()}
    assert got == OLD_CLASSIC
    assert all(m["first"] == "title" for m in CLASSIC.values())


def test_the_classic_form_delivers_the_old_values_fitted_to_20_characters(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template id alone: keyword1-3 as before, each 20 characters at most (a revocation's status in its shorter
    wording), the next step in `remark`."""
    classic = {"result": "tpl-result", "due_soon": "tpl-due", "overdue": "tpl-overdue"}
    monkeypatch.setattr(ctx.settings.wechat, "templates", classic)
    for tid in classic.values():
        fake_wx.state.template_keys[tid] = {"keyword1", "keyword2", "keyword3"}
    due = factories.beneficiary(db, ctx.keyring, name="赵淑珍", valid_until=TODAY + 10 * DAY)
    certified_by(db, ctx, due, "o-due")
    rejected = factories.beneficiary(db, ctx.keyring, name="孙立群", valid_until=TODAY + 10 * DAY)
    s = db.get(CertSession, certified_by(db, ctx, rejected, "o-result", when=utcnow() - dt.timedelta(hours=1)))
    assert s is not None and s.decided_at is not None
    s.decision, s.reasons = "reject", ["FACE_MISMATCH"]
    db.commit()
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert (run.sent, fake_wx.state.template_calls) == (2, 2)
    assert _shown(fake_wx, "tpl-due") == [
        {"keyword1": "赵淑珍", "keyword2": "2026年12月2日", "keyword3": "待遇正常发放"}
    ]
    decided = zh(local_date(ctx.settings, s.decided_at))
    assert _shown(fake_wx, "tpl-result") == [{"keyword1": "孙立群", "keyword2": "认证未通过", "keyword3": decided}]
    sent = {m["template_id"]: m["data"] for m in fake_wx.state.sent_templates}
    assert sent["tpl-due"]["remark"]["value"] == "请在2026年12月2日前完成认证,以免影响待遇发放。"  # sent, not shown
    b, cid = _person_certified_twice(ctx, db, "o-own", "o-wrong")
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(b)
    assert b.valid_until is not None
    run_notifications(ctx, channel(ctx).api, TODAY)
    [revoked] = _shown(fake_wx, "tpl-overdue")  # the overdue template's date label shows the recomputed date
    assert revoked == {
        "keyword1": "赵淑珍",
        "keyword2": zh(b.valid_until),
        "keyword3": f"{zh(TODAY - 10 * DAY)}的认证已被撤销",
    }


def test_a_kind_in_the_classic_form_is_warned_of_once(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _warn_classic.cache_clear()
    monkeypatch.setattr(ctx.settings.wechat, "templates", {**ctx.settings.wechat.templates, "result": "tpl-result"})
    with caplog.at_level(logging.WARNING, logger="service.features.wechat.runtime"):
        build_channel(ctx.settings)
        build_channel(ctx.settings)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "service.features.wechat.runtime"]
    assert "result in the classic form" in warning and "first/remark" in warning and "docs/wechat.md" in warning
    caplog.clear()
    monkeypatch.setattr(
        ctx.settings.wechat, "templates", {k: v for k, v in ctx.settings.wechat.templates.items() if k != "result"}
    )
    build_channel(ctx.settings)  # every kind mapped (this module's CATEGORY): nothing to warn of
    assert [r for r in caplog.records if r.name == "service.features.wechat.runtime"] == []


# docs/wechat.md's worked example: `revoked` has a template of its own without a date key (the overdue one's
# date2 cannot carry a revocation's date: a record may have none, a relative is not told a lapsed one).
WORKED: dict[str, dict[str, Any]] = {
    "due_soon": {"id": "Xc3due", "keys": {"thing1": "name", "date2": "due_date", "thing3": "next_step"}},
    "overdue": {
        "id": "Xc3over",
        "keys": {"name1": "name", "date2": "due_date", "phrase3": "state", "thing4": "next_step"},
    },
    "revoked": {"id": "Xc3rev", "keys": {"name1": "name", "thing2": "status", "thing3": "next_step"}},
    "result": {
        "id": "Xc3res",
        "keys": {"thing1": "title", "name2": "name", "phrase3": "state", "time4": "decided_on", "thing5": "next_step"},
    },
}


def test_a_revocation_through_a_date_key_is_refused_at_start(
    ctx: ServiceContext, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worked example as it was (revoked falling back to overdue's date2): a relative's notice of a lapsed
    date had no due_date and failed; now refused when the channel is built, naming the fix."""
    old = {k: v for k, v in WORKED.items() if k != "revoked"}
    monkeypatch.setattr(ctx.settings.wechat, "templates", _read(fake_wx, tmp_path, old))
    with pytest.raises(
        TemplateConfigError,
        match=r"\[overdue\] key date2: a revoked notice does not always have due_date \(give revoked a template",
    ):
        build_channel(ctx.settings)


def test_the_worked_example_tells_a_relative_of_a_revocation_after_the_date_lapsed(
    ctx: ServiceContext, db: Session, fake_wx: FakeWeChat, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The reviewer's case: a person certified only through relatives, the son's certification lapsed five days
    ago, the daughter's revoked: the son is told (before: failed, 模板字段date2需要的内容(due_date)本条通知没有)."""
    for entry in WORKED.values():
        fake_wx.state.template_keys[entry["id"]] = set(entry["keys"])
    monkeypatch.setattr(ctx.settings.wechat, "templates", _read(fake_wx, tmp_path, WORKED))
    elder = factories.beneficiary(db, ctx.keyring, name="周秀英", valid_until=TODAY + 300 * DAY)
    _, by_son = _relative(db, ctx, elder, "o-son")
    _certification(db, elder, by_son, LAST_YEAR.date(), TODAY - 5 * DAY)
    _, by_daughter = _relative(db, ctx, elder, "o-daughter", when=LAST_YEAR + 360 * DAY)
    cid = _certification(db, elder, by_daughter, TODAY - 3 * DAY, TODAY + 362 * DAY)
    _revoke(ctx, db, cid, "wrong_accept")
    db.refresh(elder)
    assert elder.valid_until == TODAY - 5 * DAY
    run = run_notifications(ctx, channel(ctx).api, TODAY)
    assert run.failed == 0
    assert [m["touser"] for m in fake_wx.state.delivered if m["template_id"] == "Xc3rev"] == ["o-son"]
    assert _shown(fake_wx, "Xc3rev") == [
        {"name1": "周秀英", "thing2": "此前的一次认证已被经办机构撤销", "thing3": "请尽快为其重新办理认证"}
    ]


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
        (
            _due(character_string1="ref", thing3="next_step"),
            r"key character_string1: a due_soon notice does not always have ref",
        ),
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


def test_a_name_with_a_rare_character_fits_a_name_key() -> None:
    """汉字 as the project defines them (pipelines/names.HAN: Extensions A-H and 〇), counted as characters: these
    names were refused as "over 10 characters" (the key took U+4E00-9FFF only)."""
    for name in ("刘䶮", "王𠮷", "陈𬌗", "〇", "李〇芳", "阿依古丽·买买提"):
        assert fit("name2", "name", name) == name
    assert fit("name2", "name", "𠮷" * 10) == "𠮷" * 10  # ten characters, whatever their UTF-16 length
    for name in ("𠮷" * 11, "李ㄅ"):  # too long; a character no name has
        with pytest.raises(TemplateFitError, match="姓名不截断"):
            fit("name2", "name", name)


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
