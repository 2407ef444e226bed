"""The face rules of a relative's (proxy) case: whether its accept takes two people because the face may not be
the elder's (review.accept_needs_second asks `proxy_face_doubt` and the codes and notes below). Read from what the
stored decision records (its scores and thresholds), not only from its notes (docs/security.md, Parts BC, BG)."""

from __future__ import annotations

from pipelines.reasons import ReasonCode
from proxy_auth.decision import NOTE_BELOW_PROXY_LINE, NOTE_NO_OPERATOR_TEMPLATE
from service.certification.models import CertSession, SessionState

# On a relative's (proxy) session, also the signals that a live elder may not be the one filmed: a borderline
# liveness score (a photo or a recording of a dead parent: the face matches, only liveness is in doubt), and the
# notes of the proxy policy (proxy_auth/decision.py) that its face could be the relative's own or is below the
# proxy line. On the person's own session SPOOF_SUSPECTED stays one reviewer's: it is the common borderline
# liveness code there (most of the queue), and with a fraud revocation or a code above it takes two anyway.
PROXY_DOUBT_CODES = frozenset({ReasonCode.SPOOF_SUSPECTED})
PROXY_DOUBT_NOTES = frozenset({NOTE_NO_OPERATOR_TEMPLATE, NOTE_BELOW_PROXY_LINE})
# On a relative's session, a face that only borderline-matched: the typical 冒领 of a relative presenting a dead
# parent's face sends no reason code and no note, only a face score in the review band (face_below_accept).
FACE_REVIEW_BAND = "face_review_band"
# No machine face check at all: a failed job (an input that crashes the worker every time reaches staff with no
# decision) or, on a relative's session, a decision without a face score or its line (face_checked). A failed job of
# the person's own session too (review.accept_needs_second): the accept would rest on one reviewer's look at the card.
MACHINE_UNCHECKED = "machine_unchecked"


def proxy_face_doubt(s: CertSession) -> str | None:
    """Why the face of a relative's (proxy) case `s` leaves its accept to two people, from what the stored decision
    records (None: the face cleared both lines). `machine_unchecked`: no machine face check (a failed job, or no face
    score or accept line: `face_checked`); `face_review_band`: under the accept line (`face_below_accept`);
    NOTE_BELOW_PROXY_LINE: under the stricter proxy line (`face_below_proxy_line`), read from the scores and not
    only from the note, which the proxy policy adds only when the outcome was still an accept (a case also sent to
    staff for a low-quality frame or a card field carries no note)."""
    result = s.result or {}
    if s.state == SessionState.FAILED or not face_checked(result):
        return MACHINE_UNCHECKED
    if face_below_accept(result):
        return FACE_REVIEW_BAND
    if face_below_proxy_line(result):
        return NOTE_BELOW_PROXY_LINE
    return None


def _face_lines(result: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    scores, thresholds = result.get("scores"), result.get("thresholds")
    return (scores if isinstance(scores, dict) else {}), (thresholds if isinstance(thresholds, dict) else {})


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _face_scores(scores: dict[str, object]) -> list[float]:
    found = (_number(scores.get(k)) for k in ("card_similarity", "template_similarity"))
    return [x for x in found if x is not None]


def face_checked(result: dict[str, object]) -> bool:
    """Whether the decision compared the face at all: a face score (card or template) and the accept line."""
    scores, thresholds = _face_lines(result)
    return bool(_face_scores(scores)) and _number(thresholds.get("face_accept")) is not None


def face_below_accept(result: dict[str, object]) -> bool:
    """Whether the decision's face match stayed under the face accept line it recorded: the face reference the
    decision trusts most (the enrolled template when there was one, else the card: pipelines.decision.rules._face)
    scored below `thresholds.face_accept`. False without a face score or that line (`face_checked` says so)."""
    scores, thresholds = _face_lines(result)
    accept = _number(thresholds.get("face_accept"))
    template = scores.get("template_similarity")
    best = _number(template if template is not None else scores.get("card_similarity"))
    return accept is not None and best is not None and best < accept


def face_below_proxy_line(result: dict[str, object]) -> bool:
    """Whether the best of card and template stayed under the proxy line, as proxy_auth.decision.apply_proxy_policy
    judges it: the `thresholds.proxy_face_accept` it records (the face accept line when it recorded none)."""
    scores, thresholds = _face_lines(result)
    line = _number(thresholds.get("proxy_face_accept"))
    line = line if line is not None else _number(thresholds.get("face_accept"))
    found = _face_scores(scores)
    return line is not None and bool(found) and max(found) < line
