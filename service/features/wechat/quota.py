"""What WeChat's refusals of a template message mean for the run that sends them (notice_send.py, `_deliver_batch`).

In the campaign's peak (集中认证) more reminders are due on one day than WeChat's daily template-message quota
allows. Once it is spent (45009) every send that day is refused alike, so the run stops and the day is marked
spent in the token store (shared by every process, like the token): no further run asks WeChat again until
WeChat renews the quota at midnight Beijing time. Past a minute's frequency limit (45011) the
run stops and the next run goes on; so it does when WeChat cannot be reached (each send would wait out the timeout:
hours for a campaign's queue). None costs the notice an attempt: nothing was wrong with it. Only a send that made
no connection (`WeChatUnavailableError`) is put back: one whose answer was lost after the request was written (a
read timeout: `WeChatAnswerLostError`) may have been delivered, and is left as after a crash mid-send (notice_send.py:
never sent again); that run stops too, and the next goes on with the notices behind it. An account
that unfollowed (43004) or refuses the account's messages (43101), or an openid WeChat does not know (40003),
will not be reached by asking again: the notice is given up at once.

Reminders are also held to `WECHAT_REMINDERS_PER_DAY`, spread over the reminder hours (`day_share`): a campaign's
reminders all sent at 08:00 brought every pensioner reminded to certify the same morning. Under the cap the most
urgent go first (`urgency`): a suspension, then an overdue notice, then due soon, each the earliest date first.

The spent mark is WeChat's date (Beijing time), not the bureau's (`TIME_ZONE`: in Urumqi the bureau's date changes
two hours after WeChat has renewed the quota). While it holds, every notice waits (results, staff decisions,
revocations too).

Many "unknown openid" answers in a row (40003; 41001: no token) are not many people who unfollowed: the service is
configured with another account's AppID (its openids are not this account's). The run stops and puts them back
(`MISCONFIGURED_AFTER`): each was given up at once, and one run failed every pending notice for good. Only while
the run has sent nothing: once a send succeeded the AppID is right. Those put back are held (`HELD_KEY`, in the
token store): the next runs try the notices behind them first, then them; five stale accounts recorded first
blocked every later notice for good (each run stopped on the same five).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CursorResult, case, func, select, update

from service.certification.context import ServiceContext
from service.features.wechat.errors import WeChatError, WeChatUnavailableError
from service.features.wechat.models import NoticeStatus, WeChatNotice
from service.features.wechat.tokens import TokenStore
from service.infra import clock

log = logging.getLogger(__name__)

REMINDERS = ("due_soon", "overdue", "suspended")
# Local hours [from, to) in which reminders go out. Results, staff decisions and closed requests answer what the
# person (or staff) just did and go out at any hour.
REMINDER_HOURS = (8, 20)

DAY_SPENT = 45009  # reach max api daily quota limit
MINUTE_SPENT = 45011  # api minute-quota reach limit
# The run stops; the notice is put back untouched.
STOP_RUN = frozenset({DAY_SPENT, MINUTE_SPENT})
# This recipient cannot be reached: given up at once, never asked again.
UNREACHABLE = frozenset({40003, 43004, 43101})
# So many in a row in one run: the account's configuration, not the people (the run stops, the notices put back).
MISCONFIGURED = frozenset({40003, 41001})
MISCONFIGURED_AFTER = 5
SPENT_KEY = "wechat:quota_spent_on"  # WeChat's date (Beijing) on which the day's quota ran out
WECHAT_ZONE = ZoneInfo("Asia/Shanghai")  # WeChat renews its daily quotas at midnight Beijing time
KEEP_S = 2 * 86400  # the mark outlives its day, never longer
HELD_KEY = "wechat:held_for_configuration"  # notice ids put back by the last MISCONFIGURED stop: tried last


def stops_run(exc: WeChatError) -> bool:
    """Whether this refusal holds for every send now (quota, WeChat unreachable), not for this notice alone."""
    return exc.errcode in STOP_RUN or isinstance(exc, WeChatUnavailableError)


def _wechat_date(at: dt.datetime) -> str:
    return at.astimezone(WECHAT_ZONE).date().isoformat()


def spent(store: TokenStore, at: dt.datetime) -> bool:
    """Whether WeChat said on its day of `at` (aware; Beijing date) that the day's quota is spent."""
    mark = store.get(SPENT_KEY)
    return mark is not None and mark[0] == _wechat_date(at)


def mark_spent(store: TokenStore, at: dt.datetime) -> None:
    store.set(SPENT_KEY, _wechat_date(at), time.time() + KEEP_S)


def urgency() -> tuple[ColumnElement[Any], ...]:
    """The order in which capped reminders go out: suspended, overdue, due soon; then the date in the ref
    (`<beneficiary id>:<YYYY-MM-DD>`, notice_queue.reminder_ref: the last ten characters), then the record."""
    rank = case({"suspended": 0, "overdue": 1}, value=WeChatNotice.kind, else_=2)
    return rank, func.substr(WeChatNotice.ref, func.length(WeChatNotice.ref) - 9), WeChatNotice.id.expression


def day_share(per_day: int, local_now: dt.datetime, hours: tuple[int, int], schedule_s: float) -> int:
    """How many of the day's `per_day` reminders may have gone out by the next run, `schedule_s` from
    `local_now` (the bureau's time, within `hours`): the cap spread evenly over the reminder hours, so the
    pensioners reminded do not all come to certify in the first morning hour."""
    opened = local_now.replace(hour=hours[0], minute=0, second=0, microsecond=0)
    window_s = (hours[1] - hours[0]) * 3600
    elapsed = max(0.0, (local_now - opened).total_seconds()) + schedule_s
    return min(per_day, int(per_day * elapsed // window_s))


@dataclass
class Allowance:
    """The reminders a run may still send (None: no cap); other notices are never held by it."""

    left: int | None

    def allows(self, reminder: bool) -> bool:
        return not reminder or self.left is None or self.left > 0

    def spend(self, reminder: bool) -> None:
        if reminder and self.left is not None:
            self.left -= 1


def reminders_allowed(ctx: ServiceContext, at: dt.datetime, day: dt.date) -> Allowance:
    """The reminders this run may send: the day's `WECHAT_REMINDERS_PER_DAY` share so far, less those sent today
    (counted on the index of (kind, sent_at): every run asks)."""
    wx = ctx.settings.wechat
    if not wx.reminders_per_day:
        return Allowance(None)
    local = at.astimezone(ZoneInfo(ctx.settings.time_zone))
    share = day_share(wx.reminders_per_day, local, REMINDER_HOURS, wx.schedule_s)
    begin, end = clock.local_midnight(ctx.settings, day), clock.local_midnight(ctx.settings, day + dt.timedelta(days=1))
    with ctx.db() as db:
        sent = db.scalar(
            select(func.count(WeChatNotice.id)).where(
                WeChatNotice.kind.in_(REMINDERS), WeChatNotice.sent_at >= begin, WeChatNotice.sent_at < end
            )
        )
    return Allowance(max(0, share - int(sent or 0)))


def held_back(store: TokenStore) -> list[int]:
    """The notices put back by the last stop for a likely wrong AppID (`misconfigured`): each run tries them last."""
    mark = store.get(HELD_KEY)
    return [int(i) for i in mark[0].split(",") if i.isdigit()] if mark else []


@dataclass(frozen=True)
class Refused:
    """A refused send as the run recorded it on its notice: the claim (its time) and the status written."""

    notice_id: int
    claimed_at: dt.datetime
    status: str


def misconfigured(
    ctx: ServiceContext,
    store: TokenStore,
    streak: list[Refused | None],
    refused: Refused | None,
    exc: WeChatError,
    sent: int,
) -> int | None:
    """After a refused send (`refused`: as the run recorded it; None when the notice was no longer the run's,
    settled by staff or claimed again meanwhile: the refusal counts, the notice is not the run's to put back;
    `streak`: the run's unknown-openid refusals in a row so far, kept here; `sent`: the run's successful sends so
    far): when it makes `MISCONFIGURED_AFTER` in a row and nothing was sent, the account's configuration, not the
    people, is wrong: those notices are put back as they were (no attempt spent) and held (tried last by the next
    runs), one error says so, and the number put back that had been given up is returned (the run stops). None: the
    run goes on. A notice is put back only while it is as the run left it (its status and claim: `_put_back`)."""
    if exc.errcode not in MISCONFIGURED or sent:
        streak.clear()  # another refusal, or a send succeeded in this run: the AppID is right
        return None
    streak.append(refused)
    if len(streak) < MISCONFIGURED_AFTER:
        return None
    back = _put_back(ctx, streak)
    log.error(
        "wechat: %d sends in a row answered %s (unknown openid / no token): the run stops, nobody given up. Likely a"
        " configuration mistake: WECHAT_APP_ID / WECHAT_APP_SECRET of another official account than the one whose"
        " users (openids) the H5 pages recorded",
        len(streak),
        exc.errcode,
    )
    store.set(HELD_KEY, ",".join(str(r.notice_id) for r in back), time.time() + KEEP_S)
    streak.clear()
    return sum(r.status == NoticeStatus.FAILED for r in back)


def _put_back(ctx: ServiceContext, streak: list[Refused | None]) -> list[Refused]:
    """Each notice of `streak` back to `pending` with its attempt returned, by a conditional UPDATE: only while its
    status is the one the run wrote and its claim the run's (a notice staff closed, settled or sent again meanwhile,
    or another run claimed, is left alone). Those put back."""
    back = []
    with ctx.db() as db:
        for r in filter(None, streak):
            done: CursorResult[Any] = db.execute(  # type: ignore[assignment]
                update(WeChatNotice)
                .where(
                    WeChatNotice.id == r.notice_id,
                    WeChatNotice.status == r.status,
                    WeChatNotice.claimed_at == r.claimed_at,
                )
                .values(status=NoticeStatus.PENDING, attempts=WeChatNotice.attempts - 1)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount:
                back.append(r)
    return back
