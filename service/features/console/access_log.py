"""Who looked at this person, and who looked at many (docs/security.md, Part BE): read from the staff audit chain.

`person_entries`: the chain's entries that name one person, newest first, a page at a time: their external id as
entries addressed to the person write it (their page, a revocation, a counter certification, a citizen's request,
a refused look-up typed by number), their sessions' ids (case views, pictures, claims, decisions; a relative's
verification session claiming their number too), their alerts' ids (a resolution), and a refused look-up of their
row id. Each look-up uses ``console_audit.target``'s index (0019): its cost follows the person's own entries,
never the length of the log. Not counted: list pages (the queue, the alerts, the citizens' requests, a roster
search's results) name the people they showed inside a JSON list in their details, which no index reaches; the
page says so.

`heavy_viewers`: per member of staff, the distinct people whose page, case or request they opened since the
bureau's midnight, and their roster searches, for those over a daily limit (``views_alert_per_day``): a query
over today's entries only (``console_audit.at``'s index).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, distinct, false, func, not_, or_, select
from sqlalchemy.orm import Session

from service.certification.models import Beneficiary, CertSession, utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.models import ConsoleAlert, StaffUser
from service.features.console.scope import DENIED
from service.features.proxy.models import ProxyClaim
from service.infra.clock import HasTimeZone, local_day_start
from service.infra.security import mask_text

ACTION = "beneficiary.access_log"  # a supervisor read who looked at a person (target: the person's external id)
VOLUME_ACTION = "access.volume"  # a supervisor read the day's heavy viewers
PAGE = 100
# Actions whose target is never a person even when spelt like an external id (an account, an import's number, a
# file, a page path, a query's kind, a session's or an alert's id): left out of the external id's match.
NOT_A_PERSON = (
    "login",
    "logout",
    "user.",
    "roster.import",
    "roster.search",
    "evidence.import",
    "dashboard.",
    "audit.",
    "queue.view",
    "alerts.view",
    "assist.list",
    "access.",
    "alert.",
    "case.",
)
# Opening one person's records: their page, one of their cases (or its pictures), a citizen's request of theirs.
PERSON_VIEWS = ("beneficiary.view", "case.view", "case.image", "assist.view")
SEARCH = "roster.search"


@dataclass(frozen=True)
class Access:
    seq: int
    at: dt.datetime
    actor: str
    staff_name: str
    action: str


@dataclass(frozen=True)
class Viewer:
    actor: str
    staff_name: str
    people: int
    searches: int


def _naming(db: Session, b: Beneficiary) -> ColumnElement[bool]:
    """The entries that name `b`: the person-addressed ones by external id (masked as the chain stores targets),
    their cases', their alerts', and a refused look-up of their row id."""
    e = ConsoleAuditEntry
    sessions = list(db.scalars(select(CertSession.id).where(CertSession.beneficiary_id == b.id)))
    # A relative's own verification session has no beneficiary: it names the person when the number it claims is
    # theirs (one stored hash per person, proxy/sessions.py), its card and face the number holder's.
    sessions += db.scalars(select(ProxyClaim.session_id).where(ProxyClaim.id_hash == b.id_hash))
    alerts = [str(i) for i in db.scalars(select(ConsoleAlert.id).where(ConsoleAlert.beneficiary_id == b.id))]
    person = and_(e.target == mask_text(b.external_id)[:64], not_(or_(*(e.action.startswith(p) for p in NOT_A_PERSON))))
    cases = and_(e.target.in_(sessions), e.action.startswith("case.")) if sessions else false()
    alerted = and_(e.target.in_(alerts), e.action.startswith("alert.")) if alerts else false()
    denied = and_(e.target == str(b.id), e.action == DENIED, e.detail["kind"].as_string() == "beneficiary")
    return or_(person, cases, alerted, denied)


def _names(db: Session, actors: Sequence[str]) -> dict[str, str]:
    """Staff as the page names them: "显示名（username）"; an account since deleted (or "anonymous") as written."""
    usernames = [a.removeprefix("staff:") for a in actors if a.startswith("staff:")]
    rows = db.execute(select(StaffUser.username, StaffUser.display_name).where(StaffUser.username.in_(usernames)))
    return {f"staff:{u}": f"{d}（{u}）" for u, d in rows}


def person_entries(db: Session, b: Beneficiary, before: int = 0) -> list[Access]:
    """A page (PAGE) of the entries naming `b`, newest first, older than entry `before` (0: the newest)."""
    q = select(ConsoleAuditEntry).where(_naming(db, b)).order_by(ConsoleAuditEntry.seq.desc()).limit(PAGE)
    if before > 0:
        q = q.where(ConsoleAuditEntry.seq < before)
    entries = db.scalars(q).all()
    names = _names(db, list({e.actor for e in entries}))
    return [Access(e.seq, e.at, e.actor, names.get(e.actor, e.actor), e.action) for e in entries]


def heavy_viewers_today(
    db: Session, settings: HasTimeZone, limit: int, actors: Sequence[str] | None
) -> tuple[list[Viewer], dt.datetime]:
    """`heavy_viewers` since the bureau's midnight, and that midnight (naive UTC): the 查阅量 page lists them, the
    alerts page says how many there are (docs/security.md, Part BG)."""
    since = local_day_start(settings, utcnow())
    return heavy_viewers(db, since, limit, actors), since


def heavy_viewers(db: Session, since: dt.datetime, limit: int, actors: Sequence[str] | None = None) -> list[Viewer]:
    """Staff who since `since` (naive UTC: the bureau's midnight) opened more than `limit` distinct people's
    records, or searched the roster more than `limit` times; `actors`: only these accounts (None: all)."""
    e = ConsoleAuditEntry
    viewed = e.action.in_(PERSON_VIEWS)
    people = func.count(distinct(e.target)).filter(viewed)
    searches = func.count().filter(e.action == SEARCH)
    q = (
        select(e.actor, people, searches)
        .where(e.at >= since, or_(viewed, e.action == SEARCH))
        .group_by(e.actor)
        .having(or_(people > limit, searches > limit))
        .order_by(e.actor)
    )
    if actors is not None:
        q = q.where(e.actor.in_(actors))
    rows = db.execute(q).all()
    names = _names(db, [r[0] for r in rows])
    return [Viewer(a, names.get(a, a), int(p), int(s)) for a, p, s in rows]
