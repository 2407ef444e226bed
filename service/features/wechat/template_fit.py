"""WeChat template keys: which of a message's semantic fields (messages.py: title, name, status, state, due_date,
decided_on, detail, next_step, ref) goes into which key of the template a bureau obtained, and each value fitted to
its key's type before sending (docs/wechat.md, "Template messages").

Since WeChat's 2023 announcement (《关于规范公众号模板消息的再次公告》) `first` and `remark` are dropped silently, a
historic template's keywords take 20 characters, and the templates chosen today are category templates (类目模板)
whose keys are typed by their prefix (`thing1`, `time2`, `phrase3`, `character_string4`, …): a value breaking its
type's rule fails the whole send (errcode 47003). So a mapping is checked when the channel is built (`check`: an
unknown field or key type, a field a key's type cannot carry, a field a notice kind lacks, no key for the next step
are refused with the operator's message), and every value is fitted before the send (`render`): a text too long
takes the message's shorter wording (never cut mid-word), a person's name is never cut, a phrase comes only from
PHRASES, a character_string never holds Chinese. What cannot be made valid raises `TemplateFitError`: the notice is
recorded failed with its reason for staff, not sent and not retried (notice_send.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from pipelines.names import HAN, MIDDLE_DOT
from service.features.wechat.messages import (
    DATE_FIELDS,
    FIELDS_OF,
    PHRASES,
    TEMPLATE_FALLBACK,
    TEXT_FIELDS,
    Message,
    Value,
    zh_date,
)
from service.infra.config import WeChatTemplate

_KEY = re.compile(r"^([a-z_]+?)(\d+)$")
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
# 汉字 as the project defines them (every CJK block and 〇: pipelines/names.HAN), with the middle dot of minority
# names (阿依古丽·买买提); counted as characters (code points), 刘䶮 and 王𠮷 are two.
_NAME_CJK = re.compile(f"^[{HAN}{MIDDLE_DOT}•]+$")
_LETTERS = re.compile(r"^[A-Za-z ·.'-]+$")
_NO_CJK = re.compile(r"^[\x21-\x7e]+$")  # digits, letters, symbols: no Chinese, no spaces
THING_MAX = 20  # thing, and a historic template's keyword
NAME_MAX_CJK, NAME_MAX_LETTERS = 10, 20
PHRASE_MAX = 5
STRING_MAX = 32

# The fields a key's type may carry (the subscription-message rules WeChat points to); first/remark and the
# historic keywordN take any (keywordN: 20 characters at most).
_ALL = TEXT_FIELDS | DATE_FIELDS
ACCEPTS: dict[str, frozenset[str]] = {
    "thing": TEXT_FIELDS - {"ref"},
    "name": frozenset({"name"}),
    "phrase": frozenset({"state"}),
    "character_string": frozenset({"ref"}),
    "date": DATE_FIELDS,
    "time": DATE_FIELDS,
    "keyword": _ALL,
}
# WeChat's other types: no notice has such a value (a sum of money, a plate number…).
NO_VALUE = frozenset({"number", "letter", "symbol", "amount", "phone_number", "car_number"})
DROPPED = frozenset({"first", "remark"})  # sent in the classic form, never shown since 2023
VARIABLE = "PENSION_CERT_WECHAT_TEMPLATES"


class TemplateConfigError(ValueError):
    """WECHAT_TEMPLATES cannot be used: refused when the channel is built and among the settings checks of `serve`,
    `worker` and the Celery worker and beat (the process does not start). `problem`: the faults without the
    variable's name, for the settings line that names it."""

    code = "WECHAT_TEMPLATES_INVALID"

    def __init__(self, faults: list[str]) -> None:
        self.problem = "cannot be used (docs/wechat.md, “Template messages”): " + "; ".join(faults)
        super().__init__(f"{VARIABLE} {self.problem}")


class TemplateFitError(ValueError):
    """A message's value cannot be made valid for its key: the notice is failed with this reason (Chinese, for
    staff), never sent blindly."""

    code = "WECHAT_TEMPLATE_VALUE"


def key_type(key: str) -> str:
    """`thing1` → thing, `character_string4` → character_string, `keyword2` → keyword, `first` → first."""
    if key in DROPPED:
        return key
    m = _KEY.match(key)
    return m.group(1) if m else key


def template_id(entry: str | WeChatTemplate | None) -> str:
    """The id of a WECHAT_TEMPLATES entry: the classic form is the id itself, the mapped form has `id`."""
    return entry if isinstance(entry, str) else (entry.id if entry is not None else "")


def keys_of(templates: Mapping[str, str | WeChatTemplate], template: str) -> dict[str, str] | None:
    """The key mapping (template key → semantic field) of `template`; None: the classic form (messages.CLASSIC)."""
    entry = templates.get(template)
    return dict(entry.keys) if isinstance(entry, WeChatTemplate) else None


def check(templates: Mapping[str, str | WeChatTemplate]) -> dict[str, dict[str, str]]:
    """The key mappings by template (kinds in the classic form left out); TemplateConfigError naming every fault."""
    faults, out = [], {}
    for template, entry in templates.items():
        keys = keys_of(templates, template)
        if not template_id(entry):
            faults.append(f"[{template}] has no template id")
        if keys is None:
            continue
        users = [k for k in FIELDS_OF if k == template or (TEMPLATE_FALLBACK.get(k) == template and k not in templates)]
        if not users:
            faults.append(f"[{template}] is no notice kind (kinds: {', '.join(FIELDS_OF)})")
        faults += [f"[{template}] {fault}" for fault in _faults(keys, users, template)]
        out[template] = keys
    if faults:
        raise TemplateConfigError(faults)
    return out


def _faults(keys: Mapping[str, str], kinds: list[str], template: str) -> list[str]:
    faults = []
    for key, field in keys.items():
        kind = key_type(key)
        if kind in DROPPED:
            faults.append(f"key {key}: WeChat no longer shows first/remark; map the field to a key the template shows")
        elif kind in NO_VALUE:
            faults.append(f"key {key}: no notice has a value of type {kind}")
        elif kind not in ACCEPTS:
            known = ", ".join(sorted({*ACCEPTS, *NO_VALUE} - {"keyword"}))
            faults.append(f"key {key}: unknown key type {kind!r} (WeChat's types: {known}; historic: keywordN)")
        elif field not in _ALL:
            faults.append(f"key {key}: unknown field {field!r} (fields: {', '.join(sorted(_ALL))})")
        elif field not in ACCEPTS[kind]:
            faults.append(
                f"key {key}: a {kind} key cannot carry {field} (it takes: {', '.join(sorted(ACCEPTS[kind]))})"
            )
        else:
            faults += [
                f"key {key}: a {k} notice does not always have {field}"
                + ("" if k == template else f" (give {k} a template of its own without it)")
                for k in kinds
                if field not in FIELDS_OF[k]
            ]
    if "next_step" not in keys.values():
        faults.append("no key carries next_step: the pensioner would not be told what to do")
    return faults


def render(message: Message, keys: Mapping[str, str] | None) -> dict[str, str]:
    """The data to send: each key's field fitted to the key's type (keys None: the kind's classic form)."""
    mapping = keys if keys is not None else message.classic
    return {key: fit(key, field, message.fields.get(field)) for key, field in mapping.items()}


def fit(key: str, field: str, value: Value | None) -> str:
    kind = key_type(key)
    if value is None:
        raise TemplateFitError(f"模板字段{key}需要的内容({field})本条通知没有,未发送")
    if kind in ("date", "time"):
        return _when(key, kind, value)
    if isinstance(value, dt.date):
        return zh_date(value.date() if isinstance(value, dt.datetime) else value)
    variants = (value,) if isinstance(value, str) else value
    if kind in DROPPED:
        return variants[0]
    if kind == "name":
        return _name(key, variants[0])
    if kind == "phrase":
        if variants[0] not in PHRASES or not _CJK.match(variants[0]) or len(variants[0]) > PHRASE_MAX:
            raise TemplateFitError(f"模板字段{key}(phrase)只能填固定的短语,“{variants[0]}”不在其中,未发送")
        return variants[0]
    if kind == "character_string":
        if len(variants[0]) > STRING_MAX or not _NO_CJK.match(variants[0]):
            raise TemplateFitError(f"模板字段{key}(character_string)只能填32位以内的数字、字母或符号,未发送")
        return variants[0]
    for text in variants:  # thing, keywordN: the first wording that fits, never one cut mid-word
        if len(text) <= THING_MAX:
            return text
    raise TemplateFitError(f"模板字段{key}限{THING_MAX}个字,“{variants[0]}”没有更短的说法,未发送")


def _when(key: str, kind: str, value: Value) -> str:
    if isinstance(value, dt.datetime):  # a local time (messages.py)
        day = zh_date(value.date())
        return f"{day} {value:%H:%M}" if kind == "time" else day
    if isinstance(value, dt.date):
        # A validity date runs to the end of its day: as a time, its last minute.
        return f"{zh_date(value)} 23:59" if kind == "time" else zh_date(value)
    raise TemplateFitError(f"模板字段{key}({kind})需要日期,本条通知没有日期(“{value[0] if value else ''}”),未发送")


def _name(key: str, name: str) -> str:
    """A person's name is never cut: one that cannot fit is not sent (staff tell the person another way)."""
    if (_NAME_CJK.match(name) and len(name) <= NAME_MAX_CJK) or (
        _LETTERS.match(name) and len(name) <= NAME_MAX_LETTERS
    ):
        return name
    raise TemplateFitError(
        f"姓名“{name}”超出模板字段{key}(name类型:{NAME_MAX_CJK}个汉字或{NAME_MAX_LETTERS}个字母以内),"
        "姓名不截断,未发送;请改用thing类型的字段承载姓名,或另行告知本人"
    )
