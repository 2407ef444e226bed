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
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.models import Beneficiary, BeneficiaryStatus, CycleEvent

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


def _latest(db: Session, b: Beneficiary) -> CycleEvent | None:
    """`b`'s latest death row or withdrawal of one: the death in force, if it is a `deceased` row."""
    kinds = (DECEASED_EVENT, DEATH_WITHDRAWN_EVENT)
    query = select(CycleEvent).where(CycleEvent.beneficiary_id == b.id, CycleEvent.kind.in_(kinds))
    return db.scalar(query.order_by(CycleEvent.id.desc()).limit(1))
