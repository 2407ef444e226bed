"""A citizen's request for a manual review of the failed attempts or a home visit, and how staff close it.

The H5 pages (service/features/wechat/h5/requests.py) submit a request for the person the WeChat user certifies
(themselves, or
an elder a relative is bound to); staff see the open requests in the console and close each one, usually by
recording an alternative certification (service/features/console/alt_cert.py: the same path as a counter or home-visit
certification). Closing queues one message to whoever asked, through the notifiers registered on the context
(ctx.hooks; the WeChat one: service/features/wechat/notify.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.contract import FeatureHooks
from service.certification.current_person import made_for_current_person
from service.certification.errors import ServiceError
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    CertSession,
    in_force,
    utcnow,
)
from service.certification.revocation import revoked_as_impersonation
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.features.console.alt_cert import certify_alternative
from service.features.console.auth import Staff
from service.features.console.models import (
    AltCertification,
    AssistKind,
    AssistOutcome,
    AssistRequest,
    AssistStatus,
    ConsoleAlert,
)
from service.infra.security import mask_text, mask_values

# Keyed by str as well: the stored column and the form hold the plain values.
KINDS_ZH: dict[str, str] = {AssistKind.MANUAL_REVIEW: "人工审核", AssistKind.HOME_VISIT: "上门认证"}
OUTCOMES_ZH: dict[str, str] = {AssistOutcome.CERTIFIED: "已完成认证", AssistOutcome.ANSWERED: "已答复"}
# A mobile number, or a landline with its area code (hyphen optional); spaces and hyphens are dropped first.
_PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}\d{7,8}")
MAX_NOTE = 200
PHONE_ERASED = "(联系电话已按期删除)"  # what a copy of a request's phone reads as once the request's is erased
MAX_REPLY = 100  # the reply goes into a WeChat template message: short
CLOSE_ACTION = "assist.close"  # the audit entry of a closing (`_closed`); `closed_by` reads it


class AssistError(ServiceError):
    """A refused request or closing; ``message_zh`` (from the catalog) is what the citizen or the staff member
    reads."""

    def __init__(self, code: str) -> None:
        super().__init__(code, code.lower())


def normalise_phone(raw: str) -> str:
    number = re.sub(r"[\s-]", "", raw)
    if not _PHONE.fullmatch(number):
        raise AssistError("ASSIST_PHONE")
    return number


def check_form(kind: str, phone: str) -> tuple[AssistKind, str]:
    """The form's own fields (the kind asked for and the contact phone), checked before anyone is looked up: a
    form error must read the same whoever the name and number belong to."""
    if kind not in KINDS_ZH:
        raise AssistError("ASSIST_KIND")
    return AssistKind(kind), normalise_phone(phone)


def offered_kinds(reviewed: bool, video: bool = True) -> tuple[AssistKind, ...]:
    """What a citizen may ask for (the one home of the rule: the H5 form offers these, `submit` takes no other).
    `reviewed`: staff rejected the session the request names. Their review has just happened; asking for another
    would re-queue the rejected video. A home visit (or the counter) is the next step then (docs/security.md
    Part BY). `video`: there is a video staff may accept (assist_video.reviewable, the request page's own rule):
    none (the page could not record) or a reject no one may overrule by watching (LIGHT_NOT_SEEN, a spoof) would
    promise a review that cannot end in a certification (docs/security.md Part DP)."""
    return (AssistKind.HOME_VISIT,) if reviewed or not video else (AssistKind.MANUAL_REVIEW, AssistKind.HOME_VISIT)


def open_request(db: Session, beneficiary_id: int, openid: str) -> AssistRequest | None:
    """The request this requester has open for this person (another requester's is not theirs to see or to be
    blocked by: anyone who knows a name and number can file one), filed since the person's last certification: one
    a certification answered (`answered_sql`) is no request of this cycle, whatever its row says (the H5 page told
    "正在办理" over a certification, and refused this year's request filed in time)."""
    return db.scalar(
        select(AssistRequest).where(
            AssistRequest.beneficiary_id == beneficiary_id,
            AssistRequest.openid == openid,
            open_sql(),
            ~answered_sql(),
        )
    )


def answered_sql() -> ColumnElement[bool]:
    """A request filed before a certification of its person was recorded, one still in force: that certification
    answered it. The rule `close_on_certification` applies as the certification is made; this reads it for a request
    it never saw (one left open before it existed). A revoked certification answers nothing (`reopen_on_revocation`
    gives its request back to staff)."""
    return exists().where(
        Certification.beneficiary_id == AssistRequest.beneficiary_id,
        Certification.created_at > AssistRequest.created_at,
        in_force(),
    )


def open_sql() -> ColumnElement[bool]:
    """A request still open: staff owe it a home visit or a review (what `open_cases` reads, and the dashboard's
    pre-filter of the people it reads)."""
    return AssistRequest.status == AssistStatus.OPEN


def open_cases(db: Session, beneficiary_ids: Sequence[int]) -> list[tuple[int, dt.datetime]]:
    """The open requests of these people as the cycle reads them (contract.OpenCaseSource, registered by
    install_features): (person, filed at). One filed by the last valid day, for the record's present person,
    shelters them from the daily run's suspension as a video waiting for staff does (cycle.being_decided, bounded
    the same way: `due_soon_days` past that day); closed (certified or answered), it shelters nobody."""
    query = select(AssistRequest.beneficiary_id, AssistRequest.created_at).where(
        AssistRequest.beneficiary_id.in_(beneficiary_ids), open_sql()
    )
    return [(bid, filed) for bid, filed in db.execute(query).all()]


def open_kind(db: Session, beneficiary_id: int) -> str | None:
    """What the person's earliest open request asks for, in Chinese (上门认证, 人工审核); None when none is open (one
    a certification answered since counts as none: `answered_sql`)."""
    query = select(AssistRequest.kind).where(
        AssistRequest.beneficiary_id == beneficiary_id, open_sql(), ~answered_sql()
    )
    kind = db.scalar(query.order_by(AssistRequest.id).limit(1))
    return KINDS_ZH.get(kind) if kind is not None else None


def submit(
    db: Session,
    b: Beneficiary,
    kind: str,  # as the form sent it: checked here
    phone: str,
    note: str,
    openid: str,
    actor: str,
    session_id: str | None = None,
    by_relative: bool = False,
    reviewed: bool = False,
    video: bool = True,
) -> AssistRequest:
    """Store a citizen's request: one open request per person and requester (a second one from the same WeChat
    user is refused; another user's request for the same person is stored beside it, for staff to see both).
    `reviewed`: staff rejected session `session_id`; `video`: there is a video staff may accept (`offered_kinds`)."""
    asked, number = check_form(kind, phone)
    if asked not in offered_kinds(reviewed, video):
        raise AssistError("ASSIST_REVIEWED" if reviewed else "ASSIST_NO_VIDEO")
    if b.status == BeneficiaryStatus.DECEASED:
        raise AssistError("ASSIST_DECEASED")
    if open_request(db, b.id, openid) is not None:
        raise AssistError("ASSIST_OPEN")
    _close_answered(db, b, openid)  # one of an earlier cycle would hold the one open request of this requester
    req = AssistRequest(
        beneficiary_id=b.id,
        kind=asked,
        phone=number,
        note=note.strip()[:MAX_NOTE],
        openid=openid,
        by_relative=by_relative,
        session_id=session_id,
    )
    try:
        with db.begin_nested():  # two submissions at once: the partial unique index lets one through
            db.add(req)
    except IntegrityError as exc:
        raise AssistError("ASSIST_OPEN") from exc
    audit(db, actor, "assist.request", b.external_id, {"request": req.id, "kind": kind, "by_relative": by_relative})
    return req


def close(
    db: Session,
    ctx: ServiceContext,
    staff: Staff,
    req: AssistRequest,
    outcome: AssistOutcome,
    reply: str,
    certified_by: str | None = None,
) -> None:
    """Close ``req`` (certified / answered) and queue the message to whoever asked, in the caller's transaction.
    `certified_by`: the video session whose accept certifies the person (`assist_video.accept_video`): its own
    message to the same account tells it (contract.Notifier.request_closed)."""
    if req.status != AssistStatus.OPEN:
        raise AssistError("ASSIST_CLOSED")
    if outcome == AssistOutcome.ANSWERED and not reply.strip():
        raise AssistError("ASSIST_REPLY")
    _closed(db, req, outcome, reply.strip()[:MAX_REPLY] or None, staff, {})
    ctx.hooks.request_closed(db, req.id, req.openid, certified_by)


def _closed(
    db: Session,
    req: AssistRequest,
    outcome: AssistOutcome,
    note: str | None,
    staff: Staff | None,
    detail: dict[str, Any],
) -> None:
    """`req` closed as `outcome`, audited (`staff` None: by the service's own rule, `close_on_certification`)."""
    req.status, req.outcome, req.outcome_note = AssistStatus.CLOSED, outcome, note
    req.closed_by, req.closed_at = (staff.id if staff else None), utcnow()
    b = db.get(Beneficiary, req.beneficiary_id)
    target = audit_chain.person_target(b) if b is not None else str(req.beneficiary_id)
    actor = staff.actor if staff else "system"
    audit_chain.record(db, actor, CLOSE_ACTION, target, {"request": req.id, "outcome": outcome, **detail})


def close_on_certification(db: Session, ctx: ServiceContext, s: CertSession, b: Beneficiary) -> None:
    """A certification of `b` (any way: a video the machine or staff accepted, the counter or a home visit recorded
    on the person page, activity evidence; processing.accept_session calls it through ctx.hooks.certified) answers
    every request of theirs still open: each is closed as certified and whoever asked told once (its closing
    notice), as when staff certify from the request. Before, only staff closing it from the request page did: the
    H5 page kept telling a person certified at the counter "正在办理", and next year it refused their request filed
    on the last valid day as already filed, a request Part DC's shelter ignored (filed before that certification):
    suspended. A requester whose account sent `s` is told by `s`'s own message, not a second time
    (contract.Notifier.request_closed). Rows another transaction holds are skipped (SKIP LOCKED): the request page
    closing one at this moment (it locks the request before the person: lock_order.py); one it leaves open reads as
    answered (`answered_sql`)."""
    query = (
        select(AssistRequest)
        .where(AssistRequest.beneficiary_id == b.id, open_sql())
        .order_by(AssistRequest.id)
        .with_for_update(skip_locked=True)
    )
    for req in db.scalars(query).all():
        _closed(db, req, AssistOutcome.CERTIFIED, None, None, {"session": s.id})
        ctx.hooks.request_closed(db, req.id, req.openid, s.id)  # not twice to the account that sent `s`


REOPEN_ACTION = "assist.reopen"


def reopen_on_revocation(db: Session, hooks: FeatureHooks, session_id: str, actor: str) -> list[int]:
    """The certification of session `session_id` was just revoked (the console's two supervisors, or the operator
    API and `pension-cert revoke`, through ctx.hooks.revocations): the requests it closed are open again, for staff
    to arrange the visit or the review the person asked for. Before, they stayed closed as certified: the person
    told to certify again by the revocation's notice, a bedridden pensioner whose home visit was recorded on the
    wrong record (错误受理) among them, had to file anew, and until then staff owed them nothing. Which requests
    (`_to_reopen`): those this certification closed (`closed_by`), no other certification in force answers
    (`answered_sql`), filed for the record's present person, the latest of each requester (one open request per
    person and requester; none when they have filed anew), not one from an account the revocation is not for
    (`hooks.kept_from_revocation`, the WeChat feature's relatives_told rule: the maker of a revoked session, a
    relative whose binding is locked or flagged). None after a certification that counted for nobody (made before
    the record's ID number changed), none
    for a person recorded deceased, and none for a person any of whose certifications was revoked as 冒领 (the
    requester may be whoever collected; the bureau's investigation decides what the family hears, as for its
    notice: wechat/revoked.py). No message: the revocation's notice tells the person. Taken after the person's
    row, so with SKIP LOCKED as `close_on_certification` (lock_order.py); audited `assist.reopen`. The ids
    reopened."""
    cert = db.scalar(select(Certification).where(Certification.session_id == session_id))
    if cert is None or cert.revoke_reason is None:
        return []
    b, s = db.get(Beneficiary, cert.beneficiary_id), db.get(CertSession, cert.session_id)
    if b is None or s is None or b.status == BeneficiaryStatus.DECEASED:
        return []
    if not made_for_current_person(b, s.created_at) or revoked_as_impersonation(db, b.id):
        return []
    reopened: list[int] = []
    for req in _to_reopen(db, hooks, b, session_id):
        req.status, req.outcome, req.outcome_note = AssistStatus.OPEN, None, None
        req.closed_by, req.closed_at = None, None
        detail = {"request": req.id, "certification": cert.id, "reason": cert.revoke_reason}
        audit_chain.record(db, actor, REOPEN_ACTION, audit_chain.person_target(b), detail)
        reopened.append(req.id)
    db.flush()  # before a later statement of the unit reads the requests (the open one per requester)
    return reopened


def _to_reopen(db: Session, hooks: FeatureHooks, b: Beneficiary, session_id: str) -> list[AssistRequest]:
    """The requests `reopen_on_revocation` gives back to staff, locked (the latest of each requester first)."""
    closed = closed_by(db, b, session_id)
    if not closed:
        return []
    query = (
        select(AssistRequest)
        .where(
            AssistRequest.id.in_(closed),
            AssistRequest.beneficiary_id == b.id,
            AssistRequest.status == AssistStatus.CLOSED,
            AssistRequest.outcome == AssistOutcome.CERTIFIED,
            ~answered_sql(),
        )
        .order_by(AssistRequest.id.desc())
        .with_for_update(skip_locked=True)
    )
    # Filed before the roster gave the record another ID number: the previous holder's request, not this person's.
    found = [req for req in db.scalars(query).all() if made_for_current_person(b, req.created_at)]
    kept = hooks.kept_from_revocation(db, b.id, {req.openid for req in found})
    held = set(db.scalars(select(AssistRequest.openid).where(AssistRequest.beneficiary_id == b.id, open_sql())))
    chosen: list[AssistRequest] = []
    for req in found:
        if req.openid in kept or req.openid in held:  # held: filed anew since, or a later one of theirs chosen
            continue
        held.add(req.openid)
        chosen.append(req)
    return chosen


def closed_by(db: Session, b: Beneficiary, session_id: str) -> set[int]:
    """The ids of person `b`'s requests that the certification of session `session_id` closed, as each way of
    closing one records it: the certification's own rule (`close_on_certification`: its `assist.close` entry names
    the session), 视频审核通过 on the request page (assist_video.accept_video: its `case.decide.final` entry on the
    session names the request) and 记录认证并办结 (`certify_and_close`: the certification's evidence names the
    request). Not a request closed by another certification that no longer answers it: a later revocation of
    another certification gave back the request a 冒领 certification had closed."""
    recorded = mask_text(session_id)[:64]  # as the audit chain stores a text (audit_chain.record)
    e = ConsoleAuditEntry
    closings = select(e.detail).where(
        e.target == audit_chain.person_target(b), e.action == CLOSE_ACTION, e.detail["session"].as_string() == recorded
    )
    decided = select(e.detail).where(e.target == recorded, e.action == "case.decide.final")
    alt = select(AltCertification.evidence).where(AltCertification.session_id == session_id)
    found = [*db.scalars(closings), *db.scalars(decided), *db.scalars(alt)]
    return {d["request"] for d in found if isinstance(d, dict) and isinstance(d.get("request"), int)}


def closing_number(db: Session, request_id: int) -> int:
    """Which closing of request `request_id` its present one is (or its next, while it is open): the first, and one
    more each time a revocation reopened it (`reopen_on_revocation`'s audit entries). Each closing has its own
    notice (notice_queue.assist_ref)."""
    e = ConsoleAuditEntry
    reopened = select(func.count()).where(e.action == REOPEN_ACTION, e.detail["request"].as_integer() == request_id)
    return 1 + (db.scalar(reopened) or 0)


def _close_answered(db: Session, b: Beneficiary, openid: str) -> None:
    """This requester's open request for `b` that a certification answered since (`answered_sql`: left open before
    `close_on_certification` existed), closed as certified without a message (the requester is filing anew now): it
    would hold the one open request per person and requester, and the new one could not be stored."""
    query = select(AssistRequest).where(
        AssistRequest.beneficiary_id == b.id, AssistRequest.openid == openid, open_sql(), answered_sql()
    )
    for req in db.scalars(query.with_for_update()).all():
        _closed(db, req, AssistOutcome.CERTIFIED, None, None, {"superseded": True})


def certify_and_close(
    db: Session,
    ctx: ServiceContext,
    staff: Staff,
    req: AssistRequest,
    kind: str,
    on_date: dt.date,
    evidence: str,
    seen_identity: str | None = None,
) -> None:
    """The alternative certification the request led to (counter / home visit), and the request closed by this
    member of staff (first: the certification then closes the person's other open requests,
    `close_on_certification`; a refusal rolls both back). `seen_identity`: the form's record stamp as rendered
    (alt_cert.certify_alternative)."""
    if req.status != AssistStatus.OPEN:
        raise AssistError("ASSIST_CLOSED")
    b = db.get(Beneficiary, req.beneficiary_id)
    if b is None:
        raise AssistError("ASSIST_CLOSED")
    close(db, ctx, staff, req, AssistOutcome.CERTIFIED, "")
    note = {"note": evidence.strip()[:1000], "request": req.id}
    certify_alternative(db, ctx, b, kind, on_date, staff, note, seen_identity=seen_identity)


def erase_closed_contacts(ctx: ServiceContext, at: dt.datetime) -> dict[str, int]:
    """The phone number and note of every request closed more than the media retention ago are erased (daily
    upkeep): they were given for staff to call back, and the closing message has long gone. The request itself,
    its outcome and who closed it stay, as the decisions do. One audit entry per run that erased any."""
    cutoff = at - dt.timedelta(days=ctx.settings.storage.retention_days)
    with ctx.db() as db:
        due = db.execute(
            select(AssistRequest.id, AssistRequest.beneficiary_id, AssistRequest.phone).where(
                AssistRequest.status == AssistStatus.CLOSED, AssistRequest.closed_at < cutoff, AssistRequest.phone != ""
            )
        ).all()
        for rid, bid, phone in due:
            _erase_phone_copies(db, rid, bid, phone)
        res = db.execute(
            update(AssistRequest)
            .where(
                AssistRequest.status == AssistStatus.CLOSED,
                AssistRequest.closed_at < cutoff,
                (AssistRequest.phone != "") | (AssistRequest.note != ""),
            )
            .values(phone="", note="")
            .execution_options(synchronize_session=False)
        )
        erased = int(getattr(res, "rowcount", 0) or 0)
        if erased:
            audit(db, "system", "retention.assist_contact", cutoff.date().isoformat(), {"requests": erased})
    return {"assist_contacts_erased": erased}


def _erase_phone_copies(db: Session, rid: int, bid: int, phone: str) -> None:
    """Request `rid`'s phone erased from the notes it may have been copied into: the evidence of the certification
    it led to (a note staff typed or pasted it into) and that certification's second-supervisor alert. Those are
    kept with the certification, far longer than a call-back number has a purpose (docs/security.md, Part H)."""
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return
    # As typed or pasted: a space or hyphen between any two digits (the request stores the number without them).
    pattern = re.compile(r"[\s-]?".join(digits))

    def erase(value: Any) -> Any:
        return mask_values(value, lambda text: pattern.sub(PHONE_ERASED, text))

    sessions: set[str] = set()
    for alt in db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == bid)):
        if (alt.evidence or {}).get("request") == rid:
            sessions.add(alt.session_id)
            alt.evidence = erase(alt.evidence)
    if not sessions:
        return
    for alert in db.scalars(select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == bid)):
        # An alert names its certification's session, or several (a merged STAFF_CERTIFIED alert's "more").
        named = {alert.detail.get("session"), *(m.get("session") for m in alert.detail.get("more", []))}
        if named & sessions:
            alert.detail = erase(alert.detail)
