"""The pipelines' reason codes (what a check of the media, the ID card or a decision found), each with a short
Chinese message for citizens and a label for staff.

Codes of the service layer (an unknown beneficiary, a rate limit, session and roster errors) live in
service/certification/catalog.py, which extends this vocabulary into the one catalog every page reads. The
beneficiary, attempt and proxy codes below stay here because proxy_auth, the layer between the pipelines and the
service, puts them into decisions and its own errors (proxy_auth.decision, proxy_auth.bindings).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ReasonCode(enum.StrEnum):
    ID_NOT_A_CARD = "ID_NOT_A_CARD"
    ID_WRONG_SIDE = "ID_WRONG_SIDE"
    ID_CUT_OFF = "ID_CUT_OFF"
    ID_TOO_BLURRY = "ID_TOO_BLURRY"
    ID_GLARE = "ID_GLARE"
    ID_NUMBER_UNREADABLE = "ID_NUMBER_UNREADABLE"
    ID_CHECKSUM_FAILED = "ID_CHECKSUM_FAILED"
    ID_FIELDS_INCONSISTENT = "ID_FIELDS_INCONSISTENT"
    ID_EXPIRED = "ID_EXPIRED"
    ID_NUMBER_MISMATCH = "ID_NUMBER_MISMATCH"
    # No face on the card's printed portrait: a card-side problem with its own advice (FACE_NOT_FOUND is the
    # selfie's, whose message tells the citizen to face the camera).
    ID_PORTRAIT_NO_FACE = "ID_PORTRAIT_NO_FACE"
    FACE_NOT_FOUND = "FACE_NOT_FOUND"
    FACE_MULTIPLE = "FACE_MULTIPLE"
    FACE_LOW_QUALITY = "FACE_LOW_QUALITY"
    FACE_MISMATCH = "FACE_MISMATCH"
    FACE_CHANGED_IN_VIDEO = "FACE_CHANGED_IN_VIDEO"
    FACE_CLOSER_TO_RELATIVE = "FACE_CLOSER_TO_RELATIVE"
    SPOOF_SUSPECTED = "SPOOF_SUSPECTED"
    SPOOF_RIGID_MOTION = "SPOOF_RIGID_MOTION"
    CAPTURE_TOO_DARK = "CAPTURE_TOO_DARK"
    CAPTURE_BACKLIT = "CAPTURE_BACKLIT"
    CAPTURE_TOO_BLURRY = "CAPTURE_TOO_BLURRY"
    CAPTURE_FACE_TOO_SMALL = "CAPTURE_FACE_TOO_SMALL"
    CHALLENGE_MISSING_ACTION = "CHALLENGE_MISSING_ACTION"
    CHALLENGE_WRONG_ORDER = "CHALLENGE_WRONG_ORDER"
    CHALLENGE_EXTRA_ACTIONS = "CHALLENGE_EXTRA_ACTIONS"
    VIDEO_DUPLICATE = "VIDEO_DUPLICATE"
    # The screen-light challenge (pipelines/liveness/light_response.py), in its "enforce" mode: the face did not
    # follow the screen's colours (a retake: too bright a room, too dim a screen, the face too far), or the face
    # and the background followed them alike (a flat screen filling the view: to staff).
    LIGHT_NOT_SEEN = "LIGHT_NOT_SEEN"
    LIGHT_FLAT = "LIGHT_FLAT"
    # Under "enforce", the session's stored sequence could not be read back, so the video was analysed without the
    # light check: the machine's accept goes to staff instead (service/certification/processing.py), never a pass
    # without the check the mode requires.
    LIGHT_UNREADABLE = "LIGHT_UNREADABLE"
    # Under "enforce", the session was issued no sequence (opened while the challenge was off): analysed without the
    # light check, so the machine's accept goes to staff as for LIGHT_UNREADABLE.
    LIGHT_NOT_ISSUED = "LIGHT_NOT_ISSUED"
    MEDIA_UNSUPPORTED = "MEDIA_UNSUPPORTED"
    MEDIA_CORRUPT = "MEDIA_CORRUPT"
    MEDIA_TOO_LARGE = "MEDIA_TOO_LARGE"
    VIDEO_TOO_SHORT = "VIDEO_TOO_SHORT"
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"
    # More frames per second than any camera's recording (VideoLimits.max_fps, a slow-motion mode past it): its own
    # code, not MEDIA_UNSUPPORTED, whose 文件格式不支持 told the citizen their (accepted) file type was the fault.
    VIDEO_FRAME_RATE_TOO_HIGH = "VIDEO_FRAME_RATE_TOO_HIGH"
    BENEFICIARY_DECEASED = "BENEFICIARY_DECEASED"
    # The roster gave the record another ID number after the session was opened: its card and video are the
    # previous number's person's, and certify nobody now (service/certification/current_person.py).
    IDENTITY_CHANGED = "IDENTITY_CHANGED"
    # The face template the worker compared the video with was dropped while the job ran by a revocation of the
    # person's certification as 冒领 or a wrong accept (the impostor's face): the machine's accept rested on it, and
    # goes to staff instead (service/certification/processing.py).
    TEMPLATE_DROPPED = "TEMPLATE_DROPPED"
    ATTEMPTS_EXCEEDED = "ATTEMPTS_EXCEEDED"
    PROXY_NOT_BOUND = "PROXY_NOT_BOUND"
    PROXY_LIMIT_REACHED = "PROXY_LIMIT_REACHED"
    PROXY_OPERATOR_FACE = "PROXY_OPERATOR_FACE"
    # A proxy certification queued before another of its binding's was flagged (or the binding locked): to staff
    # (service/features/proxy/holds.py puts it into the decision; service/certification/review.py reads it).
    PROXY_BINDING_HELD = "PROXY_BINDING_HELD"
    # A proxy certification whose binding the elder ended (withdrew consent) before it was decided: it certifies
    # nobody, whoever decides it (service/features/proxy/holds.py), and is no failure of the relative's.
    PROXY_BINDING_WITHDRAWN = "PROXY_BINDING_WITHDRAWN"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"

    @property
    def message_zh(self) -> str:
        return MESSAGES_ZH[self]

    @property
    def staff_zh(self) -> str:
        """The short label staff see in the console (the citizen's message is advice, not a finding)."""
        return STAFF_LABELS_ZH.get(self, MESSAGES_ZH[self])


MESSAGES_ZH: dict[ReasonCode, str] = {
    ReasonCode.ID_NOT_A_CARD: "未识别到身份证,请拍摄居民身份证",
    ReasonCode.ID_WRONG_SIDE: "请拍摄身份证人像面",
    ReasonCode.ID_CUT_OFF: "身份证未拍全,请将整张证件放入画面",
    ReasonCode.ID_TOO_BLURRY: "照片模糊,请对焦后重拍",
    ReasonCode.ID_GLARE: "证件反光,请避开灯光重拍",
    ReasonCode.ID_NUMBER_UNREADABLE: "号码不清晰,请重拍",
    ReasonCode.ID_CHECKSUM_FAILED: "身份证号码校验未通过,请核对后重拍",
    ReasonCode.ID_FIELDS_INCONSISTENT: "证件信息前后不一致,请核对",
    ReasonCode.ID_EXPIRED: "身份证已过有效期,请使用有效证件",
    ReasonCode.ID_NUMBER_MISMATCH: "证件号码与认证对象不一致",
    ReasonCode.ID_PORTRAIT_NO_FACE: "身份证上的照片未能识别,请拍摄清晰、无反光的身份证人像面",
    ReasonCode.FACE_NOT_FOUND: "未检测到人脸,请正对镜头",
    ReasonCode.FACE_MULTIPLE: "画面中有多张人脸,请确保只有本人",
    ReasonCode.FACE_LOW_QUALITY: "人脸不够清晰,请在光线充足处正对镜头",
    ReasonCode.FACE_MISMATCH: "人脸与证件照片不一致",
    ReasonCode.FACE_CHANGED_IN_VIDEO: "视频中人员发生变化",
    # Neutral on purpose: the citizen learns that a person checks, not whose enrolled face was closer.
    ReasonCode.FACE_CLOSER_TO_RELATIVE: "需工作人员人工核实本人身份,请耐心等待审核结果",
    ReasonCode.SPOOF_SUSPECTED: "未通过活体检测,请本人实时拍摄",
    ReasonCode.SPOOF_RIGID_MOTION: "未检测到真人面部动作,请本人实时拍摄,并按提示眨眼或转头",
    ReasonCode.CAPTURE_TOO_DARK: "光线太暗,请到明亮处重拍",
    ReasonCode.CAPTURE_BACKLIT: "背后光线太强,请面向光源或避开窗户重拍",
    ReasonCode.CAPTURE_TOO_BLURRY: "画面模糊,请擦净镜头、拿稳手机后重拍",
    ReasonCode.CAPTURE_FACE_TOO_SMALL: "人脸太小,请把手机拿近一些重拍",
    ReasonCode.CHALLENGE_MISSING_ACTION: "未完成指定动作,请按提示重新录制",
    ReasonCode.CHALLENGE_WRONG_ORDER: "动作顺序不正确,请按提示重新录制",
    ReasonCode.CHALLENGE_EXTRA_ACTIONS: "视频中有许多未要求的动作,已转工作人员审核",
    ReasonCode.VIDEO_DUPLICATE: "视频重复提交,请重新录制",
    ReasonCode.LIGHT_NOT_SEEN: "未看到屏幕颜色照在脸上,请在室内、调亮手机屏幕、脸靠近屏幕后重拍",
    # Neutral, as FACE_CLOSER_TO_RELATIVE's: the citizen learns that a person checks, not what the machine suspects.
    ReasonCode.LIGHT_FLAT: "视频需人工核实,已转工作人员审核,请耐心等待审核结果",
    ReasonCode.LIGHT_UNREADABLE: "视频需人工核实,已转工作人员审核,请耐心等待审核结果",
    ReasonCode.LIGHT_NOT_ISSUED: "视频需人工核实,已转工作人员审核,请耐心等待审核结果",
    ReasonCode.MEDIA_UNSUPPORTED: "文件格式不支持",
    ReasonCode.MEDIA_CORRUPT: "文件已损坏,请重新上传",
    ReasonCode.MEDIA_TOO_LARGE: "文件过大,请重新拍摄",
    ReasonCode.VIDEO_TOO_SHORT: "视频太短,请重新录制",
    ReasonCode.VIDEO_TOO_LONG: "视频太长,请重新录制",
    ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH: "视频帧率过高,请用手机相机的普通录像模式重新录制,不要使用慢动作",
    ReasonCode.BENEFICIARY_DECEASED: "该人员已登记死亡,无法认证",
    ReasonCode.IDENTITY_CHANGED: "该档案登记的身份证号已变更,本次认证未通过,请持本人现用身份证重新认证",
    # Neutral on purpose, as FACE_CLOSER_TO_RELATIVE's: the citizen is not told of a revocation here.
    ReasonCode.TEMPLATE_DROPPED: "需工作人员人工核实本人身份,请耐心等待审核结果",
    ReasonCode.ATTEMPTS_EXCEEDED: "今日认证次数已达上限,可申请人工审核",
    ReasonCode.PROXY_NOT_BOUND: "尚未绑定该亲属,请先绑定",
    ReasonCode.PROXY_LIMIT_REACHED: "绑定数量已达上限",
    ReasonCode.PROXY_OPERATOR_FACE: "请拍摄被认证老人本人,而非代办人",
    ReasonCode.PROXY_BINDING_HELD: "该绑定正在人工核查,本次代办认证已转工作人员审核,请耐心等待结果",
    ReasonCode.PROXY_BINDING_WITHDRAWN: "老人本人已解除您的代办绑定,本次代办认证不能通过",
    ReasonCode.MODEL_UNAVAILABLE: "系统暂时无法处理,请稍后再试",
}


# Codes whose citizen message describes the staff review the case went to ("已转工作人员审核", "请耐心等待"): true
# while the review is open, wrong once staff have decided (the H5 result page leaves them out then).
TELLS_OF_REVIEW: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.FACE_CLOSER_TO_RELATIVE,
        ReasonCode.CHALLENGE_EXTRA_ACTIONS,
        ReasonCode.PROXY_BINDING_HELD,
        ReasonCode.TEMPLATE_DROPPED,
        ReasonCode.LIGHT_FLAT,
        ReasonCode.LIGHT_UNREADABLE,
        ReasonCode.LIGHT_NOT_ISSUED,
    }
)


# The same codes as staff read them in the review console: what the machine found, in a few words.
STAFF_LABELS_ZH: dict[ReasonCode, str] = {
    ReasonCode.ID_NOT_A_CARD: "未识别到身份证",
    ReasonCode.ID_WRONG_SIDE: "拍摄的不是人像面",
    ReasonCode.ID_CUT_OFF: "证件未拍全",
    ReasonCode.ID_TOO_BLURRY: "证件照片模糊",
    ReasonCode.ID_GLARE: "证件反光",
    ReasonCode.ID_NUMBER_UNREADABLE: "证件号码无法识别",
    ReasonCode.ID_CHECKSUM_FAILED: "证件号码校验位错误",
    ReasonCode.ID_FIELDS_INCONSISTENT: "证件信息前后矛盾（出生日期、性别与号码不符）",
    ReasonCode.ID_EXPIRED: "身份证已过期",
    ReasonCode.ID_NUMBER_MISMATCH: "证件号码与名册人员不符",
    ReasonCode.ID_PORTRAIT_NO_FACE: "证件照上未检测到人脸",
    ReasonCode.FACE_NOT_FOUND: "视频中未检测到人脸",
    ReasonCode.FACE_MULTIPLE: "画面中有多张人脸",
    ReasonCode.FACE_LOW_QUALITY: "人脸质量低",
    ReasonCode.FACE_MISMATCH: "人脸与证件照/模板不一致",
    ReasonCode.FACE_CHANGED_IN_VIDEO: "视频中途换人",
    ReasonCode.FACE_CLOSER_TO_RELATIVE: "人脸更像已登记的亲属",
    ReasonCode.SPOOF_SUSPECTED: "疑似非真人（静默活体分数偏低）",
    ReasonCode.SPOOF_RIGID_MOTION: "疑似照片/屏幕翻拍（面部无形变）",
    ReasonCode.CAPTURE_TOO_DARK: "画面过暗",
    ReasonCode.CAPTURE_BACKLIT: "逆光",
    ReasonCode.CAPTURE_TOO_BLURRY: "视频模糊",
    ReasonCode.CAPTURE_FACE_TOO_SMALL: "人脸过小",
    ReasonCode.CHALLENGE_MISSING_ACTION: "未完成指定动作",
    ReasonCode.CHALLENGE_WRONG_ORDER: "动作顺序错误",
    ReasonCode.CHALLENGE_EXTRA_ACTIONS: "视频可完成大多数随机动作组合（疑似预录视频）",
    ReasonCode.VIDEO_DUPLICATE: "视频重复提交",
    ReasonCode.LIGHT_NOT_SEEN: "未见屏幕光照在脸上（炫彩活体未通过）",
    ReasonCode.LIGHT_FLAT: "屏幕光同样照亮人脸和背景（疑似屏幕翻拍）",
    ReasonCode.LIGHT_UNREADABLE: "本次的屏幕光线序列无法读取，未做炫彩活体核验，须人工核实",
    ReasonCode.LIGHT_NOT_ISSUED: "会话开启时未启用炫彩活体（未发出屏幕光线序列），未做该核验，须人工核实",
    ReasonCode.MEDIA_UNSUPPORTED: "文件格式不支持",
    ReasonCode.MEDIA_CORRUPT: "文件损坏",
    ReasonCode.MEDIA_TOO_LARGE: "文件过大",
    ReasonCode.VIDEO_TOO_SHORT: "视频过短",
    ReasonCode.VIDEO_TOO_LONG: "视频过长",
    ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH: "视频帧率过高（超出相机录像的帧率）",
    ReasonCode.BENEFICIARY_DECEASED: "名册登记已死亡",
    ReasonCode.IDENTITY_CHANGED: "视频录制后名册变更了该档案的身份证号（视频是变更前人员的）",
    ReasonCode.TEMPLATE_DROPPED: "比对所用的人脸模板在处理期间因认证被撤销（冒领或错误受理）而删除，机器通过不作数",
    ReasonCode.ATTEMPTS_EXCEEDED: "当日认证次数已用完",
    ReasonCode.PROXY_NOT_BOUND: "代办人未绑定该老人",
    ReasonCode.PROXY_LIMIT_REACHED: "代办绑定数量已满",
    ReasonCode.PROXY_OPERATOR_FACE: "视频中的人脸像代办人本人",
    ReasonCode.PROXY_BINDING_HELD: "同一绑定另有代办认证被标记(代办人本人出镜)或绑定已锁定,转人工",
    ReasonCode.PROXY_BINDING_WITHDRAWN: "认证过程中老人本人解除了该代办绑定(撤回同意),不能据此认证",
    ReasonCode.MODEL_UNAVAILABLE: "模型不可用",
}


# Card problems that do not stop a decision on their own when the number still reads and validates
# (pipelines/decision/rules.py): notes beside the decision, not its cause.
CARD_SOFT: frozenset[ReasonCode] = frozenset({ReasonCode.ID_TOO_BLURRY, ReasonCode.ID_GLARE, ReasonCode.ID_CUT_OFF})


def staff_may_overrule(code: str, *, number_matched: bool = False) -> bool:
    """Whether a machine reject for `code` is one a member of staff watching the video may overrule (a citizen's
    request for a manual review: service/features/console/assist_video.py): what the person did in front of the
    camera, an action of the challenge not done or done out of order (a stroke patient who cannot turn her head,
    CHALLENGE_*), or the capture (light, blur, a face too small: CAPTURE_*); and the card notes the machine itself
    lets pass when the number reads (CARD_SOFT), only when `number_matched` (the card's number was read and
    compared with the person's: a glare or blur that hid the number is reported instead of ID_NUMBER_UNREADABLE,
    and then nobody compared the card with the roster). Never the passive liveness (SPOOF_*: a photo, a screen or
    a recording replayed, the signature of a relative replaying a deceased pensioner's video, whose face matches),
    nor the screen-light challenge's findings (LIGHT_*: the face did not answer the screen's colours, or a flat
    surface did, the evidence against a replayed video), nor a finding about whose face, card or record it is
    (FACE_*, the other ID_* codes, VIDEO_DUPLICATE, IDENTITY_CHANGED, BENEFICIARY_DECEASED, the proxy codes), nor
    a video the machine could not read (MEDIA_*, VIDEO_TOO_*, MODEL_UNAVAILABLE): a person settles those at the
    counter or a home visit."""
    return code.startswith(("CHALLENGE_", "CAPTURE_")) or (number_matched and code in CARD_SOFT)


def needs_new_card(code: str) -> bool:
    """Whether a session that failed for `code` cannot lend its ID card photo to the next attempt: the photo itself
    was the problem (the card checks, ID_*), or the record names another ID number now (IDENTITY_CHANGED: the card
    is the previous number's person's)."""
    return code.startswith("ID_") or code == ReasonCode.IDENTITY_CHANGED


def screen_light_advice(codes: Iterable[str]) -> bool:
    """Whether the advice for the next take is the screen-light challenge's (indoors, the screen bright, the face
    near it) rather than the usual one (a well-lit place): the face did not follow the screen's colours
    (LIGHT_NOT_SEEN), and bright light is what drowns them. The result page's line and the result notice both
    ask here."""
    return ReasonCode.LIGHT_NOT_SEEN in codes
