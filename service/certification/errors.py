"""Service exceptions: each carries a code (a ReasonCode where one fits) and the HTTP status it maps to.

``service.adapters.http.errors`` turns them into 4xx JSON in one place; the CLI prints them.
"""

from __future__ import annotations

from typing import Any

from pipelines.reasons import MESSAGES_ZH, ReasonCode

SERVICE_MESSAGES_ZH: dict[str, str] = {
    "NOT_FOUND": "未找到",
    "ROSTER_FORMAT": "名册文件格式不正确",
    "ROSTER_TOO_LARGE": "名册文件过大",
    "UNAUTHORIZED": "未授权的访问",
    "SESSION_STATE": "认证会话状态不允许该操作",
    "SESSION_EXPIRED": "认证会话已过期,请重新开始",
    "TOKEN_EXPIRED": "认证会话已过期,请重新开始",
    "UPLOAD_CONFLICT": "该材料已上传,请勿重复提交",
    "CERTIFICATE_INVALID": "证书校验未通过",
    # Roles (403): operator actions need an operator (admin) key; channel keys cannot act as staff.
    "ADMIN_KEY_REQUIRED": "该操作仅限经办机构使用",
    "STAFF_CHANNEL_FORBIDDEN": "柜台认证仅限工作人员办理",
    "DATE_OVERRIDE_FORBIDDEN": "生产环境不允许指定模拟日期",
    "INVALID_DATE": "日期不正确",
    # The daily run stopped before changing anything: an unusual share would have been suspended.
    "CYCLE_SUSPENSION_SPIKE": "本次暂停人数异常,已停止执行,请核查后再试",
    # An Idempotency-Key already used for different content.
    "IDEMPOTENCY_MISMATCH": "请求编号已用于其他内容,请重新提交",
    # Infrastructure (503/507): nothing was stored; the client retries the same request later.
    "DB_UNAVAILABLE": "服务暂时不可用,请稍后再试",
    "STORAGE_FULL": "存储空间不足,暂时无法上传,请稍后再试",
}


class ServiceError(Exception):
    def __init__(self, code: str, detail: str = "", status: int = 400, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.status = status
        self.extra = extra or {}

    @property
    def message_zh(self) -> str:
        if self.code in ReasonCode.__members__:
            return MESSAGES_ZH[ReasonCode(self.code)]
        return SERVICE_MESSAGES_ZH.get(self.code, "请求无法处理")


class NotFoundError(ServiceError):
    def __init__(self, what: str, code: str = "NOT_FOUND") -> None:
        super().__init__(code, f"{what} not found", status=404)
