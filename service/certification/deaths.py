"""A death recorded here, and the row the payment system reads for it: the one home of "this person is dead".

Every way a death reaches the service goes through `record_death`: a supervisor's registration in the console
(service/features/console/alt_cert.py, `mark_deceased`: dated by the date of death) and a roster row whose status
is `deceased` for a record held as living (service/certification/roster_upsert.py: the file carries no date of
death, so it is dated by the bureau's day of the import). Before, the record only became `deceased`: the person
left the status lists and the daily run (both take the living only), so nothing the payment system reads ever
stopped their pension, while an unrecorded dead person who failed to certify was suspended in time.

The row is a `CycleEvent` of kind `deceased`, exported with the suspensions (`exports/suspensions.csv`, kind
`deceased`, docs/service.md): dated by the date of death, so the payment system stops and recovers what was paid
after it. One per date of death: the same registration again writes nothing, a corrected date writes a new row
(its own `event_id`) with the new date, and the person's latest `deceased` row is the one in force.

A death recorded by mistake (the wrong one of two people of the same name, a roster row on the wrong record) is
withdrawn by `withdraw_death`, the one way back (a supervisor in the console, alt_cert.withdraw_deceased): the
record returns to the status it had (suspended if it was suspended when it died, else active) and the payment
system gets a row of kind `death_withdrawn` in the same file, dated by the death it withdraws: the stop and the
recovery are void. Before, nothing reversed a death, and the stop row claimed back a living person's pension.
A withdrawal stands against the roster's same statement (`roster_death_withdrawn`): a roster row still saying
`deceased`, as at its last import, carries no date of death, so it cannot be told from the death withdrawn; a
`deceased` after the roster said living (or its first) is a new death and applies.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.models import Beneficiary, BeneficiaryStatus, Certification, CertSession, CycleEvent
from service.infra.clock import HasTimeZone, local_date

DECEASED_EVENT = "deceased"
DEATH_WITHDRAWN_EVENT = "death_withdrawn"  # the person's `deceased` row in force is void (recorded by mistake)
LIVING = (BeneficiaryStatus.ACTIVE, BeneficiaryStatus.SUSPENDED)


def record_death(db: Session, b: Beneficiary, date_of_death: dt.date | None, today: dt.date) -> CycleEvent | None:
    """Record `b` as deceased, and the payment system's row for it: the event written, or None when none was.

    Call with `b`'s row locked (the lock order of service/certification/lock_order.py). `date_of_death`: None when
    the source gives none (a roster row): the row is then dated `today` (the bureau's date), and a record already
    deceased gets none (the death is on record; nothing new is known). A person the roster created as deceased was
    never paid here: no row, unless staff then register a date of death (one row more tells the payment system
    nothing false). A suspended person's row carries the suspension's start (`suspended_since`)."""
    living = b.status in LIVING
    latest = _latest(db, b)
    b.status = BeneficiaryStatus.DECEASED
    if date_of_death is None and not living:
        return None
    on_date = date_of_death or today
    if latest is not None and latest.kind == DECEASED_EVENT and latest.on_date == on_date:
        return None  # the same registration again (a double submit, a second tab, the same roster row)
    since = b.suspended_on if living else (latest.suspended_since if latest is not None else None)
    event = CycleEvent(beneficiary_id=b.id, kind=DECEASED_EVENT, on_date=on_date, suspended_since=since)
    db.add(event)
    db.flush()  # its id: the export's event_id
    return event


def withdraw_death(db: Session, b: Beneficiary) -> CycleEvent | None:
    """Withdraw `b`'s death (recorded by mistake): the status it had back, and the payment system's row voiding the
    `deceased` row in force; the event written, or None when none was. Call with `b`'s row locked.

    A record not deceased changes nothing (withdrawn already: a double submit, a second tab). The status: suspended
    when the person was suspended as they died (`suspended_on` is kept through a death), else active; the daily run
    then treats them as anyone else (overdue: suspended, with its own row). The row (`death_withdrawn`) is dated by
    the death it withdraws and carries the suspension's start when the person goes back to a suspension; a person
    who had no `deceased` row in force (the roster brought them in deceased) gets none: no payment was stopped here."""
    if b.status != BeneficiaryStatus.DECEASED:
        return None
    b.status = BeneficiaryStatus.SUSPENDED if b.suspended_on is not None else BeneficiaryStatus.ACTIVE
    latest = _latest(db, b)
    if latest is None or latest.kind != DECEASED_EVENT:
        return None
    event = CycleEvent(
        beneficiary_id=b.id, kind=DEATH_WITHDRAWN_EVENT, on_date=latest.on_date, suspended_since=b.suspended_on
    )
    db.add(event)
    db.flush()  # its id: the export's event_id
    return event


def roster_death_withdrawn(b: Beneficiary, said: str | None) -> bool:
    """Whether a roster row saying `deceased` for `b` is the death a supervisor withdrew: `b` is living and the
    roster said `deceased` at its last import of the row too (`said`: its `roster_status` before this import), so
    this is the same roster statement, which carries no date of death and cannot be told from the death withdrawn
    (before, the next import that changed the row killed the person again, with a new stop row): it does not
    apply, and the import names the record (`death_withdrawn_kept`). A `deceased` after the roster said living, or
    the roster's first (the death withdrawn was a console one), is a new statement and applies (`record_death`: a
    new row, as any death after a withdrawal); so does one whose last word is not known (None: imported before
    migration 0027). Before, any roster `deceased` after a withdrawal was held back: a real death was dropped and
    the pension kept being paid."""
    return b.status in LIVING and said == BeneficiaryStatus.DECEASED


def _latest(db: Session, b: Beneficiary) -> CycleEvent | None:
    """`b`'s latest death row or withdrawal of one: the death in force, if it is a `deceased` row."""
    kinds = (DECEASED_EVENT, DEATH_WITHDRAWN_EVENT)
    query = select(CycleEvent).where(CycleEvent.beneficiary_id == b.id, CycleEvent.kind.in_(kinds))
    return db.scalar(query.order_by(CycleEvent.id.desc()).limit(1))


def made_on(zone: HasTimeZone, cert: Certification, s: CertSession | None) -> dt.date:
    """The day the person certified, what "certified after death" is judged by: a video's, the bureau's day of
    the upload that queued it (`queued_at`: its arrival, sessions.upload), not the day the office decided it (a staff
    accept of a video made while the person lived may come days later: `certified_on`, Part AT); a staff
    certification's (no upload), its `certified_on`: the counter, home-visit or evidence date. Never after
    `certified_on` (what lets `made_after` pre-select by it)."""
    if s is None or s.queued_at is None:
        return cert.certified_on
    return min(cert.certified_on, local_date(zone, s.queued_at))


def made_after(
    db: Session, zone: HasTimeZone, beneficiary_id: int, date_of_death: dt.date
) -> list[tuple[Certification, dt.date]]:
    """The certifications of the person made after `date_of_death` (`made_on`), each with that day, by id."""
    query = (
        select(Certification, CertSession)
        .join(CertSession, CertSession.id == Certification.session_id)
        .where(Certification.beneficiary_id == beneficiary_id, Certification.certified_on > date_of_death)
        .order_by(Certification.id)
    )
    made = ((c, made_on(zone, c, s)) for c, s in db.execute(query).all())
    return [(c, day) for c, day in made if day > date_of_death]
