"""The one place that plugs every feature into the certification core (service/certification/contract.py).

Every composition root calls `install_features` on the context it built: the HTTP app (create_app), each worker
(PollingWorker, the Celery task's context) and the test fixtures. Processing refuses a context that skipped it.
"""

from __future__ import annotations

from functools import partial

from service.certification.context import ServiceContext
from service.features.console import account_kept, audit_chain
from service.features.console.assist import close_on_certification, erase_closed_contacts, open_cases
from service.features.console.assist_hold_end import hold_upkeep
from service.features.console.assist_video import videos_awaited
from service.features.console.identity_alerts import raise_identity_alert
from service.features.console.review_queue import held_in_console
from service.features.console.revoke_outside import lock_revoked_binding
from service.features.proxy import hooks as proxy
from service.features.wechat import notify as wechat


def install_features(ctx: ServiceContext) -> ServiceContext:
    """Register the proxy feature's decision hooks, the WeChat notifier and the console's settle guard,
    roster-change alert, revocation hook, open requests (the videos they wait on kept from the purge) and their
    closing by a certification on ``ctx.hooks``; idempotent (hooks are keyed by name), so a context passed through
    several roots is installed once in effect."""
    proxy.install(ctx)
    wechat.install(ctx)
    ctx.hooks.settle_guards["console"] = held_in_console
    ctx.hooks.identity_changes["console"] = raise_identity_alert  # a roster change of ID number: an alert
    ctx.hooks.upkeep["console"] = erase_closed_contacts  # daily: closed requests' phone numbers go after retention
    ctx.hooks.upkeep["console.review_hold"] = hold_upkeep  # daily, after the purge: a manual review's video ending
    ctx.hooks.upkeep["console.audit"] = audit_chain.daily_check  # daily, before the anchor: a cut log is an ALERT
    # A revocation from outside: a relative's binding locked, the requests it answered reopened.
    ctx.hooks.revocations["console"] = partial(lock_revoked_binding, ctx.hooks)
    ctx.hooks.open_cases["console"] = open_cases  # a home visit or review asked for in time: no suspension meanwhile
    ctx.hooks.certified["console"] = close_on_certification  # a certification answers the person's open requests
    ctx.hooks.kept_media["console"] = videos_awaited  # the purge keeps the video an open manual review waits on
    for kind in account_kept.KINDS:  # after a restore: a staff account's rights taken away again
        ctx.hooks.reapply[kind] = account_kept.redo
    ctx.hooks.mark_installed()
    return ctx
