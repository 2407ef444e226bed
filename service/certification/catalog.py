"""The one message catalog: a code → the Chinese message citizens read → the short label staff read.

Pipeline reason codes (what a check of the media or the ID number found) keep their home in
``pipelines.reasons`` (``MESSAGES_ZH``, ``STAFF_LABELS_ZH``); this module extends that vocabulary with the codes
the service and its features raise (sessions, roster, proxy certification, assisted requests, the WeChat
channel), so every layer looks a code up here: the API's error body (``ServiceError.message_zh``), the H5
pages, the console's labels and the WeChat notices.

The features' codes are listed here too, as data only (nothing is imported from the features), so a code has
one message however early it is looked up. A service code's staff label is its message unless one is given.
"""

from __future__ import annotations

import enum

from pipelines.reasons import MESSAGES_ZH, STAFF_LABELS_ZH, ReasonCode


class ServiceCode(enum.StrEnum):
    """Codes the service raises that no pipeline emits (moved up from pipelines.reasons; values unchanged)."""

    BENEFICIARY_UNKNOWN = "BENEFICIARY_UNKNOWN"
    RATE_LIMITED = "RATE_LIMITED"
    # The challenge's single-use nonce, checked by the service when the video is uploaded (sessions.py).
    NONCE_EXPIRED = "NONCE_EXPIRED"
    NONCE_REUSED = "NONCE_REUSED"


# What a caller reads for a code nobody catalogued: never shown for a code any layer raises (tested).
UNKNOWN_MESSAGE_ZH = "请求无法处理"

# Codes of the certification workflow and the service itself.
SERVICE_MESSAGES_ZH: dict[str, str] = {
    ServiceCode.BENEFICIARY_UNKNOWN: "未找到待遇领取人信息",
    ServiceCode.RATE_LIMITED: "操作过于频繁,请稍后再试",
    ServiceCode.NONCE_EXPIRED: "本次认证已超时,请重新开始",
    ServiceCode.NONCE_REUSED: "认证请求已使用,请重新开始",
    "NOT_FOUND": "未找到",
    "ROSTER_FORMAT": "名册文件格式不正确",
    "ROSTER_TOO_LARGE": "名册文件过大",
    "UNAUTHORIZED": "未授权的访问",
    "SESSION_STATE": "认证会话状态不允许该操作",
    # A staff decision other than accept or reject (review.settle; the operator API's model refuses it first).
    "REVIEW_DECISION": "审核结论只能是通过或不通过",
    # A case a reviewer holds in the console, or a proxy rejection awaiting a supervisor's second decision.
    "CASE_HELD": "该案件正在审核平台办理,请在审核平台处理",
    "SESSION_EXPIRED": "认证会话已过期,请重新开始",
    "TOKEN_EXPIRED": "认证会话已过期,请重新开始",
    "UPLOAD_CONFLICT": "该材料已上传,请勿重复提交",
    "CERTIFICATE_INVALID": "凭证核验未通过:编码不正确或已被改动,请向经办机构核实",
    # A genuine certificate void as of the bureau's today (service/certification/certificates.py, `standing`).
    "CERTIFICATE_EXPIRED": "该凭证已超过有效期,已失效",
    "CERTIFICATE_DECEASED": "凭证所属人员已登记死亡,凭证已失效",
    "CERTIFICATE_SUPERSEDED": "该凭证所属档案的身份信息已变更,凭证已失效",
    "CERTIFICATE_REVOKED": "该凭证已被经办机构撤销,已失效",
    # A supervisor's revocation of a certification found fraudulent (service/certification/revocation.py).
    "CERTIFICATION_REVOKED": "该认证已撤销,不能重复撤销",
    "REVOKE_REASON": "请选择撤销原因并填写核实情况(不超过 500 字)",
    "REVOKE_SELF": "您已申请撤销该认证,撤销须由另一位主管确认",
    # An admin-made account not yet confirmed by another supervisor, or its granter as the second person of its acts
    # (service/features/console/accounts.py).
    "SECOND_UNCONFIRMED": (
        "由管理员开设、提升或重置密码的账号须经另一位主管确认；确认前它不能作为第二人复核或确认，"
        "开设它的管理员也不能确认它提出的申请或决定"
    ),
    "REVOKE_REASON_DIFFERS": "另一位主管已以其他原因申请撤销该认证,请核对页面上的申请后再确认",
    # A revocation asked for outside the console (service/certification/revoke_request.py).
    "REVOKE_TARGET": "请指明要撤销的认证:认证编号、会话编号,或人员编号加认证日期",
    "CERTIFICATION_UNKNOWN": "未找到该认证记录",
    "CERTIFICATION_AMBIGUOUS": "该人员当天有多次认证,请按认证编号撤销",
    # A supervisor's hold on a session's media as evidence (service/certification/evidence_hold.py).
    "EVIDENCE_HOLD_REASON": "请选择保全原因并填写说明(不超过 500 字)",
    "EVIDENCE_RELEASE_NOTE": "请填写解除保全的理由(不超过 500 字)",
    "EVIDENCE_PURGED": "该次认证的影像已按保存期限删除,无可保全",
    "EVIDENCE_NONE": "该次认证没有留存影像(柜台或上门认证),无需保全",
    "EVIDENCE_HOLD_ENDED": "该保全已到期或已解除",
    "EVIDENCE_RELEASE_SELF": "您已申请解除该保全,解除须由另一位主管确认",
    # Roles (403): operator actions need an operator (admin) key; channel keys cannot act as staff.
    "ADMIN_KEY_REQUIRED": "该操作仅限经办机构使用",
    "STAFF_CHANNEL_FORBIDDEN": "柜台认证仅限工作人员办理",
    # POST /api/v1/sessions with channel "proxy": a relative certifies through the proxy API, bound to the elder.
    "PROXY_CHANNEL_FORBIDDEN": "亲属代办认证请通过亲属代办功能办理",
    "DATE_OVERRIDE_FORBIDDEN": "生产环境不允许指定模拟日期",
    "INVALID_DATE": "日期不正确",
    # The daily run stopped before changing anything: an unusual share would have been suspended.
    "CYCLE_SUSPENSION_SPIKE": "本次暂停人数异常,已停止执行,请核查后再试",
    "EVENT_IDS_REUSED": "有事件编号与已导出的编号重复,请先按运维手册重新编号后再导出",
    # A supervisor's finding on a roster change of ID number (service/certification/identity_review.py).
    "IDENTITY_CHANGE_UNKNOWN": "未找到该次身份证号变更",
    "IDENTITY_CHANGE_SUPERSEDED": "该人员此后又有身份证号变更,请处理最新的预警",
    "IDENTITY_REVIEW_SELF": "该变更由您本人导入,须由另一位主管核实",
    "ALERT_NOTE": "请填写处理情况(不超过 500 字)",
    "ALERT_REVIEW_SELF": "该认证由您本人办理,须由另一位主管核实",
    "ALERT_CHANGED": "该预警在您打开页面后又增加了认证,请核对下方列出的全部认证后再标记已处理",
    # An Idempotency-Key already used for different content.
    "IDEMPOTENCY_MISMATCH": "请求编号已用于其他内容,请重新提交",
    # Infrastructure (503/507): nothing was stored; the client retries the same request later.
    "DB_UNAVAILABLE": "服务暂时不可用,请稍后再试",
    "STORAGE_FULL": "存储空间不足,暂时无法上传,请稍后再试",
    # The citizen's consent to the processing of their face and ID card (H5 start page).
    "CONSENT_REQUIRED": "请先阅读并同意个人信息处理说明",
    # The HTTP layer's own refusals (service.adapters.http.errors): a request Starlette or FastAPI refuses
    # before any route (malformed, unknown path, wrong method, does not match the declared fields), an
    # unexpected error, a busy database, storage that cannot be reached.
    "BAD_REQUEST": "请求格式不正确",
    "FORBIDDEN": "无权进行该操作",
    "METHOD_NOT_ALLOWED": "请求方法不正确",
    "NOT_ACCEPTABLE": "请求格式不正确",
    "REQUEST_TOO_LARGE": "上传内容过大",
    "JSON_INVALID": "请求内容不是有效的JSON",
    "FIELD_MISSING": "缺少必填项",
    "FIELD_INVALID": "填写内容不正确",
    "INTERNAL_ERROR": "系统暂时无法处理,请稍后再试",
    "BUSY": "系统繁忙,请稍后再试",
    # One requester's share of the processing queue is full (sessions._check_queue_share): nothing was stored.
    "QUEUE_FULL": "待处理的认证过多,请稍后再提交",
    "STORAGE": "系统暂时无法处理,请稍后再试",
}

# Proxy certification (service.features.proxy).
PROXY_MESSAGES_ZH: dict[str, str] = {
    "PROXY_OPERATOR_UNVERIFIED": "请先完成代办人本人实名认证",
    "PROXY_CONSENT_PENDING": "老人尚未同意绑定,请先完成老人同意确认",
    # A binding waits for the elder's consent a limited time (ProxyPolicy.pending_consent_days).
    "PROXY_CONSENT_EXPIRED": "老人未在规定期限内确认绑定,该绑定已失效,请重新绑定",
    # The relative asks the elder's consent to a binding the elder (or staff) already consented to.
    "PROXY_CONSENT_GIVEN": "老人已同意该绑定,无需再次确认",
    # A bind of an elder the relative's account is bound to already (a retried request): the binding is there.
    "PROXY_ALREADY_BOUND": "您已绑定该老人,无需重复绑定",
    "PROXY_BINDING_LOCKED": "多次认证未通过,该绑定已锁定,请联系经办机构人工审核",
    # Staff lifting a lock from the console's person page (service/features/console/binding_unlock.py).
    "PROXY_UNLOCK_NOTE": "请填写解除锁定的理由(不超过 500 字)",
    "PROXY_UNLOCK_FLAGGED": "代办人曾本人出镜,该绑定须由主管核实后解除锁定",
    "PROXY_RELATIONSHIP": "请选择您与老人的关系",
    # A relative's typed (not photographed) ID number that is no valid number: corrected by typing, no photo.
    "PROXY_ID_NUMBER": "身份证号码有误,请核对后重新填写",
    # A verified relative's identity (and face template) changes only through staff.
    "PROXY_OPERATOR_VERIFIED": "您已完成实名认证,如需变更身份信息请到经办机构办理",
    # A proxy certification opened before the roster gave the elder's record another ID number (staff's accept).
    "PROXY_BINDING_REVOKED": "名册中该老人的身份证号已变更,原亲属绑定已终止,本次代办认证不能通过",
    # A binding's earlier certification still awaits its decision and the binding is one failure from its lock.
    "PROXY_DECISION_PENDING": "上一次代办认证正在处理,请等结果出来后再试",
    # The elder's consent to one more relative while as many relatives as allowed are already consented to.
    "PROXY_ELDER_SLOTS_FULL": (
        "老人已同意的代办亲属人数已满,本次确认不能生效;请先由其中一位亲属解除绑定,再请老人录像确认"
    ),
    # A channel key's login to a relative's account another client (integrator, the H5 pages) made.
    "PROXY_ACCOUNT_ELSEWHERE": "该亲属账号已在其他渠道注册,请回到原渠道登录",
    # The same refusal on the H5 pages: the other client is always an integrator's app (a channel key), and the
    # account stays its own (docs/security.md, Part BS): the relative is told where to go, not to try again.
    "PROXY_ACCOUNT_IN_APP": "您的微信号已在其他应用中开通了亲属代办,请在该应用中为家人办理",
    "PROXY_ACCOUNT_APP_WITHDRAWN": (
        "您的微信号曾在其他应用中开通亲属代办,该应用已停止服务,原代办账号不能在这里使用。"
        "可请老人本人认证或到社保经办窗口办理,也可拨打经办机构电话申请上门认证"
    ),
    # PROXY_BINDING_HELD, a decision's reason: pipelines.reasons.ReasonCode (review.py reads it, below the features).
}

# The public certificate check's answer for a genuine certificate valid today (an answer, not an error: no code).
CERTIFICATE_VALID_ZH = "凭证有效"

# Assisted certification requests (service.features.console.assist): what the citizen or the staff member reads.
ASSIST_MESSAGES_ZH: dict[str, str] = {
    "ASSIST_KIND": "请选择申请人工审核还是上门认证",
    "ASSIST_PHONE": "请填写正确的联系电话(11 位手机号,或带区号的固定电话)",
    "ASSIST_OPEN": "已有一份申请正在办理,工作人员会尽快与您联系,请勿重复提交",
    "ASSIST_DECEASED": "该人员已登记死亡,不能申请",
    "ASSIST_REVIEWED": "工作人员已审核过本次视频,不再重复审核;可申请上门认证,或携带身份证到社保经办窗口办理",
    "ASSIST_CLOSED": "该申请已办结",
    # No video staff may accept (none recorded, or a reject no one may overrule): assist.offered_kinds.
    "ASSIST_NO_VIDEO": (
        "本次认证没有工作人员可以审核通过的视频,无法人工审核;请申请上门认证,或携带身份证到社保经办窗口办理"
    ),
    # The video a manual review would look at was deleted past its retention period (assist_video.hold_video).
    "ASSIST_VIDEO_PURGED": (
        "该次认证的视频已过保存期限并已删除,无法人工审核;请申请上门认证,或携带身份证到社保经办窗口办理"
    ),
    "ASSIST_REPLY": "请填写给申请人的答复",
}

# The WeChat channel and the H5 pages (service.features.wechat).
WECHAT_MESSAGES_ZH: dict[str, str] = {
    "WECHAT_DISABLED": "微信认证暂未开通,请到社保经办窗口办理",
    "CARD_READ_DISABLED": "暂不支持先识别身份证,请按页面提示上传",
    "WECHAT_TOKEN_UNSET": "微信服务尚未配置",
    "WECHAT_SIGNATURE": "微信消息校验未通过",
    "WECHAT_STALE": "微信消息已过期",
    "WECHAT_BAD_MESSAGE": "微信消息格式不正确",
    "BAD_URL": "页面地址不正确",
    "WECHAT_UNAVAILABLE": "微信服务暂时不可用,请稍后再试",
    # A supervisor's decision on a WeChat notice stuck (console 微信通知, staff_notices.py).
    "WECHAT_DUPLICATE_RISK": "该通知可能已经送达,再发一次须先确认本人可能收到两次",
    "WECHAT_NOTICE_UNREACHABLE": "该用户已取消关注、拒收公众号消息或不是本公众号用户,再发也无法送达,请线下告知",
    "WECHAT_CLOSE_NOTE": "请填写如何告知了本人(不超过 200 字)",
}

# Codes answered by the kind of error they are raised as (service.adapters.http.errors.STATUS_BY_KIND).
BY_KIND_MESSAGES_ZH: dict[str, str] = {
    "FILE_NOT_FOUND": "文件不存在,请检查路径",  # the offline proxy check and the CLI: a path given by staff
    # `pension-cert move-relatives`: a client name no account holds, or no channel key in force has.
    "PROXY_CLIENT_UNKNOWN": "未找到该渠道,请核对渠道名称",
}

# Staff labels where the citizen's message is advice rather than what happened (the rest use the message).
SERVICE_STAFF_ZH: dict[str, str] = {
    ServiceCode.BENEFICIARY_UNKNOWN: "名册中无此人",
    ServiceCode.RATE_LIMITED: "请求过于频繁",
    "QUEUE_FULL": "该渠道待处理认证已达上限,上传被拒",
    ServiceCode.NONCE_EXPIRED: "认证请求已超时",
    ServiceCode.NONCE_REUSED: "认证请求重复使用",
    "CONSENT_REQUIRED": "未同意个人信息处理",
    "PROXY_RELATIONSHIP": "亲属关系填写不正确",
    "PROXY_OPERATOR_VERIFIED": "代办人已实名,拒绝再次核验",
    "PROXY_ELDER_SLOTS_FULL": "老人的代办亲属名额已满,同意未生效",
    "PROXY_ACCOUNT_IN_APP": "亲属账号由其他应用开设,公众号登录被拒",
    "PROXY_ACCOUNT_APP_WITHDRAWN": "亲属账号所属应用已停用,公众号登录被拒",
    "WECHAT_DISABLED": "未配置微信渠道",
    "CARD_READ_DISABLED": "未开启先识别身份证",
    "WECHAT_TOKEN_UNSET": "未设置微信令牌",
    "WECHAT_SIGNATURE": "微信消息签名不符",
    "WECHAT_STALE": "微信消息时间戳过期(疑似重放)",
    "WECHAT_BAD_MESSAGE": "微信消息无法解析",
    "BAD_URL": "页面地址不属于本系统",
    "WECHAT_UNAVAILABLE": "微信接口不可用",
    "WECHAT_DUPLICATE_RISK": "未确认可能重复送达",
    "WECHAT_NOTICE_UNREACHABLE": "微信用户无法接收,不能再发",
}

_SERVICE: dict[str, str] = {
    **SERVICE_MESSAGES_ZH,
    **PROXY_MESSAGES_ZH,
    **ASSIST_MESSAGES_ZH,
    **WECHAT_MESSAGES_ZH,
    **BY_KIND_MESSAGES_ZH,
}


def _reason(code: str) -> ReasonCode | None:
    try:
        return ReasonCode(code)
    except ValueError:
        return None


def is_known(code: str) -> bool:
    """Whether the catalog (pipelines' reasons or the service's codes) has the code."""
    return _reason(code) is not None or code in _SERVICE


def message_zh(code: str) -> str:
    """What a citizen reads for a code; UNKNOWN_MESSAGE_ZH for a code nobody catalogued."""
    reason = _reason(code)
    if reason is not None:
        return MESSAGES_ZH[reason]
    return _SERVICE.get(code, UNKNOWN_MESSAGE_ZH)


def staff_label(code: str) -> str:
    """What staff read for a code in the console; an uncatalogued code is shown as it is."""
    reason = _reason(code)
    if reason is not None:
        return STAFF_LABELS_ZH.get(reason, MESSAGES_ZH[reason])
    return SERVICE_STAFF_ZH.get(code) or _SERVICE.get(code, code)


def codes() -> list[str]:
    """Every catalogued code: the pipelines' reasons, then the service's."""
    return [*(r.value for r in ReasonCode), *_SERVICE]
