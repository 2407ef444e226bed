"""What a reviewer reads first on a case: why the machine could not settle it, and each score placed in its
band (auto-accept / review / reject) against the thresholds recorded in that very decision, not today's
configuration, so the page explains the decision as it was made."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from service.certification.current_person import made_for_current_person
from service.certification.models import Beneficiary, CertSession, SessionDecision, SessionState
from service.features.console.labels import NOTE_ZH, reason_label

BAND_ZH = {"accept": "通过区", "review": "复核区", "reject": "拒绝区"}

# What a reviewer reads when the accept of a case is refused because the roster changed the record's ID number after
# the video (IDENTITY_CHANGED, service/certification/current_person.py): why, and what they may still do.
IDENTITY_CHANGED_REFUSAL_ZH = (
    "不能通过：本次视频录制后，名册已变更该档案的身份证号，视频中的人员是变更前号码的人员，不能为现档案人员认证。"
    "可选择“不通过”或“请重新认证”；如主管在预警中核实为同一人（号码更正），可再审核通过。"
)


@dataclass(frozen=True)
class ScoreRow:
    key: str
    label: str
    value: float | None
    accept: float | None  # the auto-accept line (for operator_match: the line above which it is rejected)
    review: float | None
    higher_is_better: bool = True

    @property
    def band(self) -> str | None:
        if self.value is None or self.review is None:
            return None
        if self.higher_is_better:
            if self.accept is not None and self.value >= self.accept:
                return "accept"
            return "review" if self.value >= self.review else "reject"
        if self.accept is not None and self.value >= self.accept:
            return "reject"
        return "review" if self.value >= self.review else "accept"

    @property
    def band_zh(self) -> str:
        return BAND_ZH.get(self.band or "", "—")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def score_rows(result: dict[str, Any]) -> list[ScoreRow]:
    """The scores of one decision with their thresholds. Proxy sessions are accepted at the stricter
    `proxy_face_accept`, and their relative-vs-elder score (`operator_match`) is better the lower it is."""
    sc: dict[str, Any] = result.get("scores") or {}
    th: dict[str, Any] = result.get("thresholds") or {}
    live: dict[str, Any] = result.get("liveness") or {}
    face_accept = _num(th.get("proxy_face_accept")) or _num(th.get("face_accept"))
    face_review = _num(th.get("face_review"))
    rows = [
        ScoreRow(key, label, _num(sc.get(key)), face_accept, face_review)
        for key, label in (("card_similarity", "证件照比对相似度"), ("template_similarity", "模板比对相似度"))
    ]
    passive = _num(sc.get("passive_liveness", live.get("passive_score")))
    pass_at = _num(th.get("passive_pass", live.get("passive_threshold")))
    margin = _num(th.get("passive_review_margin")) or 0.0
    floor = _num(th.get("passive_review_floor"))
    rows.append(
        ScoreRow(
            "passive_liveness",
            "静默活体",
            passive,
            pass_at + margin if pass_at is not None else None,
            floor if floor is not None else pass_at,
        )
    )
    if "operator_match" in sc or "operator_reject" in th:
        rows.append(
            ScoreRow(
                "operator_match",
                "与代办人相似度（越低越好）",
                _num(sc.get("operator_match")),
                _num(th.get("operator_reject")),
                _num(th.get("operator_review")),
                higher_is_better=False,
            )
        )
    return rows


# The screen-light challenge's result (the decision's liveness entry `light`, pipelines/liveness/light.py): whether
# the face followed the colours the capture page showed. One line of evidence beside the actions.
LIGHT_ZH = {
    "seen": "脸部随屏幕颜色变化",
    "not_seen": "未见变化",
    "flat": "脸与背景同样变化（疑似翻拍）",
    "too_short": "录像太短，未能判断",
    # Issued, but the stored sequence could not be read back (processing._unchecked_light): analysed without it.
    "unreadable": "已发出，无法读取（未做光线核验）",
    # None issued (opened while the challenge was off) and processed under enforce: to staff, LIGHT_NOT_ISSUED.
    "not_issued": "会话开启时未发出（未做光线核验）",
}
LIGHT_NOT_ISSUED_ZH = "未发出"


def light_evidence(result: dict[str, Any]) -> str | None:
    """The screen-light line of a decision, in Chinese; None for a decision without a liveness analysis (a failed
    job, undecodable media). A session issued no sequence (LIGHT_CHALLENGE off, or opened before it) reads 未发出;
    a status this page does not know is shown as recorded."""
    live = result.get("liveness")
    if not isinstance(live, dict):
        return None
    light = live.get("light")
    status = light.get("status") if isinstance(light, dict) else None
    if not isinstance(status, str):
        return LIGHT_NOT_ISSUED_ZH
    return LIGHT_ZH.get(status, status)


def review_reasons(s: CertSession) -> list[str]:
    """Why the case is in the queue, in Chinese: the decision's reason codes, then the notes that sent it to a
    person without a code (first proxy certification, the stricter proxy line, no operator template), then a
    face score in the review band when nothing else explains it, or the failed job. Empty for a session the
    machine settled by itself."""
    if s.state == SessionState.FAILED:
        return ["处理失败（系统未能完成自动判定）"]
    result: dict[str, Any] = s.result or {}
    out = [reason_label(code) for code in s.reasons or []]
    out += [NOTE_ZH[n] for n in result.get("notes") or [] if n in NOTE_ZH]
    if not out:
        out += [f"{row.label}处于复核区" for row in score_rows(result) if row.band == "review"]
    # A case settled by staff keeps the machine's own decision under "review"; a machine accept has no reason.
    machine = (result.get("review") or {}).get("machine_decision", s.decision)
    if not out and machine == SessionDecision.REVIEW:
        out.append("机器判定需人工复核")
    return list(dict.fromkeys(out))


def identity_changed_since(s: CertSession, b: Beneficiary | None) -> dt.datetime | None:
    """When the roster gave the case's record another ID number, if it did after the case's session was opened (the
    video is then the previous number's person's, and an accept is refused); None otherwise."""
    if b is None or made_for_current_person(b, s.created_at):
        return None
    return b.identity_since
