"""Beneficiary lookups, status lists (due soon / overdue / suspended) and their CSV exports.

The payment system de-duplicates the event exports on `event_id` (the row's id). A database restored from a dump
numbers new events from the dump's highest id again, reusing ids the payment system already holds: a suspension
or resumption it would drop as a duplicate. So the highest id exported is recorded in the media store (which a
restore of the database does not roll back), and recording the restore moves the numbering past it
(`advance_event_ids`; docs/operations.md, "Restoring from a backup")."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from service.certification.audit import audit, person_ref
from service.certification.cycle import CycleRules, CycleState, cycle_state, states_of, stopped_by_roster_sql
from service.certification.deaths import DEATH_WITHDRAWN_EVENT, DECEASED_EVENT
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, BeneficiaryStatus, CycleEvent, utcnow
from service.certification.regions import region_name
from service.certification.roster_file import spreadsheet_safe
from service.infra.clock import HasTimeZone, local_midnight
from service.infra.storage import MediaStorage

if TYPE_CHECKING:
    from service.certification.contract import OpenCaseSource

# The most records one audit entry of a list read names (`audit_shown`): a whole list (everyone overdue in a
# jurisdiction, tens of thousands) is named over several entries, each the size of a console page's.
SHOWN_PER_ENTRY = 500

LISTS = ("due_soon", "overdue", "awaiting_decision", "suspended")
# The state by date alone (cycle.cycle_state) of each list's people before the sessions are read (cycle.states_of).
_BY_DATE = {
    CycleState.DUE_SOON: CycleState.DUE_SOON,
    CycleState.OVERDUE: CycleState.OVERDUE,
    CycleState.AWAITING_DECISION: CycleState.OVERDUE,
}
EXPORT_COLUMNS = (
    "external_id",
    "id_masked",
    "name",
    "region",
    "region_name",
    "benefit_types",
    "status",
    "cycle_state",
    "valid_until",
)


def views(
    db: Session, people: list[Beneficiary], today: dt.date, rules: CycleRules, *, cases: Sequence[OpenCaseSource]
) -> list[dict[str, Any]]:
    """The API's view of each of `people` on `today`, their cycle states by the one rule (cycle.states_of: a grace
    date is `awaiting_first`, a case in time still with the office `awaiting_decision`; `cases`: the features' open
    requests, ctx.hooks.case_sources())."""
    states = states_of(db, people, today, rules, cases=cases)
    return [view(b, states[b.id]) for b in people]


def view(b: Beneficiary, state: CycleState) -> dict[str, Any]:
    return {
        "external_id": b.external_id,
        "id_masked": b.id_masked,
        "name": b.name,
        "region": b.region,
        # The division's full name ("湖北省武汉市武昌区"), as the console shows it; None when the code is not one.
        "region_name": region_name(b.region),
        "benefit_types": b.benefit_types,
        "status": b.status,
        "cycle_state": state.value,
        "valid_until": b.valid_until.isoformat() if b.valid_until else None,
        "last_certified_on": b.last_certified_on.isoformat() if b.last_certified_on else None,
        "suspended_on": b.suspended_on.isoformat() if b.suspended_on else None,
        "template_enrolled": b.template is not None,
    }


def status_list(
    db: Session, which: str, today: dt.date, rules: CycleRules, *, cases: Sequence[OpenCaseSource]
) -> list[Beneficiary]:
    """The people of list `which` (LISTS) on `today`. `overdue` leaves out those whose certification made in time
    is still being decided, or whose request for a home visit or a manual review filed in time is open (`cases`,
    ctx.hooks.case_sources()): they are `awaiting_decision` (the daily run does not suspend them either)."""
    # Never certified first, then the longest lapsed: the same order on SQLite and PostgreSQL.
    q = select(Beneficiary).order_by(Beneficiary.valid_until.asc().nulls_first(), Beneficiary.external_id)
    if which == "suspended":
        return list(db.scalars(q.where(Beneficiary.status == BeneficiaryStatus.SUSPENDED)))
    # Not one the benefit system stopped paying here (cycle.stopped_by_roster): nobody chases them.
    active = list(db.scalars(q.where(Beneficiary.status == BeneficiaryStatus.ACTIVE, ~stopped_by_roster_sql())))
    want = CycleState(which)
    dated = [b for b in active if cycle_state(b.status, b.valid_until, today, rules) is _BY_DATE[want]]
    states = states_of(db, dated, today, rules, cases=cases)
    return [b for b in dated if states[b.id] is want]


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """UTF-8 without a BOM, values as stored: the payment system's input, not a spreadsheet (docs/service.md);
    only a text cell that would start a formula in Excel gets its text marker (roster_file.spreadsheet_safe)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        value = ";".join(value)
    return spreadsheet_safe(value) if isinstance(value, str) else ("" if value is None else value)


def events(db: Session, kinds: tuple[str, ...], since: dt.date | None, tz: HasTimeZone) -> list[dict[str, Any]]:
    """The events of `kinds` for the payment system (which computes any back-payment). `since`: those dated
    on or after that day, and those recorded since the bureau's day began (a resumption by a home visit entered
    late is dated by the visit, before the payment system's last fetch: by its date alone no file had it). A row
    may therefore come in more than one file: its `event_id` is the same in each (docs/service.md)."""
    if since is not None and not FIRST_SINCE <= since <= LAST_SINCE:  # 0001-01-01 overflowed local_midnight: a 500
        raise ServiceError("INVALID_DATE", f"since must be between {FIRST_SINCE} and {LAST_SINCE}")
    q = select(CycleEvent, Beneficiary).join(Beneficiary, Beneficiary.id == CycleEvent.beneficiary_id)
    q = q.where(CycleEvent.kind.in_(kinds)).order_by(CycleEvent.on_date, CycleEvent.id)
    if since is not None:
        q = q.where((CycleEvent.on_date >= since) | (CycleEvent.created_at >= local_midnight(tz, since)))
    return [
        {
            "external_id": b.external_id,
            "id_masked": b.id_masked,
            "name": b.name,
            "kind": e.kind,
            "on_date": e.on_date.isoformat(),
            "suspended_since": e.suspended_since.isoformat() if e.suspended_since else "",
            "event_id": e.id,
            "person": person_ref(b.external_id, b.id),  # for the export's audit entry (audit_shown), not a column
        }
        for e, b in db.execute(q).all()
    ]


# The payment files and the event kinds each carries. A death stops the payment as a suspension does, so it is in
# the file the payment system already acts on to stop one (kind `deceased`, dated by the date of death: deaths.py),
# and so is its withdrawal (kind `death_withdrawn`: a death recorded by mistake), after it in `event_id` order.
EXPORTS: dict[str, tuple[str, ...]] = {
    "suspensions": ("suspended", DECEASED_EVENT, DEATH_WITHDRAWN_EVENT),
    "resumptions": ("resumed",),
}
# event_id last: added after the others, so that a reader by column position still finds them where they were.
EVENT_COLUMNS = ("external_id", "id_masked", "name", "kind", "on_date", "suspended_since", "event_id")
# The `since` a payment file may be asked for: the bureau's midnight of any such day is a representable instant.
FIRST_SINCE, LAST_SINCE = dt.date(1900, 1, 1), dt.date(9999, 12, 30)


def audit_shown(db: Session, actor: str, action: str, target: str, detail: dict[str, Any], shown: list[str]) -> None:
    """A status list or an export read through the API, with whom it showed, as the console's lists name theirs:
    every record once, in the order shown, as audit.person_ref names it (`shown`: the callers hold the rows: an
    external id that is an ID number masked, with the row id, as the console names people), over entries of at most
    SHOWN_PER_ENTRY (`part` of `parts` when there is more than one; an empty list is one entry). Committed now, like
    every read (audit.audit_read)."""
    named = list(dict.fromkeys(shown))
    chunks = [named[i : i + SHOWN_PER_ENTRY] for i in range(0, len(named), SHOWN_PER_ENTRY)] or [[]]
    for part, chunk in enumerate(chunks, 1):
        of = {"part": part, "parts": len(chunks)} if len(chunks) > 1 else {}
        audit(db, actor, action, target, detail | of | {"shown": chunk})
    db.commit()


# The highest event_id a payment file has carried, and when it was first exported (sealed like every object): one
# object per raise under EXPORTED_PREFIX, never overwritten, the highest counting (two exports at once cannot set
# the mark back); EXPORTED_KEY is the single object the first version overwrote, still read where it exists.
EXPORTED_KEY = "exports/event-id-high"
EXPORTED_PREFIX = EXPORTED_KEY + "/"
EXPORT_CLOCK_SKEW = dt.timedelta(minutes=5)  # see export_events


def note_exported(storage: MediaStorage, rows: list[dict[str, Any]], at: dt.datetime | None = None) -> None:
    """Record the highest `event_id` of an export's `rows` unless a higher one is recorded (read before the file is
    handed out: a store that cannot take it fails the export, as an unrecorded id could be reused unseen). An
    empty export records nothing and reads nothing (it answers during a store outage)."""
    if not rows:
        return
    top = max(int(r["event_id"]) for r in rows)
    key = f"{EXPORTED_PREFIX}{top:020d}"
    if top > exported_high(storage)[0] and not storage.exists(key):
        when = (at or utcnow()).isoformat()
        storage.put(key, json.dumps({"id": top, "at": when}).encode())


def exported_high(storage: MediaStorage) -> tuple[int, dt.datetime | None]:
    """The highest event id exported so far, and when (0, None: none recorded). StorageError when the highest
    mark was forged or edited (its key is sealed with it: a renamed one does not open either)."""
    listed = ((o.key[len(EXPORTED_PREFIX) :], o.key) for o in storage.list(EXPORTED_PREFIX))
    marks = {int(tail): key for tail, key in listed if tail.isdigit()}
    keys = ([marks[max(marks)]] if marks else []) + ([EXPORTED_KEY] if storage.exists(EXPORTED_KEY) else [])
    found = [json.loads(storage.get(key)) for key in keys]
    high = max(found, key=lambda raw: int(raw["id"]), default=None)
    return (0, None) if high is None else (int(high["id"]), dt.datetime.fromisoformat(high["at"]))


def reused_event_ids(db: Session, storage: MediaStorage, skew: dt.timedelta = dt.timedelta()) -> list[int]:
    """Events recorded after the highest exported id was (by more than `skew`: the clocks of the hosts that record
    events and export them), numbered at or below it: ids the payment system may hold for other events (a restore
    reopened before it was recorded)."""
    high, at = exported_high(storage)
    if at is None:
        return []
    after = CycleEvent.created_at > at + skew
    q = select(CycleEvent.id).where(CycleEvent.id <= high, after).order_by(CycleEvent.id)
    return list(db.scalars(q))


def export_events(
    db: Session, storage: MediaStorage, export: str, since: dt.date | None, tz: HasTimeZone
) -> list[dict[str, Any]]:
    """A payment file's rows (`events`), its highest id recorded (`note_exported`). Refused (EVENT_IDS_REUSED) while
    any event reuses an exported id: a restore recorded before the service reopened finds none yet, and SQLite
    cannot number past the ids the dump lacks, so the first event after it takes one the payment system holds,
    which it would drop as a duplicate. An empty file carries no id: it answers (and reads no store). An event
    recorded within EXPORT_CLOCK_SKEW of the export that set the mark is taken for one the export saw (a daily run
    on a host whose clock is ahead): the restore, between the two, takes longer."""
    rows = events(db, EXPORTS[export], since, tz)
    reused = reused_event_ids(db, storage, EXPORT_CLOCK_SKEW) if rows else []
    if reused:
        raise ServiceError(
            "EVENT_IDS_REUSED",
            f"{len(reused)} events reuse ids the payment system may hold (the first: {reused[:20]}): renumber them "
            "before the next export (docs/operations.md, 'Restoring from a backup')",
            {"event_ids": reused[:20]},
        )
    note_exported(storage, rows)  # the ids a database restore must not hand out again
    return rows


def advance_event_ids(db: Session, past: int) -> int | None:
    """Number the next events above `past` (and above every id in use); the next id. PostgreSQL only: SQLite
    numbers from its highest row, and cannot be moved past ids it no longer has (None)."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    top = db.scalar(select(func.max(CycleEvent.id))) or 0
    seq = "SELECT pg_get_serial_sequence('cycle_events', 'id')"
    nxt = db.scalar(
        text(f"SELECT setval(({seq}), GREATEST(nextval(({seq})), :floor), false)"), {"floor": max(top, past) + 1}
    )
    return int(nxt) if nxt is not None else None
