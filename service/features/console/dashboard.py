"""The year at a glance: cycle states by region, automatic-accept rate, review backlog and its age, median
time to decision; as numbers, SVG charts (server-side, no JavaScript) and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification import regions
from service.certification.cycle import CycleRules, CycleState, cycle_state
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionDecision,
)
from service.features.console import scope
from service.features.console.auth import Staff
from service.features.console.models import ReviewDecision
from service.features.console.review_queue import open_case_filter, since

# "undated": no validity date (rows from before imports dated everyone): never suspended, shown so staff date them.
COLUMNS = ("certified", "due_soon", "overdue", "suspended", "deceased", "undated")
COLUMN_ZH = {
    "certified": "已认证",
    "due_soon": "即将到期",
    "overdue": "逾期",
    "suspended": "暂停发放",
    "deceased": "死亡",
    "undated": "无有效期",
}
COLORS = {
    "certified": "#2e7d32",
    "due_soon": "#f9a825",
    "overdue": "#c62828",
    "suspended": "#6a1b9a",
    "deceased": "#616161",
    "undated": "#90a4ae",
}


@dataclass
class Stats:
    today: dt.date
    by_region: dict[str, Counter[str]] = field(default_factory=dict)
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
    everybody)."""
    st = Stats(today=today)
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    roster = select(Beneficiary.region, Beneficiary.status, Beneficiary.valid_until).where(
        scope.region_filter(staff, Beneficiary.region)
    )
    for region, status, until in db.execute(roster):
        state = cycle_state(status, until, st.today, rules)
        # Suspended counts separately: overdue and already off the payroll.
        key = "suspended" if status == BeneficiaryStatus.SUSPENDED else state.value
        if state is CycleState.DECEASED:
            key = "deceased"
        by_region[region[:region_digits]][key] += 1
    st.by_region = dict(sorted(by_region.items()))

    reviewed = set(db.scalars(select(ReviewDecision.session_id)))
    start = now - dt.timedelta(days=window_days)
    durations: list[float] = []
    in_scope = scope.region_filter(staff, scope.SESSION_REGION)
    rows = db.execute(
        scope.join_session_people(
            select(
                CertSession.id,
                CertSession.channel,
                CertSession.decision,
                CertSession.result,
                CertSession.queued_at,
                CertSession.decided_at,
            )
        ).where(CertSession.decided_at >= start, in_scope)
    )
    for sid, channel, final, result, queued_at, decided_at in rows:
        decision = machine_decision(final, result)
        if channel == Channel.STAFF or decision is None:
            continue  # counter and evidence certifications are not machine decisions
        st.decided += 1
        st.decision_mix[decision] += 1
        if decision == SessionDecision.ACCEPT and sid not in reviewed:
            st.auto_accepted += 1
        if queued_at is not None and decided_at is not None and final != SessionDecision.REVIEW:
            durations.append((decided_at - queued_at).total_seconds() / 3600)
    st.median_decision_h = statistics.median(durations) if durations else None

    backlog = scope.join_session_people(select(CertSession)).where(open_case_filter(), in_scope)
    ages = [(now - since(s)).total_seconds() / 3600 for s in db.scalars(backlog)]
    st.backlog = len(ages)
    st.backlog_oldest_h = max(ages) if ages else None
    st.backlog_median_h = statistics.median(ages) if ages else None
    return st


def machine_decision(final: str | None, result: object) -> str | None:
    """What the machine decided on a session whose decision is now `final`: a staff decision keeps the machine's
    under ``result["review"]`` (service/certification/review.py), whichever way it was made (the console, or the
    operator API, which leaves no console ``ReviewDecision``): a settled review case stays a review, never an
    automatic accept."""
    review = result.get("review") if isinstance(result, dict) else None
    if isinstance(review, dict) and "machine_decision" in review:
        machine = review["machine_decision"]
        return machine if isinstance(machine, str) else None
    return final


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
    width = max(width, left + 400)
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
