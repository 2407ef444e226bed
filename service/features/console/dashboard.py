"""The year at a glance: cycle states by region, automatic-accept rate, review backlog and its age, median
time to decision; as numbers, SVG charts (server-side, no JavaScript) and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

from sqlalchemy import ColumnElement, case, exists, func, literal, null, select
from sqlalchemy.orm import Session

from service.certification import regions
from service.certification.cycle import (
    CycleRules,
    CycleState,
    awaiting_first_sql,
    cycle_state,
    states_of,
    stopped_by_roster_sql,
    undecided_sql,
)
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionDecision,
)
from service.features.console import scope
from service.features.console.assist import open_cases, open_sql
from service.features.console.auth import Staff
from service.features.console.models import AssistRequest, ReviewDecision
from service.features.console.review_queue import open_case_filter, waiting_since

# "undated": no validity date (rows from before imports dated everyone): never suspended, shown so staff date them.
# "awaiting_first": dated by the first-import grace, never certified; "awaiting_decision": overdue by the date, a
# certification made in time still with the office (the run does not suspend them): service/certification/cycle.py.
# "stopped_by_roster": held active here, the roster says the benefit system stopped paying them (transferred out):
# out of the cycle (cycle.stopped_by_roster), so on no list and in none of the states the cycle chases.
COLUMNS = (
    "certified",
    "awaiting_first",
    "due_soon",
    "overdue",
    "awaiting_decision",
    "stopped_by_roster",
    "suspended",
    "deceased",
    "undated",
)
COLUMN_ZH = {
    "certified": "已认证",
    "awaiting_first": "待首次认证",
    "due_soon": "即将到期",
    "overdue": "逾期",
    "awaiting_decision": "认证待审核",
    "stopped_by_roster": "名册已停发",
    "suspended": "暂停发放",
    "deceased": "死亡",
    "undated": "无有效期",
}
COLORS = {
    "certified": "#2e7d32",
    "awaiting_first": "#81c784",
    "due_soon": "#f9a825",
    "overdue": "#c62828",
    "awaiting_decision": "#ef9a9a",
    "stopped_by_roster": "#bcaaa4",
    "suspended": "#6a1b9a",
    "deceased": "#616161",
    "undated": "#90a4ae",
}


@dataclass
class Stats:
    today: dt.date
    by_region: dict[str, Counter[str]] = field(default_factory=dict)
    region_digits: int = 4  # the level the figures are grouped at (never coarser than the account's scope)
    scope: tuple[str, ...] = ()  # the account's region prefixes (empty: the whole jurisdiction)
    decided: int = 0
    auto_accepted: int = 0
    decision_mix: Counter[str] = field(default_factory=Counter)
    backlog: int = 0
    backlog_oldest_h: float | None = None
    backlog_median_h: float | None = None
    median_decision_h: float | None = None

    @property
    def auto_accept_rate(self) -> float | None:
        return self.auto_accepted / self.decided if self.decided else None

    @property
    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for c in self.by_region.values():
            total.update(c)
        return total


def compute(
    db: Session,
    rules: CycleRules,
    now: dt.datetime,
    region_digits: int = 4,
    window_days: int = 365,
    *,
    today: dt.date,
    staff: Staff | None = None,
) -> Stats:
    """`region_digits`: 2 province, 4 city, 6 district. Sessions count when decided within the window. `today`:
    the bureau's date (service/infra/clock.local_today) the cycle states are taken on, required (`now`'s UTC date
    is the day before from 00:00 to 08:00 in Beijing). Only the people of `staff`'s region scope count (None:
    everybody), grouped never coarser than that scope (`scoped_level`)."""
    prefixes = tuple(staff.scope) if staff is not None else ()
    st = Stats(today=today, region_digits=scoped_level(region_digits, prefixes), scope=prefixes)
    st.by_region = _by_region(db, rules, today, st.region_digits, staff)
    start = now - dt.timedelta(days=window_days)
    in_scope = scope.region_filter(staff, scope.SESSION_REGION)
    machine = _machine_sql(db)
    # Machine decisions only: counter and evidence certifications are not (the staff channel); nor a failed job
    # staff settled (no machine decision).
    decided = scope.join_session_people(select()).where(
        CertSession.decided_at >= start, in_scope, CertSession.channel != Channel.STAFF, machine.is_not(None)
    )
    reviewed = exists().where(ReviewDecision.session_id == CertSession.id)
    for decision, was_reviewed, count in db.execute(
        decided.add_columns(machine, reviewed, func.count()).group_by(machine, reviewed)
    ):
        st.decided += count
        st.decision_mix[decision] += count
        if decision == SessionDecision.ACCEPT and not was_reviewed:
            st.auto_accepted += count
    times = decided.add_columns(_hours_sql(db)).where(
        CertSession.queued_at.is_not(None), CertSession.decision.is_distinct_from(SessionDecision.REVIEW)
    )
    durations = [float(hours) for (hours,) in db.execute(times)]
    st.median_decision_h = statistics.median(durations) if durations else None

    backlog = scope.join_session_people(select(waiting_since())).where(open_case_filter(), in_scope)
    ages = [(now - since).total_seconds() / 3600 for since in db.scalars(backlog)]
    st.backlog = len(ages)
    st.backlog_oldest_h = max(ages) if ages else None
    st.backlog_median_h = statistics.median(ages) if ages else None
    return st


def scoped_level(region_digits: int, prefixes: tuple[str, ...]) -> int:
    """The level to group a scoped account's figures at: the one asked for, but never coarser than a prefix of its
    scope (one not inside another of its prefixes). A district officer's figures at the city level were one row
    named 湖北省武汉市 holding only 武昌区's people, sent up as the city's."""
    own = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    return max([region_digits, *(len(p) for p in own)])


def _by_region(
    db: Session, rules: CycleRules, today: dt.date, region_digits: int, staff: Staff | None
) -> dict[str, Counter[str]]:
    """Cycle states by region: counted by the database per region, status, date and whether the date is a grace's
    (a few thousand groups), not read one row per person; then the overdue whose certification made in time is
    still being decided (`_awaiting_decision`) moved to their own column. Those the roster stopped
    (cycle.stopped_by_roster, the one rule of the lists, the reminders and the run) count in their own column:
    before, they were counted due soon or overdue, figures the overdue list could not show."""
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    area = func.substr(Beneficiary.region, 1, region_digits)
    pending, stopped = awaiting_first_sql(), stopped_by_roster_sql()
    roster = (
        select(area, Beneficiary.status, Beneficiary.valid_until, pending, stopped, func.count())
        .where(scope.region_filter(staff, Beneficiary.region))
        .group_by(area, Beneficiary.status, Beneficiary.valid_until, pending, stopped)
    )
    for region, status, until, first, halted, count in db.execute(roster):
        state = cycle_state(status, until, today, rules, first_pending=bool(first))
        # Suspended counts separately: overdue and already off the payroll.
        key = "suspended" if status == BeneficiaryStatus.SUSPENDED else state.value
        if state is CycleState.DECEASED:
            key = "deceased"
        elif halted:
            key = CycleState.STOPPED_BY_ROSTER.value  # as cycle.state_of names them on the person page and the API
        by_region[region][key] += count
    for region, count in _awaiting_decision(db, rules, today, area, staff).items():
        by_region[region]["overdue"] -= count
        by_region[region]["awaiting_decision"] += count
    return dict(sorted(by_region.items()))


def _awaiting_decision(
    db: Session, rules: CycleRules, today: dt.date, area: ColumnElement[str], staff: Staff | None
) -> Counter[str]:
    """By region, the active overdue people whose certification made in time is still being decided (the cycle's
    one rule, `states_of`): only those lapsed within `due_soon_days` with an undecided session or an open request
    for a home visit or a manual review can be (cycle.being_decided; the requests are this feature's own, the
    source install_features registers), so only they are read (a campaign's overdue would be thousands of rows)."""
    lapsed = (Beneficiary.valid_until < today) & (Beneficiary.valid_until >= today - dt.timedelta(rules.due_soon_days))
    undecided = exists().where(CertSession.beneficiary_id == Beneficiary.id, undecided_sql()) | exists().where(
        AssistRequest.beneficiary_id == Beneficiary.id, open_sql()
    )
    rows = db.execute(
        select(area, Beneficiary).where(
            Beneficiary.status == BeneficiaryStatus.ACTIVE,
            ~stopped_by_roster_sql(),  # counted in their own column, not overdue
            lapsed,
            undecided,
            scope.region_filter(staff, Beneficiary.region),
        )
    ).all()
    states = states_of(db, [b for _, b in rows], today, rules, cases=(open_cases,))
    return Counter(region for region, b in rows if states[b.id] is CycleState.AWAITING_DECISION)


def _machine_sql(db: Session) -> ColumnElement[str | None]:
    """What the machine decided on a session, whatever its decision is now: a staff decision keeps the machine's
    under ``result["review"]`` (service/certification/review.py), whichever way it was made (the console, or the
    operator API, which leaves no console ``ReviewDecision``): a settled review case stays a review, never an
    automatic accept. In SQL: the database reads that one field of each decision record, instead of every record
    of the year travelling to the service (about 1.5 KB each) per page view and CSV export."""
    kind: ColumnElement[str | None]
    value: ColumnElement[str | None]
    if db.get_bind().dialect.name == "postgresql":
        review = CertSession.result.op("->")(literal("review"))
        kind = func.json_typeof(review.op("->")(literal("machine_decision")))
        value, string = review.op("->>")(literal("machine_decision")), "string"
    else:
        path = literal("$.review.machine_decision")
        kind, value = func.json_type(CertSession.result, path), func.json_extract(CertSession.result, path)
        string = "text"
    # No decision record of staff: the machine's is the session's. One whose machine decision is no text: none.
    return case((kind.is_(None), CertSession.decision), (kind == string, value), else_=null())


def _hours_sql(db: Session) -> ColumnElement[float | Decimal]:
    """Hours from queueing to decision, computed by the database (the service parsed two timestamps a session)."""
    if db.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", CertSession.decided_at - CertSession.queued_at) / 3600
    return (func.julianday(CertSession.decided_at) - func.julianday(CertSession.queued_at)) * 24


def to_csv(st: Stats) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    # The code stays for other systems to join on; the name is what a person reading the export needs.
    w.writerow(["region", "region_name", *COLUMNS, "total"])
    for region, c in st.by_region.items():
        w.writerow([region, regions.label(region), *(c[k] for k in COLUMNS), sum(c.values())])
    t = st.totals
    w.writerow(["total", "合计", *(t[k] for k in COLUMNS), sum(t.values())])
    w.writerow([])
    rate = st.auto_accept_rate
    for name, value in (
        ("as_of", st.today.isoformat()),
        # Whose figures these are: a scoped account's file is its part of the rows' regions, not their whole.
        ("scope", scope.describe(st.scope)),
        ("scope_codes", ";".join(st.scope)),
        ("region_level", st.region_digits),
        ("machine_decisions", st.decided),
        ("auto_accept_rate", "" if rate is None else f"{rate:.4f}"),
        ("review_backlog", st.backlog),
        ("backlog_oldest_hours", _num(st.backlog_oldest_h)),
        ("backlog_median_hours", _num(st.backlog_median_h)),
        ("median_hours_to_decision", _num(st.median_decision_h)),
    ):
        w.writerow([name, value])
    return buf.getvalue()


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def regions_svg(st: Stats, width: int = 640) -> str:
    """Horizontal stacked bars, one per region (named as on the page: service/certification/regions.py), with a
    legend."""
    rows = [(regions.label(code), c) for code, c in list(st.by_region.items())[:40]]
    # Label column as wide as the longest name (12-px font: about 12 px a character, CJK or not, rounded up).
    bar_h, gap, top = 18, 6, 30
    left = min(max((12 * len(name) + 10 for name, _ in rows), default=70), 260)
    width = max(width, left + 400, 90 * len(COLUMNS))  # the legend: 90 px a column
    height = top + len(rows) * (bar_h + gap) + 20
    biggest = max((sum(c.values()) for _, c in rows), default=1) or 1
    scale = (width - left - 60) / biggest
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="各地区认证状态" font-family="sans-serif" font-size="12">'
    ]
    x = 4
    for k in COLUMNS:
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{COLORS[k]}"/>')
        parts.append(f'<text x="{x + 14}" y="15">{COLUMN_ZH[k]}</text>')
        x += 90
    for i, (region, c) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="4" y="{y + 13}">{escape(region)}</text>')
        xf = float(left)
        for k in COLUMNS:
            w = c[k] * scale
            if w > 0:
                parts.append(
                    f'<rect x="{xf:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLORS[k]}">'
                    f"<title>{escape(region)} {COLUMN_ZH[k]} {c[k]}</title></rect>"
                )
                xf += w
        parts.append(f'<text x="{xf + 4:.1f}" y="{y + 13}">{sum(c.values())}</text>')
    parts.append("</svg>")
    return "".join(parts)


def mix_svg(st: Stats, width: int = 320) -> str:
    """Machine decisions by outcome (bars)."""
    labels = {"accept": "通过", "review": "人工审核", "reject": "不通过", "retry": "重新认证"}
    items = [(labels.get(k, k), v) for k, v in sorted(st.decision_mix.items())]
    height, top, bar_w = 180, 20, 50
    biggest = max((v for _, v in items), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img" '
        f'aria-label="机器结论分布" font-family="sans-serif" font-size="12">'
    ]
    for i, (label, v) in enumerate(items):
        h = (height - top) * v / biggest
        x = 20 + i * (bar_w + 20)
        parts.append(f'<rect x="{x}" y="{height - h:.1f}" width="{bar_w}" height="{h:.1f}" fill="#1d4f91"/>')
        parts.append(f'<text x="{x}" y="{height - h - 4:.1f}">{v}</text>')
        parts.append(f'<text x="{x}" y="{height + 16}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
