"""Who looked at this person, and who looked at many (docs/security.md, Part BE): read from the staff audit chain.

`person_entries`: the chain's entries that name one person, newest first, a page at a time: their target as entries
addressed to the person write it (audit_chain.person_target: their page, a revocation, a counter certification, a
citizen's request; entries from before it carried the row id, and a refused look-up typed by number, by the bare mask of
an ID-number external id: listed, marked as possibly another's), their sessions' ids (case views, pictures, claims,
decisions; a relative's verification session claiming their number too), their alerts' ids (a resolution), and a refused
look-up of their row id. Each look-up uses ``console_audit.target``'s index (0019): its cost follows the person's own
entries, never the length of the log. The people a list page showed (the queue, the alerts, the citizens' requests, a
roster search's results) are named by `console_audit_shown` (0021, one row per person, `record_list`): that view's entry
is listed on each of them (docs/security.md, Part BK); list views from before that migration only in their entry's JSON
list (the page says so).

`heavy_viewers`: per member of staff, the distinct people whose page, case or request they opened since the
bureau's midnight, their roster searches, and the distinct people list pages showed them, for those over a daily
limit (``views_alert_per_day``; the people shown on lists against LISTED_FACTOR times it): queries over today's
entries only (``console_audit.at``'s index).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, distinct, false, func, insert, not_, or_, select
from sqlalchemy.orm import Session

from service.certification.models import Beneficiary, CertSession, utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.features.console.accounts import staff_names
from service.features.console.models import ConsoleAlert, ConsoleAuditShown
from service.features.console.scope import DENIED
from service.features.proxy.models import ProxyClaim
from service.infra.clock import HasTimeZone, local_day_start
from service.infra.security import mask_text

ACTION = "beneficiary.access_log"  # a supervisor read who looked at a person (target: audit_chain.person_target)
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
# A list shows many people at once (a 50-row queue page refreshed all day shows a reviewer the same few hundred):
# the distinct people shown on lists are measured against this many times the daily line of records opened.
LISTED_FACTOR = 5


@dataclass(frozen=True)
class Access:
    seq: int
    at: dt.datetime
    actor: str
    staff_name: str
    action: str
    by_mask: bool = False  # an entry from before targets carried the row id: it names everyone with this mask


@dataclass(frozen=True)
class Viewer:
    actor: str
    staff_name: str
    people: int
    searches: int
    listed: int = 0  # distinct people shown on list pages


def _naming(db: Session, b: Beneficiary) -> ColumnElement[bool]:
    """The entries that name `b` by target (``console_audit.target``'s index): the person-addressed ones by external
    id (masked as the chain stores targets), their cases', their alerts', and a refused look-up of their row id.
    Not the list views that showed them (`person_entries` reads those by their own index: OR'ed in here, they made
    PostgreSQL filter the whole log)."""
    e = ConsoleAuditEntry
    sessions = list(db.scalars(select(CertSession.id).where(CertSession.beneficiary_id == b.id)))
    # A relative's own verification session has no beneficiary: it names the person when the number it claims is
    # theirs (one stored hash per person, proxy/sessions.py), its card and face the number holder's.
    sessions += db.scalars(select(ProxyClaim.session_id).where(ProxyClaim.id_hash == b.id_hash))
    alerts = [str(i) for i in db.scalars(select(ConsoleAlert.id).where(ConsoleAlert.beneficiary_id == b.id))]
    # The person's own target (audit_chain.person_target), and, where their external id is an ID number, the bare
    # mask entries written before it carried the row id: shared with others of the same mask (marked: `by_mask`).
    targets = {audit_chain.person_target(b), _by_mask(b)} - {""}
    person = and_(e.target.in_(targets), not_(or_(*(e.action.startswith(p) for p in NOT_A_PERSON))))
    cases = and_(e.target.in_(sessions), e.action.startswith("case.")) if sessions else false()
    alerted = and_(e.target.in_(alerts), e.action.startswith("alert.")) if alerts else false()
    denied = and_(e.target == str(b.id), e.action == DENIED, e.detail["kind"].as_string() == "beneficiary")
    return or_(person, cases, alerted, denied)


def _by_mask(b: Beneficiary) -> str:
    """The bare mask older entries named `b` by when their external id is an ID number ("" when it is not)."""
    masked = mask_text(b.external_id)[:64]
    return masked if masked != audit_chain.person_target(b) else ""


def claimed_people(db: Session, session_ids: Sequence[str]) -> list[int]:
    """The people whose number the relatives' verification sessions `session_ids` claim (those a queue shows by
    their claim: they have no beneficiary), as `_naming` finds such a session on the person's 查阅记录."""
    if not session_ids:
        return []
    q = select(Beneficiary.id).join(ProxyClaim, ProxyClaim.id_hash == Beneficiary.id_hash)
    return list(db.scalars(q.where(ProxyClaim.session_id.in_(session_ids))))


def record_list(
    db: Session, actor: str, action: str, target: str, detail: dict[str, object], people: Iterable[int]
) -> int:
    """A list page's view: its chain entry (`detail` names whom it showed, the record) and one `console_audit_shown`
    row per person shown (their row ids), in one INSERT for the whole page; the entry's sequence number."""
    seq = audit_chain.record(db, actor, action, target, dict(detail))
    rows = [{"seq": seq, "beneficiary_id": i} for i in sorted(set(people))]
    if rows:
        db.execute(insert(ConsoleAuditShown), rows)
    return seq


def person_entries(db: Session, b: Beneficiary, before: int = 0) -> list[Access]:
    """A page (PAGE) of the entries naming `b`, newest first, older than entry `before` (0: the newest): the newest
    PAGE by target (`_naming`) and the newest PAGE of the list views that showed `b` (``console_audit_shown``'s
    index), merged. Two keyset reads, each following the person's own entries, never the log's length."""
    e, shown = ConsoleAuditEntry, ConsoleAuditShown
    named = select(e).where(_naming(db, b))
    listed = select(e).join(shown, shown.seq == e.seq).where(shown.beneficiary_id == b.id)
    found: dict[int, ConsoleAuditEntry] = {}
    for q in (named, listed):
        if before > 0:
            q = q.where(e.seq < before)
        found.update((x.seq, x) for x in db.scalars(q.order_by(e.seq.desc()).limit(PAGE)))
    entries = [found[seq] for seq in sorted(found, reverse=True)[:PAGE]]
    names, mask = staff_names(db, {e.actor for e in entries}), _by_mask(b)
    return [
        Access(e.seq, e.at, e.actor, names.get(e.actor, e.actor), e.action, bool(mask) and e.target == mask)
        for e in entries
    ]


def heavy_viewers_today(
    db: Session, settings: HasTimeZone, limit: int, actors: Sequence[str] | None
) -> tuple[list[Viewer], dt.datetime]:
    """`heavy_viewers` since the bureau's midnight, and that midnight (naive UTC): the 查阅量 page lists them, the
    alerts page says how many there are (docs/security.md, Part BG)."""
    since = local_day_start(settings, utcnow())
    return heavy_viewers(db, since, limit, actors), since


def heavy_viewers(db: Session, since: dt.datetime, limit: int, actors: Sequence[str] | None = None) -> list[Viewer]:
    """Staff who since `since` (naive UTC: the bureau's midnight) opened more than `limit` distinct people's
    records, searched the roster more than `limit` times, or were shown more than LISTED_FACTOR × `limit` distinct
    people on list pages; `actors`: only these accounts (None: all)."""
    e, shown = ConsoleAuditEntry, ConsoleAuditShown
    viewed = e.action.in_(PERSON_VIEWS)
    q = (
        select(e.actor, func.count(distinct(e.target)).filter(viewed), func.count().filter(e.action == SEARCH))
        .where(e.at >= since, or_(viewed, e.action == SEARCH))
        .group_by(e.actor)
    )
    listed_q = (
        select(e.actor, func.count(distinct(shown.beneficiary_id)))
        .join(shown, shown.seq == e.seq)
        .where(e.at >= since)
        .group_by(e.actor)
    )
    if actors is not None:
        q, listed_q = q.where(e.actor.in_(actors)), listed_q.where(e.actor.in_(actors))
    counts: dict[str, list[int]] = {a: [int(p), int(s), 0] for a, p, s in db.execute(q)}
    for a, n in db.execute(listed_q):
        counts.setdefault(a, [0, 0, 0])[2] = int(n)
    over = sorted(a for a, (p, s, n) in counts.items() if p > limit or s > limit or n > LISTED_FACTOR * limit)
    names = staff_names(db, over)
    return [Viewer(a, names.get(a, a), *counts[a]) for a in over]
