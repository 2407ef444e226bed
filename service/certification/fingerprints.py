"""Database-backed near-duplicate video store (the liveness stage's ``VideoFingerprintStore`` protocol).

Bound to one session: it compares with earlier videos of the same beneficiary only (a replay of someone
else's video fails the face match anyway), and never with the session's own video, so a job redone after a
worker crash is not its own duplicate. Exact re-uploads are refused earlier, at upload, by sha256.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from pipelines.liveness.replay import near_duplicate
from service.certification.context import ServiceContext
from service.certification.models import VideoFingerprint

MAX_COMPARED = 50  # a beneficiary's recent videos; more would only slow the check


class SessionFingerprints:
    def __init__(self, ctx: ServiceContext, session_id: str, beneficiary_id: int) -> None:
        self.ctx = ctx
        self.session_id = session_id
        self.beneficiary_id = beneficiary_id

    def seen(self, video_sha256: str, frame_hashes: Sequence[int]) -> bool:
        with self.ctx.db() as db:
            rows = db.scalars(
                select(VideoFingerprint)
                .where(
                    VideoFingerprint.beneficiary_id == self.beneficiary_id,
                    VideoFingerprint.session_id != self.session_id,
                )
                .order_by(VideoFingerprint.id.desc())
                .limit(MAX_COMPARED)
            ).all()
        for row in rows:
            if row.sha256 == video_sha256:
                return True
            if (
                row.frame_hashes
                and frame_hashes
                and near_duplicate(frame_hashes, [int(h, 16) for h in row.frame_hashes])
            ):
                return True
        return False

    def add(self, video_sha256: str, frame_hashes: Sequence[int]) -> None:
        with self.ctx.db() as db:
            db.execute(
                update(VideoFingerprint)
                .where(VideoFingerprint.session_id == self.session_id)
                .values(frame_hashes=[f"{h:016x}" for h in frame_hashes])
            )
