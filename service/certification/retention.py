"""Retention: raw media (ID-card photo, video) are deleted a configurable number of days after the final
decision, with the text read off the card photo. Decisions, scores, hashes and audit entries stay; the session
records when its media went; media a supervisor holds as evidence stay until the hold ends
(service/certification/evidence_hold.py), and so do those a feature's open request waits on, for a bounded time (a
manual review's video: contract.KeptMediaSource). The face template of a person recorded as deceased is erased."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.audit_anchor import read_restores, restored_at, write_anchor
from service.certification.context import ServiceContext
from service.certification.media_refs import SESSIONS_PREFIX, referenced
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    SessionState,
    awaiting_staff,
    media_held,
    utcnow,
)
from service.certification.restore_record import kept_split
from service.infra.storage import StorageError, StorageUnavailableError

log = logging.getLogger(__name__)

FINAL_STATES = (SessionState.DECIDED, SessionState.FAILED, SessionState.EXPIRED)
# What OCR read off the card photo (stored in the session's result): once the photo is purged it has no purpose
# left, and the address and ethnicity are held nowhere else in the service. The roster keeps the name and the
# masked number; the decision, its reasons, scores and checks stay.
CARD_TEXT = ("name", "sex", "ethnicity", "birth_date", "address", "issuing_authority")
# The same text among the reader's diagnostics (pipelines/id_card): the birth date as printed, an ethnicity snapped
# to the nearest name ("田→回"), the parts of the address it corrected.
CHECK_TEXT = ("birth_text", "ethnicity_snapped", "address_corrected")
# The purge runs once a day (the daily run from CYCLE_RUN_HOUR, Celery beat's storage upkeep at its UPKEEP_HOUR, each
# on an hourly tick), and the citizens' pages promise the media go within RETENTION_DAYS of the decision
# (h5/templates/certify.html, my_data.html: 认证完成后 30 天内删除). So each run also deletes what would pass the period
# before the next run, a day and the tick's hour ahead; before, media decided just after a run lived a day longer.
PURGE_AHEAD = dt.timedelta(days=1, hours=1)


def expire_sessions(ctx: ServiceContext, now: dt.datetime | None = None) -> int:
    """Open sessions past their lifetime become `expired` (a final state: their media are purged later)."""
    at = now or utcnow()
    with ctx.db() as db:
        # One conditional UPDATE, not rows read then written: an upload that began before the expiry and
        # commits the session QUEUED while this runs (PostgreSQL re-checks the WHERE once that row lock is
        # released) is left queued. Written by primary key, a stored, acknowledged job became "expired": never
        # processed, and its media purged later.
        res = db.execute(
            update(CertSession)
            .where(CertSession.state == SessionState.OPEN, CertSession.expires_at < at)
            .values(state=SessionState.EXPIRED, decided_at=at)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(res, "rowcount", 0) or 0)


def purge_media(ctx: ServiceContext, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Delete the media of every session finally decided more than `retention_days` ago, or that will be before the
    next daily run (`PURGE_AHEAD`; never later than ``now``) — never of a case awaiting staff, nor media a
    supervisor's hold keeps as evidence (service/certification/evidence_hold.py), nor the video an open request
    asks staff to watch (`_kept`) — ``batch`` sessions per transaction until none is left. Idempotent; returns the
    count.

    All of them, not one batch a day: a province decides far more than 500 sessions a day, and media left past
    the retention period are biometric data kept without a purpose."""
    now = now or utcnow()
    cutoff = min(now, now - dt.timedelta(days=ctx.settings.storage.retention_days) + PURGE_AHEAD)
    total = refused = 0
    after = ""  # session ids in ascending order, each looked at once per run (a refused one is not asked again)
    while True:
        batch_run = _purge_batch(ctx, cutoff, now, batch, after)
        total, refused, after = total + batch_run.purged, refused + batch_run.refused, batch_run.last_id
        if batch_run.selected < batch:
            break
    log.info("retention: purged media of %d sessions decided before %s", total, cutoff.date())
    if refused:
        log.error("ALERT retention: the media store refused to delete the media of %d sessions", refused)
    return total


@dataclass(frozen=True)
class _BatchRun:
    selected: int
    purged: int
    refused: int
    last_id: str


def _purge_batch(ctx: ServiceContext, cutoff: dt.datetime, now: dt.datetime, batch: int, after: str) -> _BatchRun:
    """One transaction: up to ``batch`` sessions (ids after ``after``) whose media are deleted and marked purged
    (audited). A session whose media the store refuses to delete is left unmarked (the next run tries again) and
    the others go on: one such object used to end every run at it. Paged by id, so the refused ones are not read
    again in this run, however many there are."""
    purged = refused = 0
    with ctx.db() as db:
        sessions = db.scalars(
            select(CertSession)
            .where(
                CertSession.state.in_([s.value for s in FINAL_STATES]),
                CertSession.media_purged_at.is_(None),
                CertSession.decided_at.is_not(None),
                CertSession.decided_at < cutoff,
                ~awaiting_staff(),
                ~media_held(now),
                CertSession.id > after,
            )
            .order_by(CertSession.id)
            .limit(batch)
            # Rows another transaction holds (a second purge run at once: Celery beat and the cycle run; a staff
            # decision) are left to the next run: each session is purged, and counted in the audit, once.
            # (SQLite serialises transactions; it renders no FOR UPDATE.)
            .with_for_update(skip_locked=True)
        ).all()
        kept = _kept(ctx, db, [s.id for s in sessions], now)
        for s in sessions:
            if s.id in kept:
                continue
            if not _delete_media(ctx, s):
                refused += 1
                continue
            s.media_purged_at = now
            s.result = without_card_text(s.result)
            purged += 1
        if purged:
            audit(db, "system", "retention.purge", cutoff.date().isoformat(), {"sessions": purged})
    return _BatchRun(len(sessions), purged, refused, sessions[-1].id if sessions else after)


def _kept(ctx: ServiceContext, db: Session, ids: list[str], now: dt.datetime) -> set[str]:
    """Which of the sessions just locked keep their media, besides the selection's own rule (`awaiting_staff`):
    a hold in force (`_held_now`), and a video a feature's open request waits on (FeatureHooks.media_kept: a
    request for a manual review, 人工审核, promises the person that staff watch it and that they need not film
    again; purged, the review had nothing to look at). Kept while the request is open, for a bounded time (the
    feature's: REVIEW_VIDEO_HOLD_DAYS), taken by the first run after it is closed or that time is over. A request
    stored after this read waits for these rows' locks and finds the media gone (assist_video.hold_video)."""
    return _held_now(db, ids, now) | ctx.hooks.media_kept(db, ctx, ids, now)


def _held_now(db: Session, ids: list[str], now: dt.datetime) -> set[str]:
    """Which of the sessions just locked a hold keeps, read again now that their rows are locked (PostgreSQL: a
    new statement sees every hold committed before the locks were taken). The selection's own condition was read
    from the statement's start: a hold committed while it ran, on a row it then locked, was not in it. A hold
    placed after the locks waits for this transaction and finds the media purged (evidence_hold.place_hold)."""
    if not ids:
        return set()
    return set(db.scalars(select(CertSession.id).where(CertSession.id.in_(ids), media_held(now))).all())


def _delete_media(ctx: ServiceContext, s: CertSession) -> bool:
    """Delete the session's media; False when the store refused one (logged)."""
    return all(_delete(ctx, key) is not None for key in (s.id_card_key, s.video_key) if key)


def _delete(ctx: ServiceContext, key: str) -> bool | None:
    """``storage.delete``, or None when the store refused (logged: left for the next run). A store that does not
    answer (``StorageUnavailableError``) ends the run instead: every other deletion would wait for it in turn."""
    try:
        return ctx.storage.delete(key)
    except StorageUnavailableError:
        raise
    except StorageError as exc:
        log.warning("retention: %s not deleted, left for the next run: %s", key, exc)
        return None


def without_card_text(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored result with the card's OCR'd personal fields emptied (a new dict: the JSON column is saved)."""
    card = (result or {}).get("id_card")
    if result is None or not isinstance(card, dict):
        return result
    emptied = {**card, **dict.fromkeys(CARD_TEXT)}
    checks = card.get("checks")
    if isinstance(checks, dict):
        emptied["checks"] = {**checks, **dict.fromkeys(k for k in CHECK_TEXT if k in checks)}
    return {**result, "id_card": emptied}


def erase_templates_of_the_deceased(ctx: ServiceContext) -> int:
    """Erase the enrolled face template of everyone recorded as deceased (by staff or by the roster): nobody will
    certify as them again, so the biometric has no purpose left. Each erasure is audited; returns the count."""
    with ctx.db() as db:
        dead = db.scalars(
            select(Beneficiary).where(
                Beneficiary.status == BeneficiaryStatus.DECEASED, Beneficiary.template.is_not(None)
            )
        ).all()
        for b in dead:
            b.template, b.template_model = None, None
            audit(db, "system", "retention.template", b.external_id, {"reason": "deceased"})
    if dead:
        log.info("retention: erased the face templates of %d deceased beneficiaries", len(dead))
    return len(dead)


def sweep_orphans(ctx: ServiceContext, now: dt.datetime | None = None) -> int:
    """Delete stored media that no session row points to, once older than `orphan_grace_s`.

    An upload writes the object first and commits the row after: a crash between the two, or a commit that
    failed after the write, leaves an object nothing refers to. The grace period keeps an upload in flight (object
    written, row not yet committed) from being taken for an orphan. Returns the count deleted.

    After a database restore (recorded: restore_record.record_restore) the objects no row pointed to then are mostly
    the media of sessions the restore lost, the only record that those people certified (or evidence a lost hold
    kept): the record names them, and they are kept until `retention_days` after the first restore that named
    them, by key (a rekey writes every object anew: their modified time says nothing), then swept as any orphan.
    While a record or a chunk of its kept keys does not read, no session media are deleted (an ERROR each run).
    """
    at = now or utcnow()
    cutoff = at - dt.timedelta(seconds=ctx.settings.storage.orphan_grace_s)
    kept = _kept_after_restores(ctx, at)
    removed = 0
    with ctx.db() as db:
        for obj in ctx.storage.list(SESSIONS_PREFIX) if kept is not None else ():  # None: unknown, logged
            if obj.modified >= cutoff or kept is None or obj.key in kept:
                continue
            if not referenced(db, obj.key) and _delete(ctx, obj.key):
                removed += 1
        removed += ctx.storage.remove_partial_writes(cutoff)
        if removed:
            audit(db, "system", "retention.orphans", cutoff.isoformat(), {"objects": removed})
    log.info("retention: removed %d orphaned media objects older than %s", removed, cutoff)
    return removed


def _kept_after_restores(ctx: ServiceContext, now: dt.datetime) -> set[str] | None:
    """The objects a recorded restore named, within `retention_days` of the first restore naming each (one window
    per object: a later restore does not stretch it). A key a rewrite kept only on a guess (restore_rewrite.py)
    never ends the window of a restore that named it, and is kept for the latest restore guessing it. None when a
    record or a chunk of kept keys does not read: which media a restore lost is unknown, so the sweep deletes no
    session media that run (`verify-audit` fails on the same object)."""
    first: dict[str, dt.datetime] = {}
    guessed: dict[str, dt.datetime] = {}
    try:
        for r in read_restores(ctx.storage):  # oldest first
            named, guesses = kept_split(ctx.storage, r)  # in chunk objects of their own (restore_record.py)
            for key in named:
                first.setdefault(key, restored_at(r))
            guessed.update(dict.fromkeys(guesses, restored_at(r)))
    except StorageUnavailableError:
        raise
    except StorageError as exc:  # forged, edited or missing: no session media deleted on a guess
        log.error(
            "retention: a restore record or its kept keys do not read (%s): nothing under sessions/ deleted "
            "this run; put the object back (`pension-cert console verify-audit` names it)",
            exc,
        )
        return None
    window = dt.timedelta(days=ctx.settings.storage.retention_days)
    return {key for key, when in (guessed | first).items() if when + window > now}


def storage_upkeep(ctx: ServiceContext, at: dt.datetime | None = None) -> dict[str, int]:
    """The daily store work: media past retention purged (as of ``at``, default now), orphaned media removed, the
    templates of the deceased erased, the audit chain anchored. Run by the daily cycle run and by Celery beat
    (`pension_cert.storage_upkeep`), so the purge happens even where nobody runs the cycle; all idempotent."""
    purged = purge_media(ctx, at)
    removed = sweep_orphans(ctx)  # on the real clock: the grace protects uploads in flight now
    erased = erase_templates_of_the_deceased(ctx)
    # The features' daily work (pending proxy bindings past their consent window expire), before the anchor.
    features = ctx.hooks.daily_upkeep(ctx, at or utcnow())
    with ctx.db() as db:
        anchor = write_anchor(db, ctx.storage)
    return {
        "media_purged": purged,
        "media_orphans_removed": removed,
        "templates_erased": erased,
        **features,
        "audit_anchored_seq": anchor.seq if anchor else 0,
    }
