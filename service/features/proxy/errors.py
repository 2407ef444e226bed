"""Service errors of proxy certification, with their Chinese messages."""

from __future__ import annotations

from service.certification.errors import ServiceError

PROXY_MESSAGES_ZH: dict[str, str] = {
    "PROXY_OPERATOR_UNVERIFIED": "请先完成代办人本人实名认证",
    "PROXY_CONSENT_PENDING": "老人尚未同意绑定,请先完成老人同意确认",
    "PROXY_BINDING_LOCKED": "多次认证未通过,该绑定已锁定,请联系经办机构人工审核",
}


class ProxyServiceError(ServiceError):
    @property
    def message_zh(self) -> str:
        return PROXY_MESSAGES_ZH.get(self.code) or super().message_zh
