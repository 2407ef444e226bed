"""The certification core's typed contract: what it asks of the models, and what the features around it plug in.

The core decides a session with a `Certifier` (pipelines/decision/runner.py is the real one) and then hands the
decision to the features registered on ``ServiceContext.hooks`` (a `FeatureHooks`); it never imports a feature.
Features fill the registry once, at start-up (service/features/install.py: ``install_features``), and every
composition root (HTTP app, workers, CLI worker, test fixtures) calls that. A context whose features were never
installed refuses to process or accept a session (`FeaturesNotInstalled`): without the proxy feature a relative's
verification video would certify the relative, so a forgotten install must fail loudly, never accept silently.

The pipelines' types are imported for type checking only: the decision runner pulls in every model library
(≈1.5 s of imports) and the API process, which imports the core, never runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import datetime as dt

    import numpy as np
    from prometheus_client.registry import Collector
    from sqlalchemy.orm import Session

    from pipelines.decision.result import Decision, Outcome
    from pipelines.decision.runner import CertificationReport as CertificationReport
    from pipelines.decision.runner import Template as Template
    from pipelines.face_match import FaceMatcher
    from pipelines.id_card import IdCardResult
    from pipelines.liveness import LightSequence, LivenessResult, VideoFingerprintStore
    from service.certification.context import ServiceContext
    from service.certification.models import Beneficiary, CertSession
    from service.certification.withdrawal_records import KeptWithdrawal


# --- The model pack's roles, as the service calls them -------------------------------------------------------


class LivenessCheck(Protocol):
    """The liveness stage: one video (and the actions asked) → tracked frames, scores and reasons."""

    def check(
        self, video: bytes | Path | str, challenge_actions: Sequence[str] | str | None = None
    ) -> LivenessResult: ...


class CardReader(Protocol):
    """The ID-card reader: one decoded BGR photo → side, fields, number and the problems found, its dates (the birth
    date the number encodes, the validity) judged on `today`, the bureau's date."""

    def read(self, image_bgr: np.ndarray, today: dt.date) -> IdCardResult: ...


class Certifier(Protocol):
    """What processing (and the proxy rules) call to decide a session from its media."""

    # The face matcher itself: proxy_auth compares an operator's template with it at its calibrated thresholds.
    @property
    def matcher(self) -> FaceMatcher: ...

    @property
    def liveness(self) -> LivenessCheck: ...

    def run(
        self,
        card: bytes | np.ndarray,
        video: bytes | Path,
        actions: Sequence[str] | None,
        expected_id_number: str | None = None,
        template: Template | None = None,
        fingerprints: VideoFingerprintStore | None = None,
        today: dt.date | None = None,  # the card's validity is judged on it: the bureau's date the media were sent
        light: LightSequence | None = None,  # the screen-light sequence the capture page showed; None: none issued
    ) -> CertificationReport: ...


# --- What features plug into the core ------------------------------------------------------------------------


class DecisionHook(Protocol):
    """Revises the machine's decision of one session, in the worker, outside any transaction. Returns a new
    Decision (or the one in ``report`` unchanged); never mutates the report."""

    def __call__(
        self, ctx: ServiceContext, session_id: str, certifier: Certifier, report: CertificationReport, /
    ) -> Decision: ...


class DecidedHook(Protocol):
    """Called inside the transaction that applies a machine decision to ``s``. True when an accept was fully
    handled by the feature (the session certifies nobody); False lets the ordinary acceptance go on."""

    def __call__(
        self,
        db: Session,
        ctx: ServiceContext,
        s: CertSession,
        subject: Beneficiary | None,
        outcome: Outcome,
        reasons: list[str],
        new_template: Template | None,
        /,
    ) -> bool: ...


class HoldHook(Protocol):
    """Called inside the transaction that applies a machine decision to ``s``, once the session (and, for an
    accept, its beneficiary) is locked and before the decision is recorded: the (outcome, reasons) to record.
    Returns them unchanged, or holds back a decision the feature's own rows no longer allow: they may have changed
    since its DecisionHook read them outside any transaction (a binding flagged by another session's decision, the
    elder's relative slots filled meanwhile). Locks only rows after the beneficiary (lock_order.py)."""

    def __call__(
        self, db: Session, s: CertSession, subject: Beneficiary | None, outcome: Outcome, reasons: list[str], /
    ) -> tuple[Outcome, list[str]]: ...


class AcceptHook(Protocol):
    """Called whenever a session is accepted (by the machine or by staff), before the cycle is applied. True
    when the session certifies nobody; may raise a ServiceError to refuse the accept outright."""

    def __call__(self, db: Session, s: CertSession, subject: Beneficiary | None, /) -> bool: ...


class CertifiedHook(Protocol):
    """Called in the transaction that certified ``subject`` through session ``s`` (`processing.accept_session`: a
    video accepted by the machine or by staff, a counter or home-visit certification, activity evidence), once the
    certification is recorded. What the feature kept open for the person until they were certified ends there (the
    console closes their open requests for a home visit or a manual review: service/features/console/assist.py).
    Locks nothing it would wait for: the beneficiary is held (lock_order.py)."""

    def __call__(self, db: Session, ctx: ServiceContext, s: CertSession, subject: Beneficiary, /) -> None: ...


class SettleGuard(Protocol):
    """Refuses (raises a ServiceError) a staff decision on ``s`` made outside the feature that holds the case:
    a case a reviewer claimed in the console, or a rejection waiting for a supervisor's second decision there."""

    def __call__(self, db: Session, s: CertSession, /) -> None: ...


class QueueGuard(Protocol):
    """Refuses (raises a ServiceError) the upload that would queue ``s``, in the upload's transaction: the attempt
    counted against what only a feature holds (a relative's verification sessions, which have no beneficiary; a
    binding's failures before its lock). Counts the sessions still awaiting their decision as failures, under a
    lock of the feature's own row, as the core does for the person (``sessions._check_undecided_attempts``)."""

    def __call__(self, db: Session, ctx: ServiceContext, s: CertSession, /) -> None: ...


@dataclass(frozen=True)
class Claim:
    """What a session without a beneficiary verifies (a relative's own real-name verification): the ID number
    the card must carry, and the earlier sessions of the same claimant (their videos are the near-duplicate
    check's "same person"). The daily failure limit of such a session is whom the feature counts it against,
    checked when it opens one (``sessions.create_claim_session``) and, its undecided sessions counted, when an
    upload queues one (the feature's `QueueGuard`)."""

    id_number: str
    peer_sessions: tuple[str, ...] = ()


class ClaimSource(Protocol):
    """The claim of session ``s`` (which has no beneficiary) if this feature opened it, else None."""

    def __call__(self, db: Session, ctx: ServiceContext, s: CertSession, /) -> Claim | None: ...


class Notifier(Protocol):
    """Tells a person about a decision or an outcome a member of staff just made, in the caller's transaction
    (the message exists exactly when the decision does). Returns the number of messages queued."""

    def staff_decision(self, db: Session, s: CertSession) -> int:
        """A staff decision on session ``s`` (accept, reject, or a retake request)."""
        ...

    def request_closed(self, db: Session, request_id: int, openid: str, certified_by: str | None = None) -> int:
        """A citizen's manual-review / home-visit request ``request_id``, asked from ``openid``, was closed.
        ``certified_by``: the session whose certification closed it (a video accepted, by the machine or staff),
        whose own result or staff-decision message may already tell ``openid`` (one event, one message)."""
        ...

    def review_video_purged(self, db: Session, request_id: int, openid: str) -> int:
        """The video an open manual-review request ``request_id``, asked from ``openid``, waited on was deleted by the
        retention purge once the request's hold ended (service/features/console/assist_hold_end.py): the requester
        is told once, whatever how often this is called."""
        ...


class RequesterSource(Protocol):
    """Who asked for these sessions, as one feature records it (the daily failure limits are per requester,
    service/certification/attempts.py): a requester name (``operator:<id>``, ``wechat:<mac8>``) per session id it
    has a record of; the others are left out."""

    def __call__(self, db: Session, ctx: ServiceContext, session_ids: Sequence[str], /) -> dict[str, str]: ...


@dataclass(frozen=True)
class IdentityChange:
    """A roster import gave an existing record another ID number (service/certification/roster.py): a typo
    corrected, or the record handed to another person. Whatever a feature holds for the old number's person
    (a relative's binding) is not the new person's, and a second person must see the change."""

    beneficiary_id: int
    external_id: str
    masked_before: str
    masked_after: str
    name_changed: bool
    import_id: int
    actor: str  # who imported the file


class IdentityChangedHook(Protocol):
    """Called inside the roster import's transaction, once per changed record, after the core dropped the face
    enrolled for the old number and reset the record's validity."""

    def __call__(self, db: Session, change: IdentityChange, /) -> None: ...


@dataclass(frozen=True)
class IdentityConfirmed:
    """A supervisor (``actor``, not the importer) found that roster import ``import_id`` only corrected the ID
    number of the same person (service/certification/identity_review.py): what the change ended for the
    record's old person is theirs again."""

    beneficiary_id: int
    external_id: str
    import_id: int
    actor: str


class IdentityConfirmedHook(Protocol):
    """Called in the confirmation's transaction, after the core restored the record's validity; the counts of
    what the feature gave back (and of what it could not)."""

    def __call__(self, db: Session, confirmed: IdentityConfirmed, /) -> dict[str, int]: ...


class UpkeepHook(Protocol):
    """A feature's share of the daily upkeep (run with the storage upkeep: the cycle run, Celery beat), in its own
    transaction, as of ``at``; returns what it did as counts."""

    def __call__(self, ctx: ServiceContext, at: dt.datetime, /) -> dict[str, int]: ...


class ReapplyHook(Protocol):
    """A feature's withdrawal (of a kind it records: service/certification/withdrawal_records.py) done again by
    `pension-cert console record-restore`, after a restore from a dump older than it, through the feature's own
    service function, in the command's transaction, audited with ``withdrawal.detail()`` added (the event id it
    carries). False: nothing left to do (what it acts on is not in the restored database, or ended already)."""

    def __call__(self, db: Session, ctx: ServiceContext, withdrawal: KeptWithdrawal, /) -> bool: ...


class RevokedHook(Protocol):
    """Called in the transaction of a revocation asked for outside the console (service/certification/
    revoke_request.py: the operator API, `pension-cert revoke`), once the core revoked the certification of session
    ``session_id`` as ``actor`` (``target``: the person's external id, for the feature's audit); not again for a
    retried request. What the console's own revocation does besides the core's (service/features/console/revoke.py),
    done whichever route revoked."""

    def __call__(self, db: Session, session_id: str, actor: str, target: str, /) -> None: ...


class OpenCaseSource(Protocol):
    """A feature's open requests that wait for the office (a citizen's request for a home visit or a manual review:
    service/features/console/assist.py), for those of ``beneficiary_ids`` who have one: ``(beneficiary_id,
    filed_at)`` per request (naive UTC). The cycle's one "made in time" rule (cycle.being_decided) shelters a person
    whose request was filed in the lapsed validity, as it shelters a video waiting for staff (docs/security.md)."""

    def __call__(self, db: Session, beneficiary_ids: Sequence[int], /) -> Iterable[tuple[int, dt.datetime]]: ...


class KeptMediaSource(Protocol):
    """Which of the sessions ``session_ids`` (final, past the retention period) a feature's open request still waits
    on as of ``now`` (naive UTC: the purge's own time): staff owe the person a look at that video (a request for a
    manual review, 人工审核: service/features/console/assist_video.py), for a bounded time (the feature's setting,
    read from ``ctx``). The retention purge (service/certification/retention.py) keeps their media until no installed
    feature names them; the first run after that takes them."""

    def __call__(
        self, db: Session, ctx: ServiceContext, session_ids: Sequence[str], now: dt.datetime, /
    ) -> Iterable[str]: ...


class RevocationKeptSource(Protocol):
    """Which of the accounts ``openids`` a revocation of person ``beneficiary_id``'s certification is not for (the
    maker of a revoked session, a relative whose binding is locked or flagged: service/features/wechat/
    relatives_told.py, the rule of the revocation's own notice). The console reopens the requests a revoked
    certification had answered (service/features/console/assist.py) for the other requesters only."""

    def __call__(self, db: Session, beneficiary_id: int, openids: Collection[str], /) -> set[str]: ...


class PersonHashSource(Protocol):
    """The ID-number look-up hash a feature's rows already carry for a person, among ``hashes`` (the number's under
    every signing key in use, the current one first); None when they carry none. A roster row created while a
    previous signing key is listed takes it: one hash per person until `pension-cert rekey` moves them all
    (docs/security.md, Part AH)."""

    def __call__(self, db: Session, hashes: tuple[str, ...], /) -> str | None: ...


class FeaturesNotInstalled(RuntimeError):
    """A composition root built a context and forgot ``install_features``: a wiring bug, not a user error."""


@dataclass
class FeatureHooks:
    """The registry on ``ServiceContext.hooks``. Hooks are keyed by name (installing twice replaces, never
    doubles) and run in registration order."""

    decision: dict[str, DecisionHook] = field(default_factory=dict)
    holds: dict[str, HoldHook] = field(default_factory=dict)
    decided: dict[str, DecidedHook] = field(default_factory=dict)
    accept: dict[str, AcceptHook] = field(default_factory=dict)
    certified: dict[str, CertifiedHook] = field(default_factory=dict)  # after the certification is recorded
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    requesters: dict[str, RequesterSource] = field(default_factory=dict)  # the first that knows a session wins
    claims: dict[str, ClaimSource] = field(default_factory=dict)  # the first that knows a session wins
    settle_guards: dict[str, SettleGuard] = field(default_factory=dict)
    queue_guards: dict[str, QueueGuard] = field(default_factory=dict)
    identity_changes: dict[str, IdentityChangedHook] = field(default_factory=dict)
    identity_confirmations: dict[str, IdentityConfirmedHook] = field(default_factory=dict)
    upkeep: dict[str, UpkeepHook] = field(default_factory=dict)
    reapply: dict[str, ReapplyHook] = field(default_factory=dict)  # keyed by the withdrawal's audit action
    revocations: dict[str, RevokedHook] = field(default_factory=dict)
    person_hashes: dict[str, PersonHashSource] = field(default_factory=dict)  # the first that knows one wins
    open_cases: dict[str, OpenCaseSource] = field(default_factory=dict)  # cycle.being_decided reads them all
    kept_media: dict[str, KeptMediaSource] = field(default_factory=dict)  # the retention purge reads them all
    revocation_kept: dict[str, RevocationKeptSource] = field(default_factory=dict)  # all asked, their union
    gauges: dict[str, Collector] = field(default_factory=dict)  # a feature's gauges, added to /metrics at scrape time
    installed: bool = False

    def mark_installed(self) -> None:
        """The composition root has registered every feature it runs with (possibly none)."""
        self.installed = True

    def require_installed(self) -> FeatureHooks:
        if not self.installed:
            raise FeaturesNotInstalled(
                "no features installed on this ServiceContext: call service.features.install.install_features(ctx)"
            )
        return self

    def case_sources(self) -> tuple[OpenCaseSource, ...]:
        """The installed features' open requests, what the cycle's rule reads beside the sessions (`cases` of
        cycle.run_cycle and cycle.states_of)."""
        return tuple(self.require_installed().open_cases.values())

    def media_kept(self, db: Session, ctx: ServiceContext, session_ids: Sequence[str], now: dt.datetime) -> set[str]:
        """Those of ``session_ids`` whose media an installed feature still waits on as of ``now`` (KeptMediaSource),
        all asked. Refused on a context without features: its purge would delete the video a request waits on."""
        sources = self.require_installed().kept_media.values()
        return {sid for source in sources for sid in source(db, ctx, session_ids, now)} if session_ids else set()

    def revise(
        self, ctx: ServiceContext, session_id: str, certifier: Certifier, report: CertificationReport
    ) -> CertificationReport:
        """The report with the decision every DecisionHook revised in turn (a new report; ``report`` is kept)."""
        for hook in self.require_installed().decision.values():
            report = dataclasses.replace(report, decision=hook(ctx, session_id, certifier, report))
        return report

    def hold(
        self, db: Session, s: CertSession, subject: Beneficiary | None, outcome: Outcome, reasons: list[str]
    ) -> tuple[Outcome, list[str]]:
        """The decision to record for ``s``, every HoldHook given the previous one's (in the applying transaction)."""
        for hook in self.require_installed().holds.values():
            outcome, reasons = hook(db, s, subject, outcome, reasons)
        return outcome, reasons

    def claim(self, db: Session, ctx: ServiceContext, s: CertSession) -> Claim | None:
        """The claim of a session without a beneficiary (None: no installed feature knows it)."""
        for source in self.require_installed().claims.values():
            found = source(db, ctx, s)
            if found is not None:
                return found
        return None

    def person_hash(self, db: Session, hashes: tuple[str, ...]) -> str | None:
        """The hash a feature's rows carry for the person of ``hashes`` (None: none does)."""
        for source in self.require_installed().person_hashes.values():
            found = source(db, hashes)
            if found is not None:
                return found
        return None

    def person_certified(self, db: Session, ctx: ServiceContext, s: CertSession, subject: Beneficiary) -> None:
        """Every feature's share of a certification just recorded (CertifiedHook)."""
        for hook in self.require_installed().certified.values():
            hook(db, ctx, s, subject)

    def check_settle(self, db: Session, s: CertSession) -> None:
        """Every guard may refuse a staff decision on ``s`` taken outside the case's own flow."""
        for guard in self.require_installed().settle_guards.values():
            guard(db, s)

    def check_queue(self, db: Session, ctx: ServiceContext, s: CertSession) -> None:
        """Every guard may refuse the upload that would queue ``s`` (an attempt beyond a feature's limit)."""
        for guard in self.require_installed().queue_guards.values():
            guard(db, ctx, s)

    def identity_changed(self, db: Session, change: IdentityChange) -> None:
        """Every feature ends what it kept for the record's old person (and the console raises its alert)."""
        for hook in self.require_installed().identity_changes.values():
            hook(db, change)

    def identity_confirmed(self, db: Session, confirmed: IdentityConfirmed) -> dict[str, int]:
        """Every feature gives back what it ended for the record's person; their counts merged."""
        counts: dict[str, int] = {}
        for hook in self.require_installed().identity_confirmations.values():
            counts.update(hook(db, confirmed))
        return counts

    def kept_from_revocation(self, db: Session, beneficiary_id: int, openids: Collection[str]) -> set[str]:
        """The accounts among ``openids`` that a revocation of the person's certification is not for, as every
        installed feature knows them (RevocationKeptSource)."""
        if not openids:
            return set()
        sources = self.require_installed().revocation_kept.values()
        return {o for source in sources for o in source(db, beneficiary_id, openids)}

    def revoked(self, db: Session, session_id: str, actor: str, target: str) -> None:
        """Every feature's share of a revocation asked for outside the console (RevokedHook)."""
        for hook in self.require_installed().revocations.values():
            hook(db, session_id, actor, target)

    def daily_upkeep(self, ctx: ServiceContext, at: dt.datetime) -> dict[str, int]:
        """Each registered feature's daily upkeep, their counts merged. Not refused on a context without features:
        none then has upkeep to do."""
        counts: dict[str, int] = {}
        for hook in self.upkeep.values():
            counts.update(hook(ctx, at))
        return counts

    def staff_decision(self, db: Session, s: CertSession) -> int:
        return sum(n.staff_decision(db, s) for n in self.require_installed().notifiers.values())

    def request_closed(self, db: Session, request_id: int, openid: str, certified_by: str | None = None) -> int:
        notifiers = self.require_installed().notifiers.values()
        return sum(n.request_closed(db, request_id, openid, certified_by) for n in notifiers)

    def review_video_purged(self, db: Session, request_id: int, openid: str) -> int:
        notifiers = self.require_installed().notifiers.values()
        return sum(n.review_video_purged(db, request_id, openid) for n in notifiers)
