"""The one message catalog (service/certification/catalog.py): every code any layer can emit has a Chinese
message and a staff label, and every reader (API error body, H5 pages, console, WeChat) looks codes up there."""

from __future__ import annotations

import re

import pytest

from pipelines.reasons import MESSAGES_ZH, ReasonCode
from service.adapters.http.errors import STATUS_BY_CODE
from service.certification import catalog
from service.certification.errors import ServiceError
from service.features.console.assist import AssistError
from service.features.console.labels import reason_label
from service.features.proxy.errors import ProxyServiceError
from tests.service.adapters.http.test_error_status_map import raised_codes

# A label that only restates the code or promises text to come.
PLACEHOLDER = re.compile(r"^[A-Z0-9_]+$|TODO|TBD|待补充|待定|占位|\?\?")


def emitted_codes() -> list[str]:
    """Pipeline reasons, the service's catalogued codes, every code with an HTTP status, every literal raise."""
    codes = [*catalog.codes(), *STATUS_BY_CODE, *(code for _where, _cls, code in raised_codes())]
    return sorted(set(codes))


def test_the_scan_finds_the_raise_sites() -> None:
    assert len(raised_codes()) > 60 and len(emitted_codes()) > 70


@pytest.mark.parametrize("code", emitted_codes())
def test_every_code_has_a_message_and_a_staff_label(code: str) -> None:
    message, label = catalog.message_zh(code), catalog.staff_label(code)
    assert catalog.is_known(code), f"add {code} to service/certification/catalog.py"
    assert message.strip() and message != catalog.UNKNOWN_MESSAGE_ZH and not PLACEHOLDER.search(message)
    assert label.strip() and label != code and not PLACEHOLDER.search(label)


def test_an_uncatalogued_code_reads_as_the_generic_message_and_itself() -> None:
    assert not catalog.is_known("SOMETHING_NEW")
    assert catalog.message_zh("SOMETHING_NEW") == catalog.UNKNOWN_MESSAGE_ZH
    assert catalog.staff_label("SOMETHING_NEW") == reason_label("SOMETHING_NEW") == "SOMETHING_NEW"


def test_pipeline_reasons_keep_their_home_and_text() -> None:
    for reason in ReasonCode:
        assert catalog.message_zh(reason.value) == reason.message_zh == MESSAGES_ZH[reason]
        assert catalog.staff_label(reason.value) == reason.staff_zh == reason_label(reason.value)
    assert catalog.message_zh("ATTEMPTS_EXCEEDED") == "今日认证次数已达上限,可申请人工审核"
    assert catalog.staff_label("FACE_CLOSER_TO_RELATIVE") == "人脸更像已登记的亲属"


def test_every_error_kind_reads_its_message_from_the_catalog() -> None:
    assert ServiceError("SESSION_STATE").message_zh == "认证会话状态不允许该操作"
    assert ServiceError(catalog.ServiceCode.NONCE_REUSED).message_zh == "认证请求已使用,请重新开始"
    assert ProxyServiceError("PROXY_BINDING_LOCKED").message_zh == catalog.PROXY_MESSAGES_ZH["PROXY_BINDING_LOCKED"]
    assert AssistError("ASSIST_OPEN").message_zh == "已有一份申请正在办理,工作人员会尽快与您联系,请勿重复提交"
    assert ServiceError("SOMETHING_NEW").message_zh == catalog.UNKNOWN_MESSAGE_ZH


def test_service_codes_are_labelled_for_staff_by_their_message_unless_given() -> None:
    assert reason_label("SESSION_EXPIRED") == "认证会话已过期,请重新开始"
    assert reason_label("WECHAT_SIGNATURE") == "微信消息签名不符"


def test_no_code_is_catalogued_twice() -> None:
    service = [
        *catalog.SERVICE_MESSAGES_ZH,
        *catalog.PROXY_MESSAGES_ZH,
        *catalog.ASSIST_MESSAGES_ZH,
        *catalog.WECHAT_MESSAGES_ZH,
        *catalog.BY_KIND_MESSAGES_ZH,
    ]
    assert len(service) == len(set(service))
    assert not set(service) & {r.value for r in ReasonCode}
