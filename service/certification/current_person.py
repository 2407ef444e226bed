"""Whose a session is: the record's current person, or the person the record named before the roster changed it.

A roster import that gives a record another ID number (service/certification/roster_identity.py, `identity_changed`)
stamps `Beneficiary.identity_since`: the sessions opened for the record before that moment were opened for the number
it named then, their card and video show that number's person, and they certify nobody now. A supervisor's
same-person finding (a typo corrected: service/certification/identity_review.py) puts the stamp back, and they count
again.

The one home of the rule: an accept (`processing._apply`, `processing.accept_session`: the machine, staff in the
console or through the operator API, the features), the cycle run (a certification of a session made before the
change keeps nobody's benefit running, nor does an undecided one hold off a suspension) and the public certificate
check (such a certification reads superseded) all ask it here. A session's moment is its opening (`created_at`):
its challenge, its token and the number it was opened by were the record's as it stood then. A certification the
bureau's staff record without a video (at the counter, a home visit, activity evidence: the console) is dated by the
day its evidence was seen: one dated before the day of the change saw the previous number's person.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

from service.certification.models import Beneficiary
from service.infra.clock import HasTimeZone, local_date


def made_for_current_person(b: Beneficiary, opened_at: dt.datetime) -> bool:
    """Whether a session of `b` opened at `opened_at` (naive UTC) was opened for the person `b` names now."""
    return b.identity_since is None or opened_at >= b.identity_since


def made_for_current_person_sql(
    opened_at: ColumnElement[dt.datetime] | QueryableAttribute[dt.datetime],
) -> ColumnElement[bool]:
    """`made_for_current_person` as a condition on a query joined to `beneficiaries`."""
    return Beneficiary.identity_since.is_(None) | (opened_at >= Beneficiary.identity_since)


def dated_for_current_person(b: Beneficiary, on: dt.date, tz: HasTimeZone) -> bool:
    """Whether evidence seen on the bureau's day `on` (a counter or home visit, an activity record) may certify the
    person `b` names now: not dated before the day of the record's last change of ID number (that day itself is
    the office's to judge: the new card may already be the one shown)."""
    return b.identity_since is None or on >= local_date(tz, b.identity_since)
