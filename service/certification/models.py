"""Domain tables: beneficiaries, certification sessions (also the job queue), certifications, evidence holds,
cycle events, roster imports, video fingerprints, audit entries and worker heartbeats."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    exists,
    false,
    func,
    or_,
)
from sqlalchemy.orm import Mapped, QueryableAttribute, Session, mapped_column

from service.infra import clock
from service.infra.db.engine import Base


def utcnow() -> dt.datetime:
    """Now as the columns keep it (naive UTC), read from the service's one clock (`clock.now_utc`, which tests and
    replays hold still): a stored time and the bureau's date taken from the clock never disagree (Part AT)."""
    return clock.now_utc().astimezone(dt.UTC).replace(tzinfo=None)


class BeneficiaryStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DECEASED = "deceased"


class BenefitType(enum.StrEnum):
    ENTERPRISE_PENSION = "enterprise_pension"
    RESIDENT_PENSION = "resident_pension"
    WORK_INJURY = "work_injury"
    NURSING_CARE = "nursing_care"
    SURVIVOR_PENSION = "survivor_pension"


class Channel(enum.StrEnum):
    SELF = "self"
    PROXY = "proxy"
    STAFF = "staff"


class SessionState(enum.StrEnum):
    OPEN = "open"  # waiting for uploads
    QUEUED = "queued"  # both uploads stored; a worker will pick it up
    PROCESSING = "processing"  # claimed by a worker until lease_until
    DECIDED = "decided"
    FAILED = "failed"  # gave up after job_max_attempts (staff look at it)
    EXPIRED = "expired"


class SessionDecision(enum.StrEnum):
    """What a session's ``decision`` column holds: the machine's outcome (pipelines.decision.Outcome, the same
    values; not imported: pipelines.decision loads the decision rules) or a staff member's RETRY (record the
    video again), which no pipeline emits."""

    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"
    RETRY = "retry"


class UploadKind(enum.StrEnum):
    """The two uploads of a session; the values are part of the API (the status view's ``uploads`` keys), the
    storage keys (``sessions/<id>/<kind>``) and the audit actions (``upload.<kind>``)."""

    ID_CARD = "id_card"
    VIDEO = "video"


class Beneficiary(Base):
    __tablename__ = "beneficiaries"
    # The WeChat notice run finds the people within the reminder window by it, every minute (migration 0025;
    # service/features/wechat/notice_queue.py, maybe_due).
    __table_args__ = (Index("ix_beneficiaries_status_valid_until", "status", "valid_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # Of the person who certifies: the pensioner, or for a survivor pension the dependant.
    id_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    id_enc: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(12), index=True)
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    benefit_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=BeneficiaryStatus.ACTIVE, index=True)
    valid_until: Mapped[dt.date | None] = mapped_column(Date, index=True)
    last_certified_on: Mapped[dt.date | None] = mapped_column(Date)
    # `valid_until` is the first-import grace date (roster_upsert), not a date anything certified or vouched for:
    # until a certification here, the person awaits their first (cycle.cycle_state). Migration 0026.
    grace_dated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    suspended_on: Mapped[dt.date | None] = mapped_column(Date)
    template: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted float32 embedding
    template_model: Mapped[str | None] = mapped_column(String(64))
    template_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    roster_digest: Mapped[str] = mapped_column(String(64), default="")
    # The status word the roster's last import of the row gave (roster_upsert): whether a roster `deceased` is the
    # death a supervisor withdrew (deaths.roster_death_withdrawn), whether the benefit system stopped paying a
    # person held active (`suspended`: cycle.stopped_by_roster). Or "resumed" (cycle.RESUMED_HERE, never a roster
    # word): a resume here answered the roster's echo of our suspension, and its `suspended` stays that echo until
    # it says another word (cycle.roster_word). None: not known (imported before migration 0027).
    roster_status: Mapped[str | None] = mapped_column(String(16))
    # The benefit system's household (户) identifier, from the roster: whose enrolled faces are relatives'
    # (service/features/proxy/relatives.py). None: not known.
    household: Mapped[str | None] = mapped_column(String(64), index=True)
    # When a roster import last gave the record another ID number (service/certification/roster.py): the
    # certifications stored before it are the previous person's, and keep nobody's benefit running now (the
    # cycle run). None: never changed, or a supervisor found it was the same person (identity_review.py).
    identity_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


def beneficiary_of(db: Session, s: CertSession) -> Beneficiary | None:
    """The beneficiary a session certifies; None for a session without one (or a row gone)."""
    return db.get(Beneficiary, s.beneficiary_id) if s.beneficiary_id is not None else None


class CertSession(Base):
    __tablename__ = "cert_sessions"
    # The open review cases (decided for review, or failed) by index, not every decided session (migration 0025;
    # service/features/console/review_queue.py, open_case_filter).
    __table_args__ = (Index("ix_cert_sessions_state_decision", "state", "decision"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # None: a session that verifies a claimed identity nobody's pension hangs on (a relative's own real-name
    # verification: the proxy feature holds the claim and answers for it through ctx.hooks.claims).
    beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The screen-light sequence issued with the challenge (pipelines.liveness.light.LightSequence.to_dict): the
    # colours the capture page shows while recording, handed to the certifier with the video. None: none issued
    # (PENSION_CERT_LIGHT_CHALLENGE=off, or a session opened before migration 0029).
    light: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    nonce_expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    nonce_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    template_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(12), default=SessionState.OPEN, index=True)
    id_card_key: Mapped[str | None] = mapped_column(String(128))
    id_card_request_id: Mapped[str | None] = mapped_column(String(64))
    id_card_sha256: Mapped[str | None] = mapped_column(String(64))
    video_key: Mapped[str | None] = mapped_column(String(128))
    video_request_id: Mapped[str | None] = mapped_column(String(64))
    video_sha256: Mapped[str | None] = mapped_column(String(64))
    video_content_type: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    # The heartbeat name (service/certification/heartbeat.py) of the process running the claimed job: when that
    # process's
    # heartbeat goes stale the job is claimable at once, without waiting for lease_until.
    worker_process: Mapped[str | None] = mapped_column(String(255))
    job_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    media_purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def newest_first() -> tuple[ColumnElement[Any], ...]:
    """The order of sessions "latest first" (a person's latest attempt, the request page's list): by when opened,
    then, for two opened in the same instant (a batch, the clock's resolution), the one still undecided or decided
    later first, then the id, so that every read ranks them alike (before, such a pair came back in any order: the
    attempt a request page showed, and the one its decision was checked against, could differ between reads)."""
    return (CertSession.created_at.desc(), CertSession.decided_at.desc().nulls_first(), CertSession.id.desc())


def awaiting_staff() -> ColumnElement[bool]:
    """A case staff have not settled yet: a `review` decision, or a job that failed. Its media are the evidence
    the reviewer looks at (kept, however old, until a person decides: service/certification/retention.py), and its
    person is not suspended meanwhile when it was made in time (service/certification/cycle.py)."""
    return or_(
        # coalesce: NOT over a NULL would leave the row out of both the purge and its negation.
        (CertSession.state == SessionState.DECIDED)
        & (func.coalesce(CertSession.decision, "") == SessionDecision.REVIEW),
        CertSession.state == SessionState.FAILED,
    )


class Certification(Base):
    """One accepted certification: the cycle's history and the certificate's subject."""

    __tablename__ = "certifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), unique=True)
    certified_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # A supervisor's revocation (service/certification/revocation.py): found fraudulent (a relative certified with
    # the dead parent's face) or accepted in error. The row stays (the history, the certificate's public check:
    # 已撤销), and counts toward nobody's validity any more (`in_force`). None: not revoked; never un-revoked.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))  # the actor, as the audit trail keeps it
    revoke_reason: Mapped[str | None] = mapped_column(String(16))  # revocation.RevokeReason
    revoke_note: Mapped[str | None] = mapped_column(Text)  # what the supervisor found (ID numbers masked)
    # Telling the person of the revocation (revocation.NoticeState): due from the revocation until the WeChat
    # schedule settles it, whatever the gap (service/features/wechat/revoked.py). None: not revoked, or revoked
    # before migration 0018.
    notice_state: Mapped[str | None] = mapped_column(String(8), index=True)
    # `valid_until` is this certification's own validity, as the rules and the record's region gave it when it was
    # accepted (processing.accept_session): it carries no other certification's date, so a revocation never cuts it
    # (revocation.cut_back), whatever the region or the rules now. False: stored before migration 0028, when a row
    # entered late may have stored the record's latest date instead.
    own_validity: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())


def in_force() -> ColumnElement[bool]:
    """A certification that still counts (not revoked): the cycle run's, the validity's and the certificate's."""
    return Certification.revoked_at.is_(None)


def certification_revoked() -> ColumnElement[bool]:
    """A condition on a query over sessions: the session's certification was revoked by a supervisor (found
    fraudulent: service/certification/revocation.py), so its accept vouches for nobody."""
    return exists().where(Certification.session_id == CertSession.id, ~in_force())


def one_of_hashes(
    column: QueryableAttribute[str] | QueryableAttribute[str | None], hashes: Sequence[str]
) -> ColumnElement[bool]:
    """A condition: `column` holds one of `hashes`, a value's hash under each signing key in use
    (`Keyring.id_hashes`, `Keyring.macs`). `=` when there is one (every deployment but one mid-rotation): an
    `IN` of one is an expanding parameter rendered at each execution, a cost on every roster row's look-up."""
    if len(hashes) == 1:
        return column == hashes[0]
    return column.in_(hashes)


class EvidenceHold(Base):
    """A supervisor's hold on a session's media (ID-card photo, video): evidence of a suspected or established
    冒领 the retention purge must not delete (service/certification/evidence_hold.py). It lasts until `ends_at`
    (`EVIDENCE_HOLD_DAYS` after `placed_at`, the setting when it was placed: a later change of the setting sizes
    the holds placed after it, never one in force; biometric data are never kept without an end), or until a
    supervisor releases it early. Rows stay after their end: who held what, why, until when."""

    __tablename__ = "evidence_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # evidence_hold.HoldReason
    note: Mapped[str] = mapped_column(Text)  # why (ID numbers masked)
    placed_by: Mapped[str] = mapped_column(String(64))  # the actor, as the audit trail keeps it
    placed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime)  # placed_at + EVIDENCE_HOLD_DAYS as it stood then
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    released_by: Mapped[str | None] = mapped_column(String(64))
    release_note: Mapped[str | None] = mapped_column(Text)


def media_held(now: dt.datetime) -> ColumnElement[bool]:
    """A condition on a query over sessions: a hold on the session's media is in force at `now` (not ended by its
    stored end, not released). The one home of "held": the purge, the console page."""
    return exists().where(
        EvidenceHold.session_id == CertSession.id,
        EvidenceHold.released_at.is_(None),
        EvidenceHold.ends_at > now,
    )


class CycleEvent(Base):
    """Suspensions, resumptions and deaths, exported to the payment system (it computes any back-payment)."""

    __tablename__ = "cycle_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # suspended | resumed | deceased (deaths.py)
    on_date: Mapped[dt.date] = mapped_column(Date, index=True)
    suspended_since: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class VideoFingerprint(Base):
    __tablename__ = "video_fingerprints"
    __table_args__ = (UniqueConstraint("sha256", name="uq_video_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    beneficiary_id: Mapped[int | None] = mapped_column(Integer, index=True)  # None: the session has none
    # Perceptual hashes (hex) of sampled frames: near-duplicates of a previous video of the same person.
    frame_hashes: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RosterImport(Base):
    __tablename__ = "roster_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(256))
    sha256: Mapped[str] = mapped_column(String(64))
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    # A session's `session.create` entry found by the session (migration 0024): whose key opened each session, for
    # the key's list of outcomes (outcome.channel_outcomes) and for `attempts.requesters`.
    __table_args__ = (Index("ix_audit_entries_target_action", "target", "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WorkerHeartbeat(Base):
    """One row per worker process (polling worker, the API running thread workers, Celery worker and pool
    child), rewritten every WORKER_HEARTBEAT_S by a thread of that process (service/certification/heartbeat.py)."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid:random (a reused pid is new)
    kind: Mapped[str] = mapped_column(String(16))  # process | thread | celery
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    # Set when the process stopped cleanly, or when its supervisor saw it die: no longer alive, at once.
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
