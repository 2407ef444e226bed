"""Chinese labels for every code a console page shows. Reason codes and service error codes are labelled by
their one home, `service.certification.catalog` (which extends `pipelines.reasons`); this module holds only the
console's own vocabulary and adds no second name for a reason.

Roster import problems are English sentences written by `service.certification.roster` (they are also the API's report);
they are matched here by their fixed beginnings, and tests run the real validator so a new sentence without a
label fails a test instead of reaching a page in English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipelines.liveness.challenge import BLINK, NOD, OPEN_MOUTH, TURN_LEFT, TURN_RIGHT
from proxy_auth.decision import NOTE_BELOW_PROXY_LINE, NOTE_NO_OPERATOR_TEMPLATE
from service.certification import catalog
from service.certification.errors import ServiceError
from service.certification.evidence_hold import HoldReason
from service.certification.models import BenefitType, CertSession, SessionDecision, SessionState
from service.certification.revocation import RevokeReason
from service.certification.roster import MAX_YEARS_AHEAD
from service.features.console.binding_unlock import unlock_offer

STATE_ZH = {
    "certified": "已认证",
    "awaiting_first": "待首次认证",  # dated by the first-import grace, never certified (cycle.awaiting_first)
    "due_soon": "即将到期",
    "overdue": "已逾期",
    "awaiting_decision": "认证待审核",  # overdue, a certification made in time waiting for staff (cycle.states_of)
    "stopped_by_roster": "名册已停发",  # held active, the roster says the benefit system stopped paying: cycle.state_of
    "deceased": "已死亡",
    "undated": "无有效期",
    "active": "正常",
    "suspended": "暂停发放",
}
# The payment events on a person's page (service/certification/deaths.py for `deceased`).
EVENT_ZH = {
    "suspended": "暂停发放",
    "resumed": "恢复发放",
    "deceased": "登记死亡，停止发放",
    "death_withdrawn": "撤销死亡登记，撤回停发",
}
DECISION_ZH: dict[str | None, str] = {
    SessionDecision.ACCEPT: "通过",
    SessionDecision.REJECT: "不通过",
    SessionDecision.REVIEW: "待人工审核",
    SessionDecision.RETRY: "需重新认证",
    None: "—",
}
# A session's state, for one without a decision (an open, queued, expired or failed session read "—" otherwise).
SESSION_STATE_ZH = {
    SessionState.OPEN: "进行中（未提交）",
    SessionState.QUEUED: "已提交，等待分析",
    SessionState.PROCESSING: "分析中",
    SessionState.DECIDED: "已判定",
    SessionState.FAILED: "处理失败（待人工审核）",
    SessionState.EXPIRED: "已过期（未完成）",
}
CHANNEL_ZH = {"self": "本人", "proxy": "代办", "staff": "柜台"}
ALT_KIND_ZH = {"counter": "柜台认证", "home_visit": "上门认证", "activity": "行为数据认证"}
RELATIONSHIP_ZH = {
    "spouse": "配偶",
    "child": "子女",
    "child_in_law": "子女配偶",
    "grandchild": "孙子女",
    "sibling": "兄弟姐妹",
    "other": "其他",
}
BINDING_ZH = {
    "pending_consent": "待老人确认",
    "active": "有效",
    "ended": "已解绑",
    "expired": "老人逾期未确认，已失效",
    "revoked": "名册变更身份证号，已终止",
    "withdrawn": "老人本人已解除（撤回同意）",
    "moved": "亲属已用另一账号重新绑定",
}

# Why a supervisor revoked a certification (service.certification.revocation.RevokeReason).
REVOKE_REASON_ZH = {
    RevokeReason.IMPERSONATION: "冒领 / 他人代替",
    RevokeReason.WRONG_ACCEPT: "错误受理",
    RevokeReason.OTHER: "其他",
}

# Why a session's media are held as evidence (service.certification.evidence_hold.HoldReason); the form offers
# all but `revoked` (placed by a revocation itself).
HOLD_REASON_ZH = {
    HoldReason.INVESTIGATION: "涉嫌冒领，调查核实中",
    HoldReason.RECOVERY: "追回多发待遇",
    HoldReason.REFERRAL: "移送公安 / 司法机关",
    HoldReason.REVOKED: "认证已撤销（冒领 / 错误受理）",
    HoldReason.OTHER: "其他",
}

# The liveness challenge's actions (pipelines.liveness.challenge.ACTIONS).
ACTION_ZH = {BLINK: "眨眼", TURN_LEFT: "向左转头", TURN_RIGHT: "向右转头", NOD: "点头", OPEN_MOUTH: "张嘴"}

BENEFIT_ZH = {
    BenefitType.ENTERPRISE_PENSION: "企业职工基本养老保险",
    BenefitType.RESIDENT_PENSION: "城乡居民基本养老保险",
    BenefitType.WORK_INJURY: "工伤保险定期待遇",
    BenefitType.NURSING_CARE: "长期护理保险",
    BenefitType.SURVIVOR_PENSION: "遗属待遇",
}

# Actions written to the console's audit log (service.features.console.audit_chain.record callers).
AUDIT_ACTION_ZH = {
    "login": "登录",
    "login.failed": "登录失败",
    "logout": "退出",
    "queue.view": "查看审核队列",
    "case.view": "查看案件",
    "case.image": "查看案件图片",
    "case.claim": "领取案件",
    "case.release": "放回队列",
    "case.decide.first": "初审决定",
    "case.decide.second": "主管复核决定",
    "case.decide.final": "审核决定",
    "beneficiary.view": "查看人员",
    "beneficiary.deceased": "登记死亡",
    "beneficiary.death_withdrawn": "撤销死亡登记",
    "certificate.copy": "打印凭证",
    "certification.revoke": "撤销认证",
    "evidence.hold": "保全认证影像",
    "evidence.release": "解除影像保全",
    "evidence.release.ask": "申请解除影像保全（待另一位主管确认）",
    "proxy.binding.unlocked": "解除代办绑定锁定",
    "roster.search": "名册查询",
    "roster.import": "名册导入",
    "evidence.import": "行为数据导入",
    "altcert.counter": "柜台认证",
    "altcert.home_visit": "上门认证",
    "altcert.activity": "行为数据认证",
    "alerts.view": "查看预警",
    "assist.list": "查看群众申请",
    "assist.view": "查看群众申请详情",
    "assist.close": "办结群众申请",
    "assist.reopen": "认证撤销，重新受理群众申请",
    "alert.resolve": "处理预警",
    "alert.resolve.refused": "处理预警被拒（须由登记人以外的主管核实）",
    "dashboard.export": "导出统计",
    "audit.view": "查看审计日志",
    "access.denied": "越权访问被拒绝",
    "scope.denied": "查找辖区外人员被拒绝",
    "beneficiary.access_log": "查阅记录",
    "access.volume": "查看今日查阅量",
    "user.create": "新建用户",
    "user.disable": "停用用户",
    "user.enable": "启用用户",
    "user.role": "修改角色",
    "user.password": "重置密码",
    "user.password.self": "修改本人密码",
    # Two-person rules and the confirmation of admin-made accounts (accounts.py; docs/security.md, Part BK).
    "user.confirm": "确认账号",
    "user.confirm.refused": "确认账号被拒",
    "user.grant.refused": "开设或变更账号被拒（本人账号待确认）",
    "case.second.refused": "复核决定被拒（须由另一位主管）",
    "alert.identity.refused": "核实名册变更被拒（须由另一位主管）",
}

# Decision notes (proxy_auth.decision) that send a case to review without a reason code.
NOTE_ZH = {
    "first proxy certification of this elder: staff review": "该老人首次代办认证，须人工审核",
    NOTE_BELOW_PROXY_LINE: "人脸相似度未达代办认证的更高通过线",
    NOTE_NO_OPERATOR_TEMPLATE: "缺少代办人人脸模板，无法排除代办人本人出镜",
}

# service.certification.roster / service.certification.idnumber problem sentences, by their fixed beginning.
ROSTER_PROBLEM_ZH = (
    ("external_id missing", "人员编号（external_id）缺失或超过 64 个字符"),
    ("id_number must be 17 digits", "身份证号码须为 17 位数字加 1 位数字或 X"),
    ("id_number has an invalid birth date", "身份证号码中的出生日期无效"),
    ("id_number check digit", "身份证号码校验位不正确"),
    ("id_number has an unknown region code", "身份证号码前六位不是有效的行政区划代码"),
    ("id_number already belongs to beneficiary", "该身份证号码已属于另一名人员"),
    ("name missing", "姓名缺失或过长"),
    ("external_id and name must not start", "人员编号和姓名不能以 = + - @ 开头（表格公式）"),
    ("region must be", "地区须为数字行政区划代码"),
    ("region is required for a residence permit", "港澳台居民居住证号码不含居住地，请在“地区”列填写所属行政区划代码"),
    ("benefit_types must be among", "待遇类型须为：" + "、".join(f"{v}（{k.value}）" for k, v in BENEFIT_ZH.items())),
    ("status must be", "状态须为 active（正常）、suspended（暂停）或 deceased（已死亡）"),
    ("last_certified_on is after the import date", "最近认证日期晚于导入日期"),
    ("last_certified_on must be", "最近认证日期须为 YYYY-MM-DD 格式的日期"),
    ("cycle_start must be", "认证周期起始日须为 YYYY-MM-DD 格式的日期"),
    ("valid_until is more than", f"认证有效期晚于导入日期 {MAX_YEARS_AHEAD} 年以上（请核对年份）"),
    ("cycle_start is more than", f"认证周期起始日晚于导入日期 {MAX_YEARS_AHEAD} 年以上（请核对年份）"),
    ("household must be", "户号不超过 64 个字符，且不能以 = + - @ 开头"),
    (
        "name holds ? in place of characters",
        "姓名中有“?”（乱码：文件可能用不含中文的西文编码保存，汉字变成了问号）："
        "请在 Excel/WPS 中“另存为”CSV UTF-8（逗号分隔），并按身份证填写姓名后再导入",
    ),
    (
        "name holds a private-use (user-defined, 造字) character",
        "姓名含自造字（旧系统的用户自定义字符，私用区），群众无法输入或核对：请改为标准汉字（按身份证）后重新导入",
    ),
    (
        "id_number was changed by a spreadsheet",
        "身份证号码已被表格软件改坏（显示为 4.20106E+17 或末三位变成 000）："
        "请将该列设置为“文本”格式，重新填写号码后再导入",
    ),
    (
        "external_id was changed by a spreadsheet",
        "人员编号已被表格软件改成科学计数法（如 1.23457E+19）：请将该列设置为“文本”格式，重新填写后再导入",
    ),
    ("duplicate of an earlier row", "与本文件中前面的一行重复"),
    (
        "row has more cells than the header",
        "该行列数多于表头（单元格内含分隔符？多个待遇类型请用引号括起或改用逗号分隔的文件）",
    ),
)
# Whole-file problems (ServiceError details of ROSTER_FORMAT / ROSTER_TOO_LARGE).
ROSTER_FILE_PROBLEM_ZH = (
    ("missing columns: ", "缺少列："),
    ("columns given twice: ", "同一列出现两次（中英文列名各一）："),
    ("roster must be .csv or .xlsx", "名册须为 .csv 或 .xlsx 文件"),
)


def outcome_label(s: CertSession) -> str:
    """A session's 结论: its decision, else its state (in progress, expired, failed)."""
    if s.decision is not None:
        return DECISION_ZH.get(s.decision, s.decision)
    return SESSION_STATE_ZH.get(SessionState(s.state), s.state) if s.state in set(SessionState) else s.state


# Why a job failed (`CertSession.last_error`: English text the workers write, service/certification/processing.py,
# service/adapters/workers/worker.py and tasks.py), matched by its fixed beginning; any other text is an exception's,
# the models' or the video decoder's. The case page says the sentence and keeps the technical text beside it, small.
FAILURE_ZH = (
    ("worker lost on every attempt", "每次分析时处理程序都中断（可能是该视频导致），系统多次重试仍未完成自动判定"),
    ("worker thread ", "分析线程意外终止，系统多次重试仍未完成自动判定"),
    ("JobTimeLimitExceededError", "分析超出时间上限（可能是视频过长或损坏），系统多次重试仍未完成自动判定"),
)
FAILURE_OTHER_ZH = "系统分析该视频时出错，多次重试仍未成功，未能完成自动判定"


def failure_zh(last_error: str) -> str:
    """A failed job's `last_error` as staff read it (one Chinese sentence)."""
    return next((zh for start, zh in FAILURE_ZH if last_error.startswith(start)), FAILURE_OTHER_ZH)


# Who did something, when the trail's actor is no member of staff (the operator API's key, the command line, the
# service itself), by the actor's fixed beginning; a member of staff is named by `actor_label`'s `names`.
ACTOR_KIND_ZH = (("api:", "业务系统接口"), ("cli", "运维命令行"), ("operator", "运维人员"), ("system", "系统"))


def actor_label(actor: str | None, names: Mapping[str, str]) -> str:
    """An audit actor ("staff:<username>", ...) as staff read it: a member of staff by display name and username
    (`names`: accounts.staff_names), an account no longer there by its username, any other actor by its kind."""
    if not actor:
        return "—"
    if actor in names:
        return names[actor]
    if actor.startswith("staff:"):
        return actor.removeprefix("staff:")
    return next((f"{zh}（{actor}）" for start, zh in ACTOR_KIND_ZH if actor.startswith(start)), actor)


def reason_label(code: str) -> str:
    """A reason code as staff read it (service.certification.catalog.staff_label); anything else as it is."""
    return catalog.staff_label(code)


# Date columns of the roster, for "<column> must be YYYY-MM-DD".
ROSTER_DATE_COLUMN_ZH = {"valid_until": "认证有效期", "last_certified_on": "最近认证日期"}
_DATE_PROBLEM = re.compile(r"^([a-z_]+) must be YYYY-MM-DD")


def roster_problem_zh(problem: str) -> str:
    """One rejected row's problem in Chinese. An unknown sentence gives a generic label, never English."""
    if m := _DATE_PROBLEM.match(problem):
        column = m.group(1)
        return f"{ROSTER_DATE_COLUMN_ZH.get(column, column)}须为 YYYY-MM-DD 格式的日期"
    for start, zh in ROSTER_PROBLEM_ZH:
        if problem.startswith(start):
            return zh
    return "该行数据不符合名册格式"


_UNDECODABLE = re.compile(r"^CSV is (.*?) text.*: cannot decode line (\d+), byte (\d+)\Z")
# Why a CSV's text could not be read, by the beginning of the reason (roster_file.UNDECODABLE, DAMAGED_UTF8,
# DAMAGED_UTF16): what is wrong, and what to do.
_NOT_GB18030 = re.compile(r"^CSV read as GB18030 gives names no Chinese name holds.*: line (\d+)\Z")
_WESTERN = re.compile(r"^CSV read as GB18030 gives names with Chinese characters run into Latin.*: line (\d+)\Z")
_UNDECODABLE_ZH = {
    "neither UTF-8 nor GB18030 (GBK)": (
        "既不是 UTF-8 也不是 GB18030/GBK 编码的文字",
        "请检查该行，或在 Excel/WPS 中“另存为”CSV UTF-8（逗号分隔）后再导入",
    ),
    "UTF-8": (
        "有损坏的字符（文件是 UTF-8 编码，某个字符被截断或改坏，整个文件未导入）",
        "请检查并改正该行的文字（如复制粘贴或截断造成）后再导入",
    ),
    "UTF-16": (
        "不完整或已损坏（文件是 UTF-16 编码，即 Excel 的“Unicode 文本”，可能在传输或复制时被截断）",
        "请从 Excel/WPS 重新保存一次完整的文件后再导入",
    ),
}


def roster_file_error_zh(exc: ServiceError) -> str:
    """Why a whole roster file was refused: the code's message, and what to fix where it is known (the column
    names of "missing columns" are the file's own and kept)."""
    if (m := _UNDECODABLE.match(exc.detail)) and m.group(1) in _UNDECODABLE_ZH:
        what, fix = _UNDECODABLE_ZH[m.group(1)]
        return f"{exc.message_zh}（第 {m.group(2)} 行（文件第 {m.group(3)} 字节）{what}：{fix}）"
    if m := _NOT_GB18030.match(exc.detail):
        return (
            f"{exc.message_zh}（编码可能不是 GBK/GB18030（如港台软件的繁体 Big5）："
            f"第 {m.group(1)} 行的姓名读出来是乱码。"
            "请在 Excel/WPS 中“另存为”CSV UTF-8（逗号分隔）后再导入）"
        )
    if m := _WESTERN.match(exc.detail):
        return (
            f"{exc.message_zh}（编码可能是西文编码（Latin-1/Windows-1252，如英文或欧洲语言版 Excel 保存的 CSV）："
            f"第 {m.group(1)} 行的姓名读出来是汉字夹着拉丁字母的乱码。"
            "请在中文版 Excel/WPS 中“另存为”CSV UTF-8（逗号分隔）后再导入）"
        )
    for start, zh in ROSTER_FILE_PROBLEM_ZH:
        if exc.detail.startswith(start):
            return f"{exc.message_zh}（{zh}{exc.detail[len(start) :]}）"
    return exc.message_zh


def benefit_label(code: str) -> str:
    try:
        return BENEFIT_ZH[BenefitType(code)]
    except ValueError:
        return code


def audit_action_label(action: str) -> str:
    return AUDIT_ACTION_ZH.get(action, action)


GLOBALS = {
    "STATE_ZH": STATE_ZH,
    "EVENT_ZH": EVENT_ZH,
    "DECISION_ZH": DECISION_ZH,
    "CHANNEL_ZH": CHANNEL_ZH,
    "ALT_KIND_ZH": ALT_KIND_ZH,
    "RELATIONSHIP_ZH": RELATIONSHIP_ZH,
    "BINDING_ZH": BINDING_ZH,
    "REVOKE_REASON_ZH": REVOKE_REASON_ZH,
    "HOLD_REASON_ZH": HOLD_REASON_ZH,
    "ACTION_ZH": ACTION_ZH,
    "SESSION_STATE_ZH": SESSION_STATE_ZH,
    "outcome_label": outcome_label,
    "failure_zh": failure_zh,
    "reason_label": reason_label,
    "benefit_label": benefit_label,
    "audit_action_label": audit_action_label,
    "roster_problem_zh": roster_problem_zh,
    "unlock_offer": unlock_offer,
}
