"""The one refresher: every `wechat_schedule_s` the access token is renewed when it would expire before the next
run, and the notifications are queued and delivered. Celery beat runs `tick` in scale-out (task
``pension_cert.wechat_tick``); the embedded default runs it in a thread of the API process, the only process that
talks to WeChat there."""

from __future__ import annotations

import logging
import threading

from service.certification.context import ServiceContext
from service.features.wechat.errors import WeChatConfigRefusedError, WeChatError
from service.features.wechat.notify import run_notifications
from service.features.wechat.runtime import WeChatChannel

log = logging.getLogger(__name__)


def tick(ctx: ServiceContext, channel: WeChatChannel) -> dict[str, int]:
    try:
        # Renewed only when it would lapse before the next run: each fetch counts against WeChat's daily quota.
        channel.api.refresh(ahead_s=ctx.settings.wechat.schedule_s)
    except WeChatConfigRefusedError as exc:
        log.debug("wechat: token refresh refused: %s", exc)  # config_guard.py logs it, at most hourly
    except WeChatError as exc:
        # Delivery below refreshes on demand; a failed proactive refresh is only logged.
        log.warning("wechat: token refresh failed: %s", exc)
    run = run_notifications(ctx, channel.api)
    return {"queued": run.queued, "sent": run.sent, "failed": run.failed, "unsure": run.unsure}


class ScheduleThread:
    def __init__(self, ctx: ServiceContext, channel: WeChatChannel, interval_s: float) -> None:
        self.ctx, self.channel, self.interval_s = ctx, channel, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wechat-schedule", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                tick(self.ctx, self.channel)
            except Exception:
                log.exception("wechat: scheduled run failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def celery_tick(ctx: ServiceContext, channel: WeChatChannel | None) -> dict[str, int]:
    """Celery beat's task body. The channel (and its Redis token store) is the worker process's own, built once by
    its composition root (service/adapters/workers/tasks.py, `_worker_channel`); None when WeChat is off."""
    if channel is None:
        return {"queued": 0, "sent": 0, "failed": 0, "unsure": 0}
    return tick(ctx, channel)
