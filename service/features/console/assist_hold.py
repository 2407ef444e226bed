"""How long an open request for a manual review (人工审核) keeps its video from the retention purge.

The purge (service/certification/retention.py) keeps the video such a request waits on (assist_video.videos_awaited,
contract.KeptMediaSource): staff promised the person to watch it. Before, it kept it for as long as the request
stayed open, so a request staff never acted on kept the citizen's face video without an end, against the pages'
照片和视频…天内删除. Now the hold ends `REVIEW_VIDEO_HOLD_DAYS` after the request was filed (with the purge's own day
ahead, retention.PURGE_AHEAD: the next run would be a day late); the next run takes the video. The request stays
open (staff still owe a home visit or the counter): the console's list marks it (视频已过保存期限), the request page
refuses 视频审核通过 on the purged video (assist_video.PURGED), and the person's H5 page says so (`hold_ended`), once
the video the request page would show is gone: the age alone said so of a request whose video is kept on its own
(the person's newer reject, an evidence hold; docs/security.md Part DP). Supervisors are warned before the end
(`video_goes`), and the requester is told after the purge (assist_hold_end.py).
"""

from __future__ import annotations

import datetime as dt

from service.certification.models import CertSession
from service.certification.retention import PURGE_AHEAD
from service.features.console.models import AssistKind, AssistRequest
from service.infra.config import Settings


def hold_cutoff(settings: Settings, now: dt.datetime) -> dt.datetime:
    """Requests filed before this no longer keep their video (the purge's own rule for its period: what would pass
    the hold before the next daily run goes now; never later than ``now``)."""
    return min(now, now - dt.timedelta(days=settings.storage.review_video_hold_days) + PURGE_AHEAD)


def hold_end(settings: Settings, filed: dt.datetime) -> dt.datetime:
    """The instant after which a request filed at `filed` no longer keeps its video: the first purge run past it takes
    it (`hold_cutoff` read from the request's side)."""
    return max(filed, filed + dt.timedelta(days=settings.storage.review_video_hold_days) - PURGE_AHEAD)


def video_goes(settings: Settings, req: AssistRequest, video: CertSession) -> dt.datetime:
    """When the purge may take `video`, the one `req` waits on: past the request's hold (`hold_end`) and past the
    video's own retention period (a reject made after the request was filed has its own; an evidence hold aside)."""
    decided = video.decided_at or video.created_at
    own = decided + dt.timedelta(days=settings.storage.retention_days) - PURGE_AHEAD
    return max(hold_end(settings, req.created_at), own)


def hold_ended(settings: Settings, req: AssistRequest, video: CertSession | None, now: dt.datetime) -> bool:
    """Whether `req` is a manual review whose video the purge no longer keeps for it (`hold_cutoff`) and is gone:
    `video` (assist_video.video_of: what the request page shows) purged, or none."""
    aged = req.kind == AssistKind.MANUAL_REVIEW and req.created_at < hold_cutoff(settings, now)
    return aged and (video is None or video.media_purged_at is not None)
