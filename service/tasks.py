"""Celery wiring for scale-out (PostgreSQL + Redis + any number of `celery -A service.tasks worker`).

Messages carry only the session id (JSON); the task re-reads the session, claims it with the same database
lease as the polling worker, and is idempotent. ``acks_late`` + ``reject_on_worker_lost`` redeliver a task
whose worker died; the database lease covers the rest (a job whose message was lost is found by the sweeper).
Retries only on transient errors; models load lazily once per worker process.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery  # type: ignore[import-untyped]
from sqlalchemy.exc import OperationalError

from service.config import Settings, get_settings
from service.context import ServiceContext
from service.processing import claim, process, worker_name
from service.storage import StorageError

log = logging.getLogger(__name__)


def make_celery(settings: Settings) -> Any:
    app = Celery("pension_cert", broker=settings.broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.job_lease_s * 2},
        beat_schedule={
            "sweep": {"task": "pension_cert.sweep", "schedule": float(settings.sweep_interval_s)},
            "wechat": {"task": "pension_cert.wechat_tick", "schedule": settings.wechat_schedule_s},
        },
    )
    return app


celery_app = make_celery(get_settings())


@lru_cache(maxsize=1)
def _worker_ctx() -> ServiceContext:
    return ServiceContext(get_settings(), create_schema=False)


@celery_app.task(  # type: ignore[untyped-decorator]
    name="pension_cert.process_session",
    bind=True,
    autoretry_for=(OperationalError, StorageError),
    retry_backoff=True,
    max_retries=5,
)
def process_session(self: Any, session_id: str) -> str:
    from service.worker import shared_certifier

    ctx = _worker_ctx()
    name = f"celery:{worker_name()}"
    if claim(ctx, session_id, name) is None:
        return "not-claimable"  # already done, or owned by a live worker
    process(ctx, shared_certifier(ctx.settings.model_pack), session_id, name)
    return "done"


@celery_app.task(name="pension_cert.sweep")  # type: ignore[untyped-decorator]
def sweep() -> int:
    """Re-enqueue sessions whose message was lost or whose worker died (expired lease)."""
    from sqlalchemy import select

    from service.db.models import CertSession
    from service.processing import claimable

    ctx = _worker_ctx()
    with ctx.db() as db:
        ids = list(db.scalars(select(CertSession.id).where(claimable()).limit(500)))
    for sid in ids:
        process_session.delay(sid)
    return len(ids)


@celery_app.task(name="pension_cert.wechat_tick")  # type: ignore[untyped-decorator]
def wechat_tick() -> dict[str, int]:
    """The one WeChat refresher of a scale-out deployment: token refresh and notifications (service.wechat)."""
    from service.wechat.schedule import celery_tick

    return celery_tick(_worker_ctx())
