"""Processing one queued session: claim it (a lease in the database), run the pipelines, apply the decision.

The session row is the job. A worker claims it with a compare-and-set on (state, lease_until); a worker
that dies (even by SIGKILL) stops writing its heartbeat (service/certification/heartbeat.py), and once that is stale
(WORKER_STALE_S), or at the latest when the lease expires, any worker claims and redoes the job.
Applying the decision happens in one transaction guarded by the same claim, so it is applied once; it takes its
row locks in the order of service/certification/lock_order.py (the session, the beneficiary, the features' rows).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from pipelines.decision.result import Outcome
from pipelines.errors import PipelineError
from pipelines.reasons import ReasonCode
from service.certification import heartbeat, job_order, sessions
from service.certification.audit import audit
from service.certification.catalog import ServiceCode, message_zh
from service.certification.certificates import issue_code
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.current_person import made_for_current_person
from service.certification.cycle import record_certification, valid_until
from service.certification.errors import ServiceError
from service.certification.fingerprints import SessionFingerprints
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    Certification,
    CertSession,
    SessionState,
    beneficiary_of,
    utcnow,
)
from service.certification.revocation import CERTIFIED_ACTION, revoked_as_fraud
from service.certification.templates import load_template, still_enrolled
from service.infra.clock import local_date, local_today
from service.infra.observability import metrics
from service.infra.security import mask_number_reads, mask_values
from service.infra.storage import StorageError, StorageUnavailableError

if TYPE_CHECKING:
    from service.certification.contract import Template

log = logging.getLogger(__name__)

# Failures worth another try: the database or the media store was briefly unavailable.
TRANSIENT = (OperationalError, StorageError, OSError)
# Transient errors that are a dependency's outage, not this job's: retried without spending an attempt.
OUTAGES = (OperationalError, StorageUnavailableError)
# The database itself failing (unreachable, a dropped connection, no pooled connection free): left to the caller's
# retry, which takes the job back as soon as it answers.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeoutError)
# Free retries after a database outage (they spend none of the job's attempts), with a back-off doubling up to
# OUTAGE_BACKOFF_MAX_S: about 4 minutes of outage for a Celery task (1, 2, 4 … 30 s), beyond that the job waits out
# its lease and the sweeper (Celery) or any worker (embedded) takes it up, that claim counting an attempt.
OUTAGE_RETRIES = 10
OUTAGE_BACKOFF_MAX_S = 30.0


def outage_backoff(base_s: float, retry: int) -> float:
    """The wait before free retry number ``retry`` (1, 2, …): ``base_s`` doubled each time, at most the maximum."""
    return float(min(OUTAGE_BACKOFF_MAX_S, base_s * 2 ** max(0, retry - 1)))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def abandoned(stale_s: float, silence_is_death: bool = True) -> ColumnElement[bool]:
    """A claimed job whose worker is gone: its lease expired (the hard upper bound, whatever the heartbeats
    say), or the process that claimed it stopped or (``silence_is_death``: heartbeat.silence_is_death) has not
    written its heartbeat for ``stale_s`` (service/certification/heartbeat.py). A live worker's long job is taken
    only once its lease ends: its process keeps beating while it runs."""
    now = utcnow()
    return (CertSession.state == SessionState.PROCESSING) & or_(
        CertSession.lease_until < now, heartbeat.holder_gone(now, stale_s, silence_is_death)
    )


def claimable(stale_s: float, silence_is_death: bool = True) -> ColumnElement[bool]:
    """Queued and not waiting out a back-off (lease_until on a queued row: "not before"), or abandoned."""
    now = utcnow()
    ready = (CertSession.state == SessionState.QUEUED) & (
        CertSession.lease_until.is_(None) | (CertSession.lease_until <= now)
    )
    return or_(ready, abandoned(stale_s, silence_is_death))


def give_up_exhausted(ctx: ServiceContext) -> int:
    """Jobs whose every attempt died with its worker (a crash on this input?) go to staff as FAILED instead of
    being redone forever."""
    why = "worker lost on every attempt"
    with ctx.db() as db:
        given_up = db.scalars(
            update(CertSession)
            .where(
                abandoned(ctx.settings.workers.worker_stale_s, heartbeat.silence_is_death(ctx)),
                CertSession.job_attempts >= ctx.settings.workers.job_max_attempts,
            )
            .values(state=SessionState.FAILED, lease_until=None, last_error=why)
            .returning(CertSession.id)
        ).all()
    for session_id in given_up:
        _went_to_staff(session_id, "worker_lost", why)
    return len(given_up)


def _went_to_staff(session_id: str, cause: str, why: str) -> None:
    """A job became FAILED: an acknowledged certification now waits for staff. Before, a worker-killing input
    (Part C) turned job after job FAILED with no log line and no metric moving; `why` is masked by the caller."""
    log.error("session %s: job failed for good (%s), left to staff: %s", session_id, cause, why)
    metrics.JOBS_FAILED.labels(cause).inc()


def claim(
    ctx: ServiceContext, session_id: str | None, worker: str, reclaim_own: bool = False, holder: str | None = None
) -> str | None:
    """Claim one job (the given one, or the next claimable: `job_order.next_job`). Returns its id, or None.

    ``reclaim_own``: the caller is the retry of the very attempt that holds the lease (a Celery task retried
    after its database write failed, named by its task id; a polling-worker thread retrying the session it
    itself failed on), so it takes its job back at once instead of waiting for its own lease to expire, and
    without spending an attempt (the failure was the database's, not the job's; the caller bounds these). Only
    with an explicit ``session_id``: only the failed attempt knows which job it was.

    ``holder``: the heartbeat row that vouches for the job while it runs (default: this process's; a worker thread
    of the API process names its own row, so a dead thread's job is not kept by the others' beats).
    """
    give_up_exhausted(ctx)
    stale_s, silence = ctx.settings.workers.worker_stale_s, heartbeat.silence_is_death(ctx)
    with ctx.db() as db:
        if session_id is None:
            # Each requester its turn (job_order): oldest first put every citizen behind one key's batch.
            running = ~abandoned(stale_s, silence)
            session_id = job_order.next_job(db, claimable(stale_s, silence), running)
            if session_id is None:
                return None
        lease = utcnow() + dt.timedelta(seconds=ctx.settings.workers.job_lease_s)
        # Taking back its own job after a database outage spends no attempt: the outage was not the job's (a
        # flapping database otherwise turned good videos into FAILED jobs). The caller bounds these free retries
        # (OUTAGE_RETRIES); past them the job waits out its lease, and the claim after that counts.
        mine = (CertSession.state == SessionState.PROCESSING) & (CertSession.worker_id == worker)
        attempts = case((mine, CertSession.job_attempts), else_=CertSession.job_attempts + 1)
        free = claimable(stale_s, silence)
        res = db.execute(
            update(CertSession)
            .where(CertSession.id == session_id, or_(free, mine) if reclaim_own else free)
            .values(
                state=SessionState.PROCESSING,
                lease_until=lease,
                worker_id=worker,
                # The job runs in this process: its heartbeat vouches for the job, its silence frees it.
                worker_process=holder or heartbeat.process_name(),
                job_attempts=attempts if reclaim_own else CertSession.job_attempts + 1,
            )
        )
        claimed = getattr(res, "rowcount", 0) == 1
    return session_id if claimed else None


class JobTimeLimitExceededError(Exception):
    """A job that ran past its time limit (a decoder stuck on a pathological video): its worker gave it up. Put
    back as a failed attempt; the class name is the code staff see in ``last_error``."""


def give_up_timed_out(ctx: ServiceContext, session_id: str, worker: str, why: str) -> None:
    """The job ``worker`` holds ran past its time limit: put back after the back-off, an attempt spent (FAILED
    for staff once they are used up), never left ``processing``. Nothing if the job is no longer its."""
    log.error("session %s: %s", session_id, why)
    metrics.JOB_RETRIES.inc()
    _release(ctx, session_id, worker, JobTimeLimitExceededError(why))


def process(
    ctx: ServiceContext,
    certifier: Certifier,
    session_id: str,
    worker: str,
    interrupts: tuple[type[BaseException], ...] = (),
) -> bool:
    """Run one claimed job to its decision. Returns False when the claim was lost meanwhile.

    The features' DecisionHooks (ctx.hooks: the proxy policy, the kinship rule) revise the machine's decision
    in turn; a context without its features installed refuses the job (FeaturesNotInstalled) before any model
    runs, so a proxy session is never accepted by the bare core.

    An unexpected error (the models failing on this input, a hook's bug) puts the job back like a transient one:
    an attempt spent, another try after the back-off, staff (FAILED, the error in ``last_error``) after
    job_max_attempts. Without this the polling worker took the job straight back and redid it for ever, and a
    Celery task left it to wait out three leases. Database errors go to the caller, whose retry takes the job back
    at once (Celery's autoretry, the polling worker's reclaim), and so do ``interrupts`` (a Celery soft time limit:
    the caller gives the job up, give_up_timed_out)."""
    ctx.hooks.require_installed()
    try:
        return _process(ctx, certifier, session_id, worker)
    except DATABASE_DOWN:
        raise
    except interrupts:
        raise
    except Exception as exc:
        log.exception("session %s: job failed", session_id)
        metrics.JOB_RETRIES.inc()
        _release(ctx, session_id, worker, exc)
        return True


def _process(ctx: ServiceContext, certifier: Certifier, session_id: str, worker: str) -> bool:
    with ctx.db() as db:
        s = db.get(CertSession, session_id)
        if s is None or s.state != SessionState.PROCESSING or s.worker_id != worker:
            return False
        subject = _subject(db, ctx, s)
        if subject is None or s.id_card_key is None or s.video_key is None:
            return False
        actions, consent, light = list(s.actions), s.template_consent, sessions.light_of(s)
        issued = s.light is not None  # whether the page was given a sequence to show (read once: `light`)
        if issued and light is None:
            log.warning("session %s: stored light sequence unreadable, analysed without it", s.id)
        card_key, video_key = s.id_card_key, s.video_key
        expected, template, fingerprints = subject
        # The card's validity is judged on the bureau's date the person sent it (not the server's: 00:00-08:00 in
        # Beijing is the day before in UTC), so a job read after midnight keeps the day the card was shown.
        sent_on = local_date(ctx.settings, s.queued_at) if s.queued_at is not None else local_today(ctx.settings)
    try:
        card, video = ctx.storage.get(card_key), ctx.storage.get(video_key)
        # The screen-light sequence positionally, as the protocol orders it (Certifier.run): it measures the face's
        # response, and the result (the decision's liveness entry) is stored with the session below.
        report = certifier.run(card, video, actions, expected, template, fingerprints, sent_on, light)
        metrics.observe_report(report.timings)
        report = ctx.hooks.revise(ctx, session_id, certifier, report)
        result = redact(report.to_dict())
        outcome = Outcome(report.decision.outcome)
        reasons = [r.value for r in report.decision.reasons]
        new_template = report.new_template
    except PipelineError as exc:
        # Undecodable or limit-violating media: a final answer, not something to retry.
        outcome, reasons, new_template = Outcome.REJECT, [exc.reason.value], None
        result = {"decision": Outcome.REJECT.value, "reasons": reasons, "detail": exc.detail, "scores": {}}
    except TRANSIENT as exc:
        metrics.JOB_RETRIES.inc()
        _release(ctx, session_id, worker, exc)
        return True
    outcome, reasons, result = _unchecked_light(ctx, issued, light is not None, outcome, reasons, result)
    kept = new_template if consent else None
    return _apply(ctx, session_id, worker, outcome, reasons, result, kept, compared=template)


def _unchecked_light(
    ctx: ServiceContext, issued: bool, read: bool, outcome: Outcome, reasons: list[str], result: dict[str, object]
) -> tuple[Outcome, list[str], dict[str, object]]:
    """The decision of a session analysed without its screen-light sequence: one was issued and could not be read
    back (`sessions.light_of`), or none was issued (the session was opened while LIGHT_CHALLENGE was off, and the
    mode became enforce before its video was processed). Its liveness entry says which (the case page: 已发出，无法读取
    or 开启时未发出). Under enforce the machine's accept (or review) goes to staff, with LIGHT_UNREADABLE or
    LIGHT_NOT_ISSUED: the mode requires the check, and a pass without it was fail-open. A reject stays one: it
    certifies nobody. In observe (or off) a session issued none keeps its verdict and its entry, as before."""
    enforced = ctx.settings.certification.light_challenge == "enforce"
    if read or not (issued or enforced):
        return outcome, reasons, result
    live = result.get("liveness")
    if isinstance(live, dict) and live.get("light") is None:
        light = {"status": "unreadable" if issued else "not_issued", "mode": "enforce" if enforced else "observe"}
        result = {**result, "liveness": {**live, "light": light}}
    if not enforced or outcome is Outcome.REJECT:
        return outcome, reasons, result
    code = ReasonCode.LIGHT_UNREADABLE if issued else ReasonCode.LIGHT_NOT_ISSUED
    reasons = [*reasons, code.value]
    return Outcome.REVIEW, reasons, _recorded(result, Outcome.REVIEW, reasons)


def _subject(
    db: Session, ctx: ServiceContext, s: CertSession
) -> tuple[str, Template | None, SessionFingerprints] | None:
    """Whom the session's card and video must show: the expected ID number, the enrolled template and the
    near-duplicate check's store. The beneficiary's; for a session without one, the claim of the feature that
    opened it (a relative's verification: no template, compared with the claimant's earlier videos)."""
    b = beneficiary_of(db, s)
    if b is not None:
        expected = ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
        return expected, load_template(ctx, b), SessionFingerprints(ctx, s.id, b.id)
    if s.beneficiary_id is not None:
        return None  # the beneficiary row is gone
    claim = ctx.hooks.claim(db, ctx, s)
    if claim is None:
        log.warning("session %s: no beneficiary and no feature claims it", s.id)
        return None
    return claim.id_number, None, SessionFingerprints(ctx, s.id, None, claim.peer_sessions)


def redact(result: dict[str, object]) -> dict[str, object]:
    """Mask every ID number in the stored result (OCR diagnostics included): the clear number is kept only
    encrypted, on the beneficiary. Partial reads too (the raw 17 or 19 digits of a misread number line are
    most of the person's number), since the result is served to API clients and shown in the console."""
    return {k: mask_values(v, mask_number_reads) for k, v in result.items()}


def _release(ctx: ServiceContext, session_id: str, worker: str, exc: BaseException) -> None:
    """Put the job back after a failed attempt; it is claimable again after `job_retry_backoff_s`.

    A dependency outage (database, object store unreachable) says nothing about this job: the attempt is given
    back, so an outage longer than a few retries never turns an acknowledged certification into a failure. Other
    failures (a missing object, a read error, an unexpected error) count, and the job goes to staff after
    job_max_attempts.
    """
    outage = isinstance(exc, OUTAGES)
    retry_at = utcnow() + dt.timedelta(seconds=ctx.settings.workers.job_retry_backoff_s)
    # Only while this worker still holds the job: worker_id outlives the claim, so without the state a job given
    # up meanwhile (FAILED) and settled by staff was reopened here and decided again.
    held = (
        (CertSession.id == session_id)
        & (CertSession.worker_id == worker)
        & (CertSession.state == SessionState.PROCESSING)
    )
    with ctx.db() as db:
        attempts = db.scalar(select(CertSession.job_attempts).where(held).with_for_update())
        if attempts is None:
            return
        give_up = not outage and attempts >= ctx.settings.workers.job_max_attempts
        # Shown to staff and logged: any error's text may quote a row's values (an ID number among them).
        error = mask_number_reads(f"{type(exc).__name__}: {exc}")[:500]
        log.warning(
            "session %s: %s (attempt %d): %s",
            session_id,
            "dependency outage" if outage else "failed attempt",
            attempts,
            error,
        )
        db.execute(
            update(CertSession)
            .where(held)
            .values(
                state=SessionState.FAILED if give_up else SessionState.QUEUED,
                lease_until=None if give_up else retry_at,
                job_attempts=CertSession.job_attempts - 1 if outage else CertSession.job_attempts,
                last_error=error,
            )
        )
    if give_up:
        _went_to_staff(session_id, "time_limit" if isinstance(exc, JobTimeLimitExceededError) else "error", error)


def _apply(
    ctx: ServiceContext,
    session_id: str,
    worker: str,
    outcome: Outcome,
    reasons: list[str],
    result: dict[str, object],
    new_template: Template | None,
    *,
    compared: Template | None = None,
) -> bool:
    """Apply the job's decision to the session it still holds. `compared`: the person's template the models compared
    the video with (`_subject`, None: none), checked again under the person's lock (`_under_lock`)."""
    with ctx.db() as db:
        s = db.get(CertSession, session_id, with_for_update=True)
        if s is None or s.state != SessionState.PROCESSING or s.worker_id != worker:
            log.info("session %s: claim lost before applying; another worker owns it", session_id)
            return False
        if not s.template_consent:
            # Read again under the session's lock: the person withdrew the consent while the models ran
            # (service/certification/template_withdrawal.py). The face seen is not kept.
            new_template = None
        now = utcnow()
        b = beneficiary_of(db, s)
        if outcome is Outcome.ACCEPT and b is not None:
            # An accept locks the beneficiary next, before any feature's rows (the proxy feature's operator and
            # binding): the lock order of service/certification/lock_order.py. Taken after them, it deadlocked
            # with a roster import that changes the person's ID number (their row, then the bindings).
            db.refresh(b, with_for_update=True)
        checked = _under_lock(db, ctx, s, b, outcome, reasons, compared)
        if checked != (outcome, reasons):
            outcome, reasons = checked
            result = _recorded(result, outcome, reasons)
            new_template = None  # an accept that no longer is one keeps no face
        # What a feature's rows, changed since its DecisionHook read them, no longer allow (ctx.hooks.holds).
        held = ctx.hooks.hold(db, s, b, outcome, list(reasons))
        if held != (outcome, reasons):
            outcome, reasons = held
            result = _recorded(result, outcome, reasons)
        s.state, s.decision, s.reasons, s.result, s.decided_at = (
            SessionState.DECIDED,
            outcome.value,
            reasons,
            result,
            now,
        )
        s.lease_until = None
        handled = False
        for hook in ctx.hooks.decided.values():  # every hook sees the decision, whichever handles the accept
            handled = hook(db, ctx, s, b, outcome, reasons, new_template) or handled
        if b is not None and outcome is Outcome.ACCEPT and not handled:
            accept_session(db, ctx, s, b, local_date(ctx.settings, now), new_template)  # the bureau's date
        audit(db, worker, "session.decide", s.id, {"decision": outcome.value, "reasons": reasons})
    log.info("session %s: %s %s", session_id, outcome.value, ",".join(reasons))
    metrics.observe_decision(outcome.value, reasons)  # after the commit: counted once per applied decision
    return True


def _under_lock(
    db: Session,
    ctx: ServiceContext,
    s: CertSession,
    b: Beneficiary | None,
    outcome: Outcome,
    reasons: list[str],
    compared: Template | None,
) -> tuple[Outcome, list[str]]:
    """The machine's accept of `s` checked against the person's row as it stands under its lock (`_apply` holds it:
    a change committing meanwhile is waited for, then seen); anything else, or no person, as it is."""
    if outcome is not Outcome.ACCEPT or b is None:
        return outcome, reasons
    if b.status == BeneficiaryStatus.DECEASED:
        # Recorded deceased after the session opened: nobody is certified for the dead (staff see why).
        return Outcome.REJECT, [*reasons, ReasonCode.BENEFICIARY_DECEASED.value]
    if not made_for_current_person(b, s.created_at):
        # The roster gave the record another ID number after the session opened: the video is the previous number's
        # person's and certifies nobody now. Rejected, not sent to staff: they could not accept it either
        # (`accept_session`), and the citizen is told at once to certify again with the card of today.
        return Outcome.REJECT, [*reasons, ReasonCode.IDENTITY_CHANGED.value]
    if not still_enrolled(ctx, b, compared) and revoked_as_fraud(db, b.id):
        # A revocation as 冒领 or a wrong accept dropped the template while the models ran (the impostor's face:
        # revocation._drop_template). A matching template carries the accept (pipelines/decision/rules._face), so
        # this one rested on the impostor's face: before, it certified them again and enrolled their face anew.
        # Staff decide it, two of them after such a revocation (review.accept_needs_second); no face is kept.
        return Outcome.REVIEW, [*reasons, ReasonCode.TEMPLATE_DROPPED.value]
    return outcome, reasons


def _recorded(result: dict[str, object], outcome: Outcome, reasons: list[str]) -> dict[str, object]:
    """The stored result with the decision recorded instead of the machine's (a hold's, or a reject for a changed
    ID number): what the result page and staff read."""
    revised: dict[str, object] = {**result, "decision": outcome.value, "reasons": reasons}
    if "messages" in result:
        revised["messages"] = [message_zh(r) for r in reasons]
    return revised


def accept_session(
    db: Session, ctx: ServiceContext, s: CertSession, b: Beneficiary | None, today: dt.date, tpl: Template | None
) -> None:
    """Accept `s`: the features' accept hooks first, then (unless one says the session certifies nobody) the
    certification of `b`. A session without a beneficiary never issues a certificate: refused when no feature
    took its accept; nor does one opened before the roster gave `b` another ID number (IDENTITY_CHANGED: the
    previous number's person's video; service/certification/current_person.py)."""
    if b is not None:
        # Lock and re-read the beneficiary (PostgreSQL; SQLite serialises writers) before the features' hooks: a
        # cycle run suspending them at this moment is waited for and then seen, so the certification resumes them
        # instead of leaving a certified beneficiary suspended; a roster import giving the record another ID number
        # is waited for, so the hooks then see the bindings it revoked (a staff accept read them before it, still
        # active, and certified the new person). The lock order: service/certification/lock_order.py. Pending
        # changes are flushed first, so the re-read keeps them.
        db.flush()
        db.refresh(b, with_for_update=True)
    certifies_nobody = False  # e.g. a relative's verification or an elder's consent (the proxy feature)
    for hook in ctx.hooks.require_installed().accept.values():
        certifies_nobody = hook(db, s, b) or certifies_nobody
    if certifies_nobody:
        return
    if b is None:
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "the session certifies no beneficiary")
    if b.status == BeneficiaryStatus.DECEASED:  # staff accepting a case whose person was recorded dead meanwhile
        raise ServiceError(ReasonCode.BENEFICIARY_DECEASED, "beneficiary is registered as deceased")
    if not made_for_current_person(b, s.created_at):
        # Staff accepting a video made before the roster gave the record another ID number (read under the lock
        # above): it would certify the number's new person. Refused until a supervisor's same-person finding
        # (service/certification/identity_review.py) puts the record's earlier identity back; a reject stays open.
        raise ServiceError(ReasonCode.IDENTITY_CHANGED, "the record's ID number changed after this session opened")
    was_suspended = b.status == BeneficiaryStatus.SUSPENDED
    # `today` is the certification's date; one entered late resumes only if still valid on the bureau's date.
    before = b.valid_until  # kept in the audit entry: a revocation of this certification goes back to it
    recorded = record_certification(db, b, today, ctx.rules, today=max(today, local_today(ctx.settings)))
    # The certification's own validity, not the record's latest (one entered late would carry a later
    # certification's date, and keep it once that one is revoked): what its certificate, the cycle run and the
    # public check go by.
    until = valid_until(today, ctx.rules, b.region, b.birth_date)
    cert = Certification(beneficiary_id=b.id, session_id=s.id, certified_on=today, valid_until=until, code="")
    db.add(cert)
    db.flush()
    cert.code = issue_code(ctx.keyring, cert.id, b.id_masked, today, until)
    if tpl is not None:
        b.template = ctx.keyring.encrypt_field(
            tpl.embedding.astype(np.float32).tobytes().hex(), "beneficiary.template"
        ).encode()
        b.template_model = tpl.model
        b.template_consent = True
    audit(
        db,
        "system",
        CERTIFIED_ACTION,
        b.external_id,
        {
            "valid_until": recorded.isoformat(),  # the record's, as it stands after this one
            "resumed": was_suspended and b.status != BeneficiaryStatus.SUSPENDED,
            "certification": cert.id,
            "valid_until_before": before.isoformat() if before else None,
        },
    )
    ctx.hooks.person_certified(db, ctx, s, b)  # e.g. the person's open requests for a home visit are answered
