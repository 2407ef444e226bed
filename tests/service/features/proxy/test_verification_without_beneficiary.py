"""Issue 20: a relative's own real-name verification session has no `beneficiaries` row.

What it verifies is a `ProxyClaim` (the claimed ID number, encrypted; hash, masked form, name); the worker checks
the card against that number, an accept verifies the operator and certifies nobody, failures count against the
operator with the ordinary daily limit, the case shows in the review queue and staff can settle it, retention
purges its media, and the claimed number stays free for a roster import.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.decision.result import Outcome
from pipelines.reasons import ReasonCode
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.errors import ServiceError
from service.certification.fingerprints import SessionFingerprints
from service.certification.models import (
    AuditEntry,
    Beneficiary,
    Certification,
    CertSession,
    SessionState,
    VideoFingerprint,
    utcnow,
)
from service.certification.processing import claim, process
from service.certification.retention import purge_media
from service.certification.review import settle
from service.certification.roster import import_roster
from service.features.console.review_queue import list_queue
from service.features.proxy.models import ProxyClaim, ProxyOperator
from service.features.proxy.sessions import claim_of, open_verification, verification_attempts_left
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.test_roster import TERMS, to_csv

NAME = "李建国"


def new_operator(db: Session) -> ProxyOperator:
    op = ProxyOperator(id=str(uuid.uuid4()), channel="wechat", channel_hash=uuid.uuid4().hex, token_hash="-")
    db.add(op)
    db.flush()
    return op


def opened(ctx: ServiceContext, number: str, op_id: str | None = None, name: str = NAME) -> tuple[str, str]:
    """(operator id, session id) of a queued verification session of ``number`` (a new operator unless given)."""
    with ctx.db() as db:
        op = db.get(ProxyOperator, op_id) if op_id else new_operator(db)
        assert op is not None
        s = open_verification(db, ctx, op, number, name, consent=True).session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        s.state, s.queued_at = SessionState.QUEUED, utcnow()
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        db.add(VideoFingerprint(sha256=uuid.uuid4().hex, session_id=s.id, beneficiary_id=s.beneficiary_id))
        return op.id, s.id


def decided(ctx: ServiceContext, sid: str, certifier: FixedCertifier) -> CertSession:
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, certifier), sid, "w1")
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.state == SessionState.DECIDED
        return s


def count(db: Session, model: type[object]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_a_verification_session_creates_no_beneficiary_row(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101", birth=dt.date(1975, 8, 9))
    op_id, sid = opened(ctx, number)
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        row = db.get(ProxyClaim, sid)
        assert s is not None and s.beneficiary_id is None and count(db, Beneficiary) == 0
        assert row is not None and (row.operator_id, row.id_hash, row.name) == (
            op_id,
            ctx.keyring.id_hash(number),
            NAME,
        )
        assert number not in row.id_enc and row.id_masked == number[:4] + "*" * 10 + number[-4:]
        fp = db.scalar(select(VideoFingerprint).where(VideoFingerprint.session_id == sid))
        assert fp is not None and fp.beneficiary_id is None
        created = db.scalar(select(AuditEntry).where(AuditEntry.action == "session.create", AuditEntry.target == sid))
        assert created is not None and created.detail["beneficiary"] is None


def test_it_is_processed_against_the_claimed_number_and_certifies_nobody(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101")
    op_id, sid = opened(ctx, number)
    certifier = FixedCertifier(Outcome.ACCEPT)
    s = decided(ctx, sid, certifier)
    assert certifier.expected == [number] and s.decision == "accept"
    with ctx.db() as db:
        op = db.get(ProxyOperator, op_id)
        assert op is not None and op.person_hash == ctx.keyring.id_hash(number) and op.verified_at is not None
        assert (op.name, op.id_masked) == (NAME, number[:4] + "*" * 10 + number[-4:])
        assert count(db, Certification) == 0 and count(db, Beneficiary) == 0


def test_the_near_duplicate_check_compares_with_the_claimants_earlier_videos(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101")
    op_id, first = opened(ctx, number)
    _, second = opened(ctx, number, op_id)
    _, stranger = opened(ctx, factories.id_number(region="110101"))
    with ctx.db() as db:
        s = db.get(CertSession, second)
        assert s is not None
        found = claim_of(db, ctx, s)
        assert found is not None and found.id_number == number and found.peer_sessions == (first,)
        digest = db.scalar(select(VideoFingerprint.sha256).where(VideoFingerprint.session_id == first))
        other = db.scalar(select(VideoFingerprint.sha256).where(VideoFingerprint.session_id == stranger))
    assert digest is not None and other is not None
    store = SessionFingerprints(ctx, second, None, found.peer_sessions)
    assert store.seen(digest, []) and not store.seen(other, [])  # the stranger's video is not the claimant's


def test_failures_count_against_the_operator(ctx: ServiceContext) -> None:
    limit = ctx.settings.certification.failures_per_day
    number = factories.id_number(region="110101")
    op_id, sid = opened(ctx, number)
    for _ in range(limit):
        assert decided(ctx, sid, FixedCertifier(Outcome.REJECT)).decision == "reject"
        with ctx.db() as db:
            left = verification_attempts_left(db, ctx, op_id)
        if left:
            op_id, sid = opened(ctx, number, op_id)
    assert left == 0
    with ctx.db() as db, pytest.raises(ServiceError) as refused:
        op = db.get(ProxyOperator, op_id)
        assert op is not None
        open_verification(db, ctx, op, number, NAME, consent=True)
    assert refused.value.code == ReasonCode.ATTEMPTS_EXCEEDED
    opened(ctx, number)  # another relative's account is not blocked by this one's failures


def test_a_verification_sent_to_review_is_queued_and_settled_by_staff(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101")
    op_id, sid = opened(ctx, number)
    assert decided(ctx, sid, FixedCertifier(Outcome.REVIEW)).decision == "review"
    with ctx.db() as db:
        [item] = [it for it in list_queue(db).items if it.session.id == sid]
        assert item.beneficiary is None and (item.person.name, item.person.id_masked) == (
            NAME,
            number[:4] + "*" * 10 + number[-4:],
        )
        s = db.get(CertSession, sid)
        assert s is not None
        settled = settle(db, ctx, s, "accept", "rev1", "本人", "staff:rev1")
        assert settled["decision"] == "accept"
    with ctx.db() as db:
        op = db.get(ProxyOperator, op_id)
        assert op is not None and op.person_hash == ctx.keyring.id_hash(number)
        assert count(db, Certification) == 0 and not [it for it in list_queue(db).items if it.session.id == sid]


def test_retention_purges_a_verification_sessions_media(ctx: ServiceContext) -> None:
    _, sid = opened(ctx, factories.id_number(region="110101"))
    decided(ctx, sid, FixedCertifier(Outcome.REJECT))
    later = utcnow() + dt.timedelta(days=ctx.settings.storage.retention_days + 1)
    assert purge_media(ctx, later) >= 1
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.media_purged_at is not None
        assert not ctx.storage.exists(f"sessions/{sid}/video")


def test_a_roster_import_of_the_relatives_number_creates_a_normal_beneficiary(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101", birth=dt.date(1975, 8, 9))
    _, sid = opened(ctx, number)
    csv = to_csv([["P-REL-1", number, NAME, "", "survivor_pension", "", ""]])
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", csv, "test", TERMS)
        assert (report.created, report.updated, report.rejected) == (1, 0, [])
    with ctx.db() as db:
        [b] = db.scalars(select(Beneficiary)).all()
        assert (b.external_id, b.status, b.benefit_types) == ("P-REL-1", "active", ["survivor_pension"])
        assert b.id_hash == ctx.keyring.id_hash(number)
        s = db.get(CertSession, sid)
        assert s is not None and s.beneficiary_id is None  # the verification stays the relative's claim


def test_opening_a_claim_says_nothing_about_the_roster(ctx: ServiceContext) -> None:
    # Before: a roster number under another name was refused at once (ID_FIELDS_INCONSISTENT), so any account
    # learnt which numbers are on the roster. Now the claim opens alike; the name is checked at the decision.
    listed = factories.id_number(region="110101", birth=dt.date(1948, 2, 3))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=listed, name="王桂兰")
    _, wrong = opened(ctx, listed)  # NAME is not the roster's name
    _, free = opened(ctx, factories.id_number(region="110101"))
    with ctx.db() as db:
        states = [db.scalar(select(CertSession.state).where(CertSession.id == sid)) for sid in (wrong, free)]
    assert states == [SessionState.QUEUED, SessionState.QUEUED]
    # The card carried the number and the face passed: only then is the roster's name compared.
    s = decided(ctx, wrong, FixedCertifier(Outcome.ACCEPT))
    assert s.decision == "reject" and s.reasons == ["ID_FIELDS_INCONSISTENT"]
    assert s.result is not None and s.result["references"] == []
    assert decided(ctx, free, FixedCertifier(Outcome.ACCEPT)).decision == "accept"
    with ctx.db() as db:
        claimant = db.get(ProxyClaim, wrong)
        op = db.get(ProxyOperator, claimant.operator_id) if claimant else None
        assert op is not None and op.verified_at is None


def test_a_failed_card_or_face_does_not_reveal_the_roster_name(ctx: ServiceContext) -> None:
    listed = factories.id_number(region="110101", birth=dt.date(1948, 2, 3))
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, id_number=listed, name="王桂兰")
    _, sid = opened(ctx, listed)
    s = decided(ctx, sid, FixedCertifier(Outcome.REJECT))
    assert s.decision == "reject" and s.reasons == ["FACE_MISMATCH"]  # the same answer as for any number
    # The roster's own name passes.
    op_id, right = opened(ctx, listed, name="王桂兰")
    assert decided(ctx, right, FixedCertifier(Outcome.ACCEPT)).decision == "accept"
    with ctx.db() as db:
        row = db.get(ProxyOperator, op_id)
        assert row is not None and row.verified_at is not None and row.name == "王桂兰"


def test_staff_cannot_accept_a_claim_the_roster_names_otherwise(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101", birth=dt.date(1949, 4, 5))
    op_id, sid = opened(ctx, number)
    assert decided(ctx, sid, FixedCertifier(Outcome.REVIEW)).decision == "review"
    with ctx.db() as db:  # the number reaches the roster under another name while the case waits
        factories.beneficiary(db, ctx.keyring, id_number=number, name="王桂兰")
    with ctx.db() as db, pytest.raises(ServiceError) as refused:
        s = db.get(CertSession, sid)
        assert s is not None
        settle(db, ctx, s, "accept", "rev1", "本人", "staff:rev1")
    assert refused.value.code == ReasonCode.ID_FIELDS_INCONSISTENT
    with ctx.db() as db:
        op = db.get(ProxyOperator, op_id)
        assert op is not None and op.verified_at is None


def test_two_verifications_in_flight_cannot_swap_the_verified_identity(ctx: ServiceContext) -> None:
    mine, theirs = factories.id_number(region="110101"), factories.id_number(region="110101")
    op_id, first = opened(ctx, mine)
    _, second = opened(ctx, theirs, op_id)  # opened before the first was decided
    assert decided(ctx, first, FixedCertifier(Outcome.ACCEPT)).decision == "accept"
    assert decided(ctx, second, FixedCertifier(Outcome.ACCEPT)).decision == "accept"
    with ctx.db() as db:
        op = db.get(ProxyOperator, op_id)
        assert op is not None and op.person_hash == ctx.keyring.id_hash(mine)
        ignored = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.operator.verification_ignored"))
        assert [(e.actor, e.detail["session"]) for e in ignored] == [(f"operator:{op_id}", second)]
        # And no third one: the operator is verified.
        with pytest.raises(ServiceError) as refused:
            open_verification(db, ctx, op, theirs, NAME, consent=True)
    assert refused.value.code == "PROXY_OPERATOR_VERIFIED"
