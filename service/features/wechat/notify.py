"""WeChat notifications: the result of a certification, a staff decision on a review case, the due-soon
reminder, the overdue notice, the suspension notice and the notice of a revoked certification (revoked.py; what
each says: service/features/wechat/messages.py). The schedule's run (`run_notifications`) has three steps, each
in its own module: (1) notice_queue.py records every notice that is due, once (a unique row per kind + reference
+ openid); (2) notice_send.py claims and sends what is pending, in the bureau's daytime for reminders, within
WeChat's quotas (quota.py); (3) notice_message.py composes each message just before it is sent, and cancels a
notice that is no longer true. This module ties them together and registers the channel's `Notifier`; its
names are the ones the rest of the service and the tests import.

Reminders are correct by construction (issue 21): only to the openid that certified the person themselves
through the H5 pages, only for a real, lapsing or lapsed validity date, never while a session of that person is
in flight or awaits review; checked again just before sending, and delivered in the bureau's daytime only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import CertSession
from service.features.wechat.client import WeChatApi
from service.features.wechat.notice_message import compose, superseded
from service.features.wechat.notice_queue import (
    ASSIST,
    RESULT_WINDOW,
    STAFF_DECISION,
    busy,
    in_flight,
    queue_assist_closed,
    queue_notices,
    queue_staff_decision,
    queue_video_purged,
    reminder_kind,
)
from service.features.wechat.notice_send import DAYTIME, NoticeRun, deliver, reminder_hours
from service.features.wechat.relatives_told import kept_from_revocation
from service.features.wechat.requesters import account_requesters
from service.infra import clock
from service.infra.clock import local_today

__all__ = [
    "ASSIST",
    "DAYTIME",
    "RESULT_WINDOW",
    "STAFF_DECISION",
    "NoticeRun",
    "WeChatNotifier",
    "busy",
    "compose",
    "deliver",
    "in_flight",
    "install",
    "queue_assist_closed",
    "queue_notices",
    "queue_staff_decision",
    "reminder_hours",
    "reminder_kind",
    "run_notifications",
    "superseded",
]


class WeChatNotifier:
    """The WeChat channel's `Notifier` (service/certification/contract.py): staff decisions, closed requests and a
    manual review's video deleted after its hold are queued as notices here and delivered by the schedule
    (`run_notifications`). Queuing does not need the WeChat settings: a notice only exists for a person who used the
    H5 pages, and it waits for delivery."""

    def staff_decision(self, db: Session, s: CertSession) -> int:
        return queue_staff_decision(db, s)

    def request_closed(self, db: Session, request_id: int, openid: str, certified_by: str | None = None) -> int:
        return queue_assist_closed(db, request_id, openid, certified_by)

    def review_video_purged(self, db: Session, request_id: int, openid: str) -> int:
        return queue_video_purged(db, request_id, openid)


def install(ctx: ServiceContext) -> None:
    """Register the WeChat notifier on the core (called by service.features.install.install_features)."""
    ctx.hooks.notifiers["wechat"] = WeChatNotifier()
    ctx.hooks.requesters["wechat"] = account_requesters  # after the proxy's: an operator's session is theirs
    ctx.hooks.revocation_kept["wechat"] = kept_from_revocation  # no request reopened for whom a revocation is not


def run_notifications(
    ctx: ServiceContext, api: WeChatApi, today: dt.date | None = None, now: dt.datetime | None = None
) -> NoticeRun:
    """`now` (aware): the instant whose local hour decides whether reminders go out (default: the clock)."""
    at = now or clock.now_utc()
    day = today or local_today(ctx.settings, at)  # the bureau's date: reminders change day at local midnight
    with ctx.db() as db:
        queued = queue_notices(db, ctx, day)
    run = deliver(ctx, api, day, at)
    run.queued = queued
    return run
