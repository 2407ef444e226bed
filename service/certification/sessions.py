"""Certification sessions: creation with the action challenge, uploads (idempotent, limited), status.

An upload is acknowledged only after its bytes are fsync'd (encrypted) and the row that points at them is
committed; the job is enqueued after that commit (the database row is the job: a lost message is re-found).
The request around one upload (token, replay, lock, store, commit, then enqueue) is uploads.store_upload,
shared by the session API and the H5 card routes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines.errors import MediaError
from pipelines.liveness import LightSequence, issue_challenge, issue_light_sequence, parse_actions
from pipelines.liveness.light_response import LightRules
from pipelines.liveness.video import probe_video
from pipelines.media import ID_CARD_IMAGE_LIMITS, check_before_decoding, check_parts
from pipelines.reasons import ReasonCode
from pipelines.sniff import accepted_type
from service.certification import attempts
from service.certification.audit import audit
from service.certification.catalog import ServiceCode
from service.certification.context import ServiceContext
from service.certification.errors import NotFoundError, ServiceError
from service.certification.fingerprints import already_uploaded
from service.certification.heartbeat import WORKER_MODES_CHECKED, live_workers
from service.certification.models import (
    Beneficiary,
    BeneficiaryStatus,
    CertSession,
    Channel,
    SessionState,
    UploadKind,
    VideoFingerprint,
    one_of_hashes,
    utcnow,
)
from service.infra.clock import local_day_start
from service.infra.config import UploadSettings
from service.infra.observability import metrics
from service.infra.security import new_token, normalise_id, token_hash
from service.infra.storage import StorageError

log = logging.getLogger(__name__)

# Container signatures: ISO-BMFF ("ftyp" at offset 4: mp4, mov) and EBML (webm, mkv).
VIDEO_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"))


@dataclass(frozen=True)
class NewSession:
    session: CertSession
    token: str


def find_beneficiary(db: Session, ctx: ServiceContext, external_id: str | None, id_number: str | None) -> Beneficiary:
    b: Beneficiary | None = None
    if external_id:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == external_id))
    elif id_number:
        # Under the current signing key or a previous one (a row `pension-cert rekey` has not reached yet).
        numbers = ctx.keyring.id_hashes(normalise_id(id_number))
        b = db.scalar(select(Beneficiary).where(one_of_hashes(Beneficiary.id_hash, numbers)))
    if b is None:
        raise ServiceError(ServiceCode.BENEFICIARY_UNKNOWN, "no such beneficiary")
    return b


def failures_today(db: Session, ctx: ServiceContext, beneficiary_id: int, now: dt.datetime) -> int:
    """Every rejection of the beneficiary today, whoever asked (see service/certification/attempts.py for the
    limits)."""
    return len(attempts.rejected_today(db, ctx.settings, beneficiary_id, now))


def create_session(
    db: Session, ctx: ServiceContext, b: Beneficiary, channel: Channel, consent: bool, actor: str
) -> NewSession:
    now = utcnow()
    if b.status == BeneficiaryStatus.DECEASED:
        raise ServiceError(ReasonCode.BENEFICIARY_DECEASED, "beneficiary is registered as deceased")
    if channel != Channel.STAFF:
        # Counted per requester (`actor`) and, with a higher cap, per beneficiary: a stranger cannot spend the
        # citizen's attempts. Another selfie will not help: the citizen is offered a staff review instead.
        _check_attempts(attempts.failures(db, ctx, b.id, actor, now), ctx)
    return _new_session(db, ctx, b, channel, consent, actor, now)


def create_claim_session(
    db: Session, ctx: ServiceContext, channel: Channel, consent: bool, actor: str, failures: attempts.Failures
) -> NewSession:
    """A session without a beneficiary: it verifies a claim a feature holds (a relative's own real-name
    verification) and certifies nobody. ``failures``: today's failures of whom it counts against (the
    feature's; the limits are the ordinary ones). The feature links the session to its claim (ctx.hooks.claims)."""
    _check_attempts(failures, ctx)
    return _new_session(db, ctx, None, channel, consent, actor, utcnow())


def _check_attempts(failures: attempts.Failures, ctx: ServiceContext) -> None:
    if attempts.limit_reached(failures, ctx):
        raise ServiceError(ReasonCode.ATTEMPTS_EXCEEDED, "daily failures reached", extra={"staff_review": True})


def _check_undecided_attempts(db: Session, ctx: ServiceContext, s: CertSession, now: dt.datetime) -> None:
    """The daily limits again when an upload queues `s`, counting the person's sessions still awaiting their
    decision as failures: sessions opened together each passed the check at creation (no rejection yet), so
    their videos were so many tries beyond FAILURES_PER_DAY. Not for the staff channel. The features' queue guards
    then count what only they hold (a relative's verification sessions have no beneficiary; a binding's lock)."""
    if s.channel == Channel.STAFF:
        return
    if s.beneficiary_id is not None:
        # Uploads queueing two sessions of one person at once would each miss the other: serialised on the
        # person's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers). The order an accept takes.
        db.execute(select(Beneficiary.id).where(Beneficiary.id == s.beneficiary_id).with_for_update())
        _check_attempts(attempts.with_pending(db, ctx, s, now), ctx)
    ctx.hooks.check_queue(db, ctx, s)


def _check_queue_share(db: Session, ctx: ServiceContext, s: CertSession) -> None:
    """One requester's share of the queue: at QUEUED_PER_REQUESTER of the sessions it opened awaiting their
    decision, its next upload that would queue one is refused (429 QUEUE_FULL; the client sends it again later).
    The attempt limits bound a person's sessions, not a key's: one channel key re-sending a batch queued without
    limit, and the workers, oldest first, put every other citizen behind its backlog (review: workload 3).
    Approximate under concurrent uploads of one requester (a few over, never many). Not for the staff channel."""
    cap = ctx.settings.certification.queued_per_requester
    if cap <= 0 or s.channel == Channel.STAFF:
        return
    who = attempts.opener(db, s)
    if who and attempts.undecided_opened_by(db, who, cap) >= cap:
        raise ServiceError("QUEUE_FULL", f"{cap} sessions this requester opened await their decision")


def unused_challenge(db: Session, ctx: ServiceContext, beneficiary_id: int, now: dt.datetime) -> tuple[str, ...] | None:
    """The actions of the person's latest session opened today, if it never received a video.

    A new session gets the same challenge until a video has been sent: opening sessions and dropping them until
    a challenge comes up that a recording made in advance happens to perform would cost nothing otherwise,
    while each video sent is an attempt the daily failure limits count."""
    latest = db.execute(
        select(CertSession.actions, CertSession.video_key)
        .where(
            CertSession.beneficiary_id == beneficiary_id, CertSession.created_at >= local_day_start(ctx.settings, now)
        )
        .order_by(CertSession.created_at.desc(), CertSession.id)
        .limit(1)
    ).first()
    if latest is None or latest.video_key is not None or not latest.actions:
        return None
    return tuple(latest.actions)


def _new_session(
    db: Session,
    ctx: ServiceContext,
    b: Beneficiary | None,
    channel: Channel,
    consent: bool,
    actor: str,
    now: dt.datetime,
) -> NewSession:
    challenge = issue_challenge(ttl_s=ctx.settings.certification.challenge_ttl_s, now=now.replace(tzinfo=dt.UTC))
    if ctx.settings.certification.challenge_actions:
        challenge = dataclasses.replace(challenge, actions=parse_actions(ctx.settings.certification.challenge_actions))
    elif b is not None:
        unused = unused_challenge(db, ctx, b.id, now)
        if unused is not None:
            challenge = dataclasses.replace(challenge, actions=unused)
    token = new_token()
    s = CertSession(
        id=str(uuid.uuid4()),
        beneficiary_id=b.id if b is not None else None,
        channel=channel.value,
        token_hash=token_hash(token),
        actions=list(challenge.actions),
        light=_light_sequence(ctx),
        nonce=challenge.nonce,
        nonce_expires_at=challenge.expires_at.astimezone(dt.UTC).replace(tzinfo=None),
        expires_at=now + dt.timedelta(seconds=ctx.settings.certification.session_ttl_s),
        template_consent=consent,
        state=SessionState.OPEN,
    )
    db.add(s)
    db.flush()
    subject = b.external_id if b is not None else None
    audit(db, actor, "session.create", s.id, {"beneficiary": subject, "channel": channel.value})
    return NewSession(s, token)


def _light_sequence(ctx: ServiceContext) -> dict[str, Any] | None:
    """A fresh screen-light sequence for a new session (docs/wechat.md, "The screen-light challenge"); None when
    PENSION_CERT_LIGHT_CHALLENGE is off.

    Drawn anew for every session, never reused as `unused_challenge` reuses the actions: a sequence kept until a
    video is sent could be seen in one session and a replay tinted for it offline before the next. Fishing for a
    sequence a replay was tinted for in advance, by opening sessions, is what the size of the space answers
    (`pipelines.liveness.light.sequence_count`: about two million, a year of opens at the per-person rate limit)."""
    if ctx.settings.certification.light_challenge == "off":
        return None
    return issue_light_sequence().to_dict()


def light_of(s: CertSession) -> LightSequence | None:
    """The session's screen-light sequence: the one reader of the stored value, for the API's answers
    (`light_challenge`), the worker and the case page alike, so a form one of them reads (colours only, default
    timing) is read the same by all. None when it was issued none, or when the stored value is not a sequence (a row
    edited by hand, a later version's form), never an error: the session's answers and its
    job go on, and the worker decides what an unread sequence means (processing._unchecked_light)."""
    if s.light is None:
        return None
    try:
        return LightSequence.from_dict(s.light)
    except (ValueError, TypeError, AttributeError):
        return None


def light_challenge(ctx: ServiceContext, s: CertSession) -> dict[str, Any] | None:
    """`challenge.light` as every answer gives it (the session's status, the routes that open one): the stored
    sequence read back by `light_of`, in the page's form, and `enforced`, whether a pass needs the face to follow it
    (LIGHT_CHALLENGE enforce, as the workers' certifier is built): a page that cannot show the colours (the phone's
    camera app) then offers the help path instead; `record_after_ms`, how long the take goes on after the last colour.
    None: none issued, or unreadable (nothing the page could show)."""
    sequence = light_of(s)
    if sequence is None:
        return None
    # The analysis reads the frames up to pad_s after the last colour (its drift fit, a camera's latency): a take
    # cut when the last colour ends on the page's clock would hold none of them.
    after_ms = round(LightRules.load().pad_s * 1000)
    enforced = ctx.settings.certification.light_challenge == "enforce"
    return {**sequence.to_dict(), "record_after_ms": after_ms, "enforced": enforced}


def get_session(db: Session, session_id: str, for_update: bool = False) -> CertSession:
    # Uploads lock the row: two uploads of one session never interleave (PostgreSQL row lock).
    s = db.get(CertSession, session_id, with_for_update=for_update)
    if s is None:
        raise NotFoundError("session")
    return s


def token_expires_at(s: CertSession, ttl_s: int) -> dt.datetime:
    """When the session token stops working, for every use: uploads, status polling, the result, the
    certificate, the H5 link. While the session takes uploads, that is the session's own expiry; once it is
    queued, `ttl_s` (SESSION_TTL_S) after queuing, so that the citizen who uploaded at the last minute can
    still poll and read the decision. Fixed from then on: a later decision or staff review never renews it."""
    if s.queued_at is None:
        return s.expires_at
    return max(s.expires_at, s.queued_at + dt.timedelta(seconds=ttl_s))


def check_token(s: CertSession, token: str | None, ttl_s: int, now: dt.datetime | None = None) -> None:
    """The bearer token of this session, and still within its lifetime (`token_expires_at`): 401 otherwise,
    UNAUTHORIZED for a missing or wrong token, TOKEN_EXPIRED for the right one too late (no data either way)."""
    if not token or token_hash(token) != s.token_hash:
        raise ServiceError("UNAUTHORIZED", "session token missing or wrong")
    if (now or utcnow()) >= token_expires_at(s, ttl_s):
        raise ServiceError("TOKEN_EXPIRED", "session token expired: open a new session")


def _check_image(data: bytes) -> None:
    try:
        check_parts(data)  # a JPEG's segments and scans, a PNG's chunks: before Pillow reads them, one call each
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
            # The pipeline's header checks (format, pixels), before decoding it in full below.
            check_before_decoding(img, ID_CARD_IMAGE_LIMITS)
    except Image.DecompressionBombError as exc:  # raised from the header alone; was a 500 (found by the bomb tests)
        raise ServiceError(ReasonCode.MEDIA_TOO_LARGE, "image dimensions too large") from exc
    except MediaError as exc:
        raise ServiceError(exc.reason, exc.detail) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ServiceError(ReasonCode.MEDIA_CORRUPT, "not a readable image") from exc
    # verify() reads no JPEG pixels: a photo cut short in transit passed it, was queued, and its MEDIA_CORRUPT
    # rejection then counted as one of the citizen's daily failures. Decode it in full now (a truncated image
    # raises here, as it would in the pipeline); tens of milliseconds for a phone photo.
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ServiceError(ReasonCode.MEDIA_CORRUPT, "truncated or damaged image") from exc


def _check_video(data: bytes) -> None:
    if not any(data[off : off + len(magic)] == magic for off, magic in VIDEO_MAGIC):
        raise ServiceError(ReasonCode.MEDIA_CORRUPT, "not an MP4/MOV/WebM container")


def _probe_video(data: bytes) -> None:
    """What the worker's video intake would refuse from the container alone (cut short, damaged start, too long
    or short, unsupported codec) is refused now, with its reason code: never queued, so never a rejection that
    counts as one of the citizen's daily failures. Milliseconds: only the first frames are decoded."""
    try:
        probe_video(data)
    except MediaError as exc:
        raise ServiceError(exc.reason, exc.detail or str(exc)) from exc


def upload(
    db: Session,
    ctx: ServiceContext,
    s: CertSession,
    kind: UploadKind,
    data: bytes,
    content_type: str,
    request_id: str,
    nonce: str | None = None,
    arrived_at: dt.datetime | None = None,
) -> bool:
    """Store one upload. Returns True when it queued the session (the caller enqueues after commit).

    Re-sending the same request id with the same content is answered as before without storing anything again;
    the same request id with other content is refused (409 IDEMPOTENCY_MISMATCH), never silently dropped.
    `arrived_at`: when the server began receiving the upload (its clock, never the client's; None: now): the
    upload's instant (`began`), the one the challenge's expiry is judged at (`_check_nonce`) and the one stamped as
    `nonce_used_at` and `queued_at`, which the cycle's "made in time" rule reads (docs/security.md Part AU).
    """
    if replayed(s, kind, request_id, data, nonce):
        return False
    card = kind == UploadKind.ID_CARD
    prev_request = s.id_card_request_id if card else s.video_request_id
    if prev_request is not None:
        raise ServiceError("UPLOAD_CONFLICT", f"{kind} already uploaded under another request id")
    if s.state != SessionState.OPEN:
        raise ServiceError("SESSION_STATE", f"session is {s.state}")
    now = utcnow()
    if now > s.expires_at:
        raise ServiceError("SESSION_EXPIRED", "session expired")
    began = _began_at(now, arrived_at)
    settings = ctx.settings
    allowed = settings.uploads.image_types if card else settings.uploads.video_types
    limit = upload_limit(settings.uploads, kind)
    if len(data) > limit:
        raise ServiceError(ReasonCode.MEDIA_TOO_LARGE, f"{len(data)} bytes > {limit}")
    if not data:
        raise ServiceError(ReasonCode.MEDIA_CORRUPT, "empty upload")
    # The bytes say what the upload is (pipelines/sniff.py): the declared content type is only a hint (415 naming it).
    base_type = accepted_type(data, "image" if card else "video", allowed, content_type)
    digest = hashlib.sha256(data).hexdigest()
    if card:
        _check_image(data)
    else:
        _check_video(data)
        _check_nonce(s, nonce, now, began, settings.certification.challenge_ttl_s)
        if already_uploaded(db, digest):  # exact re-uploads only: near-duplicates are the worker's (duplicates.py)
            raise ServiceError(ReasonCode.VIDEO_DUPLICATE, "this video was already submitted")
        _probe_video(data)
    key = f"sessions/{s.id}/{kind}"
    queues = (s.video_key if card else s.id_card_key) is not None
    if queues:
        _check_queue_share(db, ctx, s)  # before the media are stored: nothing kept for a refused upload
    # Media first (atomic, fsync'd; a full disk raises StorageFullError before any row changes), then the row.
    ctx.storage.put(key, data)
    try:
        if queues:  # this upload queues the session: an attempt
            _check_undecided_attempts(db, ctx, s, now)
        if card:
            s.id_card_key, s.id_card_request_id, s.id_card_sha256 = key, request_id, digest
        else:
            s.video_key, s.video_request_id, s.video_sha256 = key, request_id, digest
            s.video_content_type = base_type
            s.nonce_used_at = began
            _record_fingerprint(db, s, digest)
        audit(db, "session:" + s.id[:8], f"upload.{kind}", s.id, {"bytes": len(data), "sha256": digest})
        queued = bool(s.id_card_key and s.video_key)
        if queued:
            s.state = SessionState.QUEUED
            s.queued_at = began  # begun before midnight on the last valid day: made in time (Part AU)
        db.flush()  # database errors (server gone, constraint) surface here, while the media can be removed
    except Exception:
        # The row will not point at the media: remove it rather than leave an orphan (best effort).
        _discard(ctx, key)
        raise
    return queued


def _record_fingerprint(db: Session, s: CertSession, digest: str) -> None:
    """The video's exact fingerprint. The same file sent to another session at the same instant passed
    `already_uploaded` there too (neither was committed); the unique constraint decides, and the loser gets the
    answer a later re-upload gets, not a database error."""
    try:
        with db.begin_nested():
            db.add(VideoFingerprint(sha256=digest, session_id=s.id, beneficiary_id=s.beneficiary_id))
    except IntegrityError as exc:
        raise ServiceError(ReasonCode.VIDEO_DUPLICATE, "this video was already submitted") from exc


# Shown to the citizen when their session is stored but no worker is alive to process it (issue #22, item 7).
DELAYED_MESSAGE = "系统繁忙,视频已保存,稍后出结果"


def processing_outlook(ctx: ServiceContext, alert: bool = False) -> dict[str, str]:
    """What a queued session can expect, for the answer that says it is queued: "normal", or "delayed" with a
    Chinese message when the worker mode expects workers and none has a fresh heartbeat. The media stay stored
    (the job runs when a worker returns; refusing would make the citizen film again and meet VIDEO_DUPLICATE
    or a used nonce). `alert`: the upload that queued it logs an alert and counts the metric (not every poll).
    Empty in WORKER_MODE=none: this API knows of no workers to ask about. Call it after the request's own
    transaction is committed: the heartbeat read is a unit of work of its own."""
    if ctx.settings.workers.worker_mode not in WORKER_MODES_CHECKED:
        return {}
    if live_workers(ctx) > 0:
        return {"processing": "normal"}
    if alert:
        metrics.UPLOADS_DELAYED.inc()
        log.error(
            "ALERT no live worker (heartbeat within %gs): session stored and queued, processing delayed",
            ctx.settings.workers.worker_stale_s,
        )
    return {"processing": "delayed", "message": DELAYED_MESSAGE}


def upload_limit(limits: UploadSettings, kind: UploadKind) -> int:
    """The most bytes an upload of `kind` may have: the API reads no more than this from the request body."""
    return limits.max_image_bytes if kind == UploadKind.ID_CARD else limits.max_video_bytes


def replayed(s: CertSession, kind: UploadKind, request_id: str, data: bytes, nonce: str | None = None) -> bool:
    """True when this upload repeats the one stored under `request_id` (same content: sha256; for the video
    the same nonce too); 409 IDEMPOTENCY_MISMATCH when the key was used for something else; False for a new key."""
    if kind == UploadKind.ID_CARD:
        prev_request, prev_digest, same_nonce = s.id_card_request_id, s.id_card_sha256, True
    else:
        prev_request, prev_digest, same_nonce = s.video_request_id, s.video_sha256, nonce == s.nonce
    if prev_request is None or prev_request != request_id:
        return False
    if prev_digest != hashlib.sha256(data).hexdigest() or not same_nonce:
        raise ServiceError("IDEMPOTENCY_MISMATCH", f"Idempotency-Key already used for a different {kind} upload")
    return True


def _discard(ctx: ServiceContext, key: str) -> None:
    try:
        ctx.storage.delete(key)
    except (OSError, StorageError):
        log.warning("could not remove orphan media %s", key)


def _began_at(now: dt.datetime, arrived_at: dt.datetime | None) -> dt.datetime:
    """The upload's instant (naive UTC, as the rows store it): when the server began receiving the request
    (`arrived_at`, its own clock), never later than `now`; `now` when the caller took no arrival stamp."""
    return now if arrived_at is None else min(arrived_at.astimezone(dt.UTC).replace(tzinfo=None), now)


def _check_nonce(s: CertSession, nonce: str | None, now: dt.datetime, began: dt.datetime, ttl_s: int) -> None:
    """This session's nonce, unused, and the upload begun before the challenge ended: judged at `began` (when
    the server began receiving it), not `now`, so a video started in time on a slow network, or waiting for a free
    API thread, is not refused for the time its body took. Still arriving more than `ttl_s` (CHALLENGE_TTL_S) after
    the challenge's end, it is refused all the same: a body trickled in cannot stretch the time to make a video of
    the actions beyond twice the challenge's lifetime (docs/security.md Part AU)."""
    if not nonce or nonce != s.nonce:
        raise ServiceError(ServiceCode.NONCE_REUSED, "nonce does not belong to this session")
    if s.nonce_used_at is not None:
        raise ServiceError(ServiceCode.NONCE_REUSED, "nonce already used")
    if began > s.nonce_expires_at:
        raise ServiceError(ServiceCode.NONCE_EXPIRED, "challenge expired")
    if now > s.nonce_expires_at + dt.timedelta(seconds=ttl_s):
        raise ServiceError(ServiceCode.NONCE_EXPIRED, f"challenge expired: the upload took too long (over {ttl_s} s)")


def status_view(ctx: ServiceContext, s: CertSession) -> dict[str, object]:
    challenge = {"actions": s.actions, "expires_at": s.nonce_expires_at.isoformat() + "Z"}
    return {
        "session_id": s.id,
        "state": s.state,
        "channel": s.channel,
        "challenge": {**challenge, "light": light_challenge(ctx, s)},
        "uploads": {"id_card": s.id_card_key is not None, "video": s.video_key is not None},
        "decision": s.decision,
        "reasons": s.reasons,
        "decided_at": s.decided_at.isoformat() + "Z" if s.decided_at else None,
    }
