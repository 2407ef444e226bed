"""Gauges of the WeChat channel, read when /metrics is scraped: whether sending is paused, and why (the day's
template quota spent: quota.py; WeChat refusing the account's settings, or one host's address: config_guard.py;
`pension_cert_wechat_host_paused{host,errcode}` names those hosts), from the channel's token
store (the marks every process shares); and the notices that wait for staff (failed, or left in `sending` for a
lost answer or a process that died mid-send: notice_send.answer_unknown; the console page 微信通知,
staff_notices.py; one staff closed is neither), counted from the database.
install_wechat registers it on the context's hooks (``gauges``); the HTTP adapter's /metrics adds every registered
collector."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.features.wechat import config_guard, quota
from service.features.wechat.client import WeChatApi
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.notice_send import answer_unknown
from service.infra import clock

log = logging.getLogger(__name__)


class WeChatGauges(Collector):
    def __init__(self, ctx: ServiceContext, api: WeChatApi) -> None:
        self.ctx, self.api = ctx, api

    def collect(self) -> Iterator[Metric]:
        try:
            hosts = config_guard.refused_hosts(self.api.store, self.api.config)
            paused = {
                "quota_spent": quota.spent(self.api.store, clock.now_utc()),
                "configuration": config_guard.refused(self.api.store, self.api.config) is not None,
                "ip_whitelist": bool(hosts),
            }
        except Exception as exc:  # a scrape must still answer (the token store, e.g. Redis, out of reach)
            log.warning("wechat gauges: %s", exc)
        else:
            yield from _paused(paused, hosts)
        try:
            with self.ctx.db() as db:
                failed = db.scalar(
                    select(func.count(WeChatNotice.id)).where(WeChatNotice.status == NoticeStatus.FAILED)
                )
                lost = db.scalar(select(func.count(WeChatNotice.id)).where(answer_unknown(utcnow())))
        except Exception as exc:
            log.warning("wechat notices awaiting staff: %s", exc)
            return
        g = GaugeMetricFamily(
            "pension_cert_wechat_notices_for_staff",
            "WeChat notices staff settle by hand (console 微信通知): given up, or answer lost",
            labels=["state"],
        )
        g.add_metric(["failed"], float(failed or 0))
        g.add_metric(["answer_lost"], float(lost or 0))
        yield g


def _paused(paused: dict[str, bool], hosts: list[config_guard.Refused]) -> Iterator[Metric]:
    """Why sending is paused (every host: quota, configuration; some hosts: ip_whitelist), and which hosts are paused
    for their own address, with WeChat's code."""
    g = GaugeMetricFamily(
        "pension_cert_wechat_paused", "WeChat notices paused (1), by reason (docs/wechat.md)", labels=["reason"]
    )
    for reason, on in paused.items():
        g.add_metric([reason], float(on))
    yield g
    h = GaugeMetricFamily(
        "pension_cert_wechat_host_paused",
        "Hosts whose calls WeChat refuses for their address (IP whitelist): they send nothing, the others do",
        labels=["host", "errcode"],
    )
    for mark in hosts:
        h.add_metric([mark.host or "", str(mark.errcode)], 1.0)
    yield h
