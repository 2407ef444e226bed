"""Pictures for the case page, cut from the session's stored (encrypted) media on demand: the card's
portrait, the video's best frames, a frame of the session that enrolled the beneficiary's template and, for
proxy sessions, a frame of the relative's own verification.

Nothing is written to disk; after the retention purge the media are gone and the page says so.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.errors import MediaError
from pipelines.media import ID_CARD_IMAGE_LIMITS, decode_image
from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionDecision, certification_revoked
from service.features.proxy.models import ProxySession, ProxySessionKind
from service.infra.storage import StorageError

log = logging.getLogger(__name__)
MAX_SIDE = 360
# Where frames are cut from a video no analysis covers (a failed job has no best frames), as parts of its length.
SPREAD = (0.2, 0.5, 0.8)


class CaseImage(enum.StrEnum):
    """The pictures of a case page: the path segment of ``/cases/<id>/img/<kind>/<index>`` and the names in its
    ``case.view`` audit row."""

    CARD = "card"  # the ID card's portrait
    FRAME = "frame"  # the index-th best frame of the video (evenly spaced ones when none: `spread_frames`)
    TEMPLATE = "template"  # a frame of the session that enrolled the beneficiary's template
    OPERATOR = "operator"  # a proxy session's relative, from their own verification


def _jpeg(img: np.ndarray) -> bytes:
    h, w = img.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _get(ctx: ServiceContext, key: str | None) -> bytes | None:
    if key is None:
        return None
    try:
        return ctx.storage.get(key)
    except (StorageError, OSError) as exc:
        log.info("case media unavailable: %s", type(exc).__name__)
        return None


def _crop(img: np.ndarray, box: Any, pad: float) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    pw, ph = (x2 - x1) * pad, (y2 - y1) * pad
    h, w = img.shape[:2]
    xa, ya = max(0, int(x1 - pw)), max(0, int(y1 - ph))
    xb, yb = min(w, int(x2 + pw)), min(h, int(y2 + ph))
    return img[ya:yb, xa:xb] if xb > xa and yb > ya else img


def card_portrait(ctx: ServiceContext, s: CertSession) -> bytes | None:
    """The portrait crop of the card (the whole card when the reader found no portrait)."""
    data = _get(ctx, s.id_card_key)
    if data is None:
        return None
    try:  # the pipeline's intake and limits (a JPEG of thousands of scans is refused from its markers: review media 2)
        img = decode_image(data, ID_CARD_IMAGE_LIMITS)
    except MediaError as exc:
        log.info("case card undecodable: %s", exc.reason)
        return None
    box = ((s.result or {}).get("id_card") or {}).get("portrait")
    return _jpeg(_crop(img, box, 0.05) if box else img)


def best_frame_times(s: CertSession) -> list[float]:
    frames = ((s.result or {}).get("liveness") or {}).get("best_frames") or []
    return [float(f["t"]) for f in frames if isinstance(f, dict) and "t" in f]


def spread_frames(s: CertSession) -> bool:
    """Whether the case page shows evenly spaced frames (`SPREAD`) instead of the pipeline's best frames: the video
    is kept but no analysis chose any (a failed job). Without them the reviewer would not see the person at all."""
    return not best_frame_times(s) and s.video_key is not None


def frame_count(s: CertSession) -> int:
    """How many video frames the case page shows: the best frames, else the evenly spaced ones."""
    return len(SPREAD) if spread_frames(s) else len(best_frame_times(s))


def video_frame(ctx: ServiceContext, s: CertSession, index: int) -> bytes | None:
    """Frame `index` of the session's video: a best frame cropped around the face with some context, or, for a
    video no analysis covers (`spread_frames`), the whole picture at `SPREAD[index]` of its length. Cut by the
    pipeline's intake (seeking, under the worker's decoding limits), never by a decode of its own."""
    times, spread = best_frame_times(s), spread_frames(s)
    if not 0 <= index < (len(SPREAD) if spread else len(times)):
        return None
    data = _get(ctx, s.video_key)
    if data is None:
        return None
    from pipelines.liveness.video import frame_at  # lazy: PyAV (video decoding) only when a case's video is opened

    frames = ((s.result or {}).get("liveness") or {}).get("best_frames") or []
    box = None if spread else frames[index].get("bbox")
    try:
        img = frame_at(data, of_length=SPREAD[index]) if spread else frame_at(data, at_s=times[index])
    except MediaError as exc:
        log.info("case video undecodable: %s", exc.reason)
        return None
    return None if img is None else _jpeg(_crop(img, box, 0.6) if box else img)


def template_source(db: Session, s: CertSession) -> CertSession | None:
    """The latest other accepted session of the same beneficiary whose media are still kept: its best frame
    stands for the enrolled template (the template itself is an embedding, not a picture). None for a session
    without a beneficiary (a relative's verification enrols no beneficiary template). Never one whose
    certification a supervisor revoked (found fraudulent: service/certification/revocation.py): that face is not
    the person's."""
    if s.beneficiary_id is None:
        return None
    return db.scalar(
        select(CertSession)
        .where(
            CertSession.beneficiary_id == s.beneficiary_id,
            CertSession.id != s.id,
            CertSession.decision == SessionDecision.ACCEPT,
            CertSession.video_key.is_not(None),
            CertSession.media_purged_at.is_(None),
            ~certification_revoked(),
        )
        .order_by(CertSession.decided_at.desc())
        .limit(1)
    )


def operator_source(db: Session, s: CertSession) -> CertSession | None:
    """For a proxy session: the latest accepted real-name verification of the relative who operated it, with
    media still kept. Its best frame is the relative's photo, shown next to the elder's so that a reviewer can
    see for themselves whether the relative filmed their own face."""
    ps = db.get(ProxySession, s.id)
    if ps is None:
        return None
    return db.scalar(
        select(CertSession)
        .join(ProxySession, ProxySession.session_id == CertSession.id)
        .where(
            ProxySession.operator_id == ps.operator_id,
            ProxySession.kind == ProxySessionKind.VERIFICATION.value,
            CertSession.decision == SessionDecision.ACCEPT,
            CertSession.video_key.is_not(None),
            CertSession.media_purged_at.is_(None),
        )
        .order_by(CertSession.decided_at.desc())
        .limit(1)
    )


def picture(ctx: ServiceContext, db: Session, s: CertSession, kind: CaseImage, index: int) -> bytes | None:
    """The JPEG of one case picture; None when there is none (out of range, nothing enrolled, media purged)."""
    if kind == CaseImage.CARD:
        return card_portrait(ctx, s)
    if kind == CaseImage.FRAME:
        return video_frame(ctx, s, index)
    src = template_source(db, s) if kind == CaseImage.TEMPLATE else operator_source(db, s)
    return video_frame(ctx, src, 0) if src else None
