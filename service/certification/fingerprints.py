"""Database side of the duplicate-video policy (:mod:`pipelines.liveness.duplicates`, which says what counts as a
duplicate and where each check runs).

``already_uploaded``: the upload's exact re-upload check (equal sha256, any earlier video of anyone).
``SessionFingerprints``: the worker's ``VideoFingerprintStore``, bound to one session: it compares with earlier
videos of the same beneficiary only (a replay of someone else's video fails the face match anyway), and never with
the session's own video, so a job redone after a worker crash is not its own duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipelines.liveness.duplicates import is_duplicate
from service.certification.context import ServiceContext
from service.certification.models import VideoFingerprint

MAX_COMPARED = 50  # a beneficiary's recent videos; more would only slow the check


def already_uploaded(db: Session, video_sha256: str) -> bool:
    """An exact re-upload: a stored video (anyone's, any session) has these bytes."""
    return db.scalar(select(VideoFingerprint).where(VideoFingerprint.sha256 == video_sha256)) is not None


class SessionFingerprints:
    """``beneficiary_id`` None: a session without a beneficiary (a relative's verification), compared with the
    videos of ``peer_sessions`` instead (the same claimant's earlier sessions, service/certification/contract.py
    ``Claim``)."""

    def __init__(
        self, ctx: ServiceContext, session_id: str, beneficiary_id: int | None, peer_sessions: Sequence[str] = ()
    ) -> None:
        self.ctx = ctx
        self.session_id = session_id
        self.beneficiary_id = beneficiary_id
        self.peer_sessions = tuple(peer_sessions)

    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        same_person = (
            VideoFingerprint.beneficiary_id == self.beneficiary_id
            if self.beneficiary_id is not None
            else VideoFingerprint.session_id.in_(self.peer_sessions)
        )
        with self.ctx.db() as db:
            rows = db.scalars(
                select(VideoFingerprint)
                .where(same_person, VideoFingerprint.session_id != self.session_id)
                .order_by(VideoFingerprint.id.desc())
                .limit(MAX_COMPARED)
            ).all()
        return any(
            is_duplicate(video_sha256, frame_hashes, row.sha256, [int(h, 16) for h in row.frame_hashes or ()])
            for row in rows
        )

    def add(self, video_sha256: str, frame_hashes: Sequence[int]) -> None:
        with self.ctx.db() as db:
            db.execute(
                update(VideoFingerprint)
                .where(VideoFingerprint.session_id == self.session_id)
                .values(frame_hashes=[f"{h:016x}" for h in frame_hashes])
            )
