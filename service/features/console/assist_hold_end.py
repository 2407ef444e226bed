"""The end of a manual review's video hold (assist_hold.py), told before and after: the console's share of the daily
upkeep (FeatureHooks.upkeep: the cycle run and Celery beat, each right after the retention purge).

Before, a request for a manual review (人工审核) nobody in staff handled came to the end of its hold in silence: no
supervisor was warned while the video could still be watched, the purge deleted it, and the requester, told
"不用再拍" when they filed, heard nothing (the H5 request page said it only to one who opened it). Now:

- `warn_holds_ending`: an open request whose video the purge may take within `REVIEW_VIDEO_WARN_DAYS` (the
  request's hold and the video's own retention both over: assist_hold.video_goes) raises one console alert
  (`ALERT`, /console/alerts) naming the request and the day its video is kept to; once per request, the runs
  serialised (one_writer_at_a_time); marked handled as any other alert, whether or not the request was closed since;
- `tell_videos_purged`: an open request whose video the purge has taken since it was filed, its hold over
  (assist_hold.hold_ended), is told to whoever filed it once (FeatureHooks.review_video_purged: the WeChat
  notice queue, one notice per request), for videos purged in the last `TOLD_WITHIN` (the scan stays small; a
  run missed for a day or two is caught up).

A request a certification answered since it was filed (assist.answered_sql) is neither: its person is certified.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import CertSession
from service.features.console.assist import answered_sql, open_sql
from service.features.console.assist_hold import hold_cutoff, hold_ended, video_goes
from service.features.console.assist_video import recent_attempts, video_of
from service.features.console.models import AssistKind, AssistRequest, ConsoleAlert
from service.infra.clock import local_date
from service.infra.config import Settings
from service.infra.db.locks import one_writer_at_a_time

log = logging.getLogger(__name__)

ALERT = "review_video_expiring"  # the alert's kind (console_alerts.kind, 32 characters at most)
WARN_LOCK = 0x70632D76  # advisory lock id of the warning run ("pc-v"), taken before any row
TOLD_WITHIN = dt.timedelta(days=7)  # videos purged this recently are told of


def hold_upkeep(ctx: ServiceContext, at: dt.datetime) -> dict[str, int]:
    """An `UpkeepHook` (registered by install_features): the warnings, then the notices, each in its own
    transaction, as of `at` (the purge's own time)."""
    with ctx.db() as db:
        warned = warn_holds_ending(db, ctx.settings, at)
    with ctx.db() as db:
        told = tell_videos_purged(db, ctx, at)
    return {"review_holds_warned": warned, "review_videos_purged_told": told}


def _manual_review_open() -> ColumnElement[bool]:
    return (AssistRequest.kind == AssistKind.MANUAL_REVIEW) & open_sql() & ~answered_sql()


def _warned_sql() -> ColumnElement[bool]:
    """An `ALERT` raised for the request already (handled or not)."""
    return exists().where(ConsoleAlert.kind == ALERT, ConsoleAlert.detail["request"].as_integer() == AssistRequest.id)


def warn_holds_ending(db: Session, settings: Settings, at: dt.datetime) -> int:
    """One `ALERT` for each open manual-review request whose video is still stored and may go before
    `REVIEW_VIDEO_WARN_DAYS` from `at`, not raised before; how many were raised."""
    # Two runs at once (the cycle run and Celery beat) take turns, the second reading what the first raised.
    one_writer_at_a_time(db, WARN_LOCK)
    ahead = at + dt.timedelta(days=settings.storage.review_video_warn_days)
    stored = exists().where(
        CertSession.beneficiary_id == AssistRequest.beneficiary_id,
        CertSession.video_key.is_not(None),
        CertSession.media_purged_at.is_(None),
    )
    query = select(AssistRequest).where(
        _manual_review_open(),
        AssistRequest.created_at < hold_cutoff(settings, ahead),  # its hold ends before `ahead` (or has)
        stored,
        ~_warned_sql(),
    )
    raised = 0
    for req in db.scalars(query.order_by(AssistRequest.id)).all():
        video = video_of(db, req, recent_attempts(db, req.beneficiary_id))
        if video is None or video.video_key is None or video.media_purged_at is not None:
            continue  # nothing left to lose
        goes = video_goes(settings, req, video)
        if goes >= ahead:
            continue  # kept for its own retention period: warned when that nears
        detail = {
            "request": req.id,
            "filed_on": local_date(settings, req.created_at).isoformat(),
            "kept_until": local_date(settings, goes).isoformat(),
        }
        db.add(ConsoleAlert(kind=ALERT, beneficiary_id=req.beneficiary_id, detail=detail))
        raised += 1
    if raised:
        log.info("console: %d open manual-review requests warned of their video's deletion", raised)
    return raised


def tell_videos_purged(db: Session, ctx: ServiceContext, at: dt.datetime) -> int:
    """Each open manual-review request past its hold whose video the purge took while it waited (in the last
    `TOLD_WITHIN`): its requester told through the features' notifiers (idempotent there); how many notices were
    queued now."""
    purged = exists().where(
        CertSession.beneficiary_id == AssistRequest.beneficiary_id,
        CertSession.media_purged_at >= AssistRequest.created_at,
        CertSession.media_purged_at >= at - TOLD_WITHIN,
    )
    query = select(AssistRequest).where(
        _manual_review_open(), AssistRequest.created_at < hold_cutoff(ctx.settings, at), purged
    )
    told = 0
    for req in db.scalars(query.order_by(AssistRequest.id)).all():
        video = video_of(db, req, recent_attempts(db, req.beneficiary_id))
        if video is None or not hold_ended(ctx.settings, req, video, at):
            continue  # the video the request page shows is still there (the person's newer reject)
        if video.media_purged_at is None or video.media_purged_at < max(req.created_at, at - TOLD_WITHIN):
            continue  # deleted before the request was filed, or told of long ago
        told += ctx.hooks.review_video_purged(db, req.id, req.openid)
    return told
