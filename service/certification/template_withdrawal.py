"""The person withdraws their consent to keep their face template (PIPL art. 15, 47): the one home of the rule,
used by the WeChat "我的信息" page (service/features/wechat/h5/my_data.py) and the console's counter action
(service/features/console/routes_template.py).

The template (`Beneficiary.template`, its model, its consent) is erased at once, and the consent given to sessions
not yet accepted is withdrawn with it (`CertSession.template_consent`): a session opened with consent before the
withdrawal, still in the worker's hands, is then accepted without enrolling the face it saw (`processing._apply`
reads the session's consent again under its row lock), and a timed-out or failed one continued later
(`recovery.again`) carries no consent over. The next certification compares the face with the ID card; a later
session enrols again only with the consent its own page asks for anew.

Locks in the order of service/certification/lock_order.py: the person's sessions not yet accepted (by id), then the
person. A worker accepting one of them meanwhile holds that session first: the withdrawal waits, finds it accepted
(no longer its to change), then erases the template that accept may just have stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from service.certification.models import Beneficiary, CertSession, SessionDecision
from service.certification.withdrawal_records import note

# The audit action of a withdrawal (the caller records it: the H5 page in the audit log, the console in its chain).
WITHDRAWN_ACTION = "template.withdrawn"


@dataclass(frozen=True)
class Withdrawn:
    """What a withdrawal changed: whether a template was erased, how many sessions' consent was withdrawn."""

    template_cleared: bool
    sessions: int
    event: str = ""  # the id of its record in the media store (withdrawal_records.py), named by the audit entry

    def detail(self, via: str) -> dict[str, object]:
        return {"via": via, "template_cleared": self.template_cleared, "sessions": self.sessions, "event": self.event}


def _not_accepted() -> ColumnElement[bool]:
    return or_(CertSession.decision.is_(None), CertSession.decision != SessionDecision.ACCEPT)


def pending_consent(db: Session, beneficiary_id: int) -> int:
    """How many of the person's sessions not yet accepted carry a consent to keep the template."""
    rows = db.scalars(
        select(CertSession.id).where(
            CertSession.beneficiary_id == beneficiary_id, CertSession.template_consent.is_(True), _not_accepted()
        )
    ).all()
    return len(rows)


def withdraw_session_consent(db: Session, which: ColumnElement[bool]) -> int:
    """Withdraw the template consent of the sessions `which` selects that are not accepted yet, locked by id (the
    first rows a withdrawal takes); how many. Looked for again until none is left: a session continued from one of
    them ("again", service/features/wechat/h5/recovery.py, which holds the old session while it inserts the new)
    commits while the first look waits, unseen by that statement (PostgreSQL READ COMMITTED); the next sees it."""
    total = 0
    while True:
        ids = list(
            db.scalars(
                select(CertSession.id)
                .where(which, CertSession.template_consent.is_(True), _not_accepted())
                .order_by(CertSession.id)
                .with_for_update()
            )
        )
        if not ids:
            db.flush()
            return total
        db.execute(update(CertSession).where(CertSession.id.in_(ids)).values(template_consent=False))
        total += len(ids)


def withdraw_template(db: Session, b: Beneficiary, event: str = "") -> Withdrawn:
    """Erase `b`'s face template and withdraw the consent of their sessions not yet accepted, in the caller's unit
    of work (it audits, with `detail`, and commits). Recorded in the media store once committed, so that a restore
    from an older dump does it again (withdrawal_records.py); `event`: a restore doing a recorded one again."""
    event = note(db, WITHDRAWN_ACTION, b.external_id, b.external_id, event)
    withdrawn = withdraw_session_consent(db, CertSession.beneficiary_id == b.id)
    db.refresh(b, with_for_update=True)  # an accept that enrolled meanwhile has committed: its template is read
    cleared = b.template is not None
    b.template, b.template_model, b.template_consent = None, None, False
    return Withdrawn(template_cleared=cleared, sessions=withdrawn, event=event)
