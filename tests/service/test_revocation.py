"""A supervisor revokes a certification found fraudulent afterwards (service/certification/revocation.py).

Before: nothing could revoke an accepted certification. A relative who certified with the dead parent's face (冒领),
or a wrong person accepted on review, kept a certificate that the public check answered valid until its date, a
validity that kept the payment running (the cycle run counted it), and the impostor's face as the template the
next certification is compared with.
"""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from pipelines.decision.runner import Template
from service.adapters.cli.calibrate_cmd import _certified_face_bands
from service.certification.context import ServiceContext
from service.certification.cycle import CycleState, cycle_state, run_cycle
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, Beneficiary, Certification, utcnow
from service.certification.processing import accept_session
from service.certification.revocation import ACTION, Revoked, revoke_certification
from service.infra.clock import local_today
from service.infra.security import new_token, token_hash
from tests.service import factories
from tests.service.adapters.http.test_certificate_check import VERIFY
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)

SUPERVISOR = "staff:sup1"
HOLD_DAYS = 180  # EVIDENCE_HOLD_DAYS (its default): how long a revocation's evidence hold lasts
FACE = Template(np.ones(512, dtype=np.float32) / np.sqrt(512), "test-model")


def _person(ctx: ServiceContext, **fields: object) -> int:
    with ctx.db() as db:
        return factories.beneficiary(db, ctx.keyring, **fields).id


def _certify(
    ctx: ServiceContext, bid: int, on: dt.date, consent: bool = False, tpl: Template | None = None
) -> tuple[int, str]:
    """An accepted self session of `bid` made on `on` (a face template enrolled when `tpl` is given, as the worker
    does with the person's consent): (certification id, session token)."""
    token, now = new_token(), utcnow()
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        s = factories.session_row(
            bid,
            token_hash=token_hash(token),
            expires_at=now + dt.timedelta(hours=1),
            state="decided",
            decision="accept",
            decided_at=now,
            template_consent=consent,
        )
        db.add(s)
        db.flush()
        accept_session(db, ctx, s, b, on, tpl)
        cid = db.scalars(select(Certification.id).where(Certification.session_id == s.id)).one()
        return cid, token


def _revoke(ctx: ServiceContext, cid: int, reason: str = "impersonation", note: str = "民政死亡信息比对") -> Revoked:
    with ctx.db() as db:
        return revoke_certification(db, ctx.rules, cid, reason, note, SUPERVISOR, hold_days=HOLD_DAYS)


def _row(ctx: ServiceContext, bid: int) -> Beneficiary:
    return factories.update(ctx, Beneficiary, bid)


def test_a_revoked_certificate_reads_revoked_and_is_not_served_again(client: TestClient, ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx, name="张秀英")
    cid, token = _certify(ctx, bid, today - dt.timedelta(days=3))
    with ctx.db() as db:
        code = db.get(Certification, cid).code  # type: ignore[union-attr]
    public = TestClient(client.app)
    before = public.get(VERIFY, params={"code": code}).json()
    assert before["status"] == "valid"
    _revoke(ctx, cid, note="家属冒用照片认证，经核实本人已去世")
    answer = public.get(VERIFY, params={"code": code}).json()
    assert answer["valid"] is False and answer["status"] == "revoked"
    assert answer["message"] == "该凭证已被经办机构撤销,已失效"
    # What the check showed before, no more: never why, by whom, nor the note.
    assert set(answer) == set(before)
    assert "冒用" not in str(answer) and "sup1" not in str(answer) and answer.get("name_masked") == "张*英"
    session_id = _session_of(ctx, cid)
    r = client.get(f"/api/v1/sessions/{session_id}/certificate", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "CERTIFICATE_REVOKED"


def _session_of(ctx: ServiceContext, cid: int) -> str:
    with ctx.db() as db:
        return db.get(Certification, cid).session_id  # type: ignore[union-attr]


def test_revoking_the_only_certification_lets_the_next_run_suspend(ctx: ServiceContext) -> None:
    """The fraud resumed nothing here: the person was overdue, still paid; the impostor's certification kept them
    paid. Revoked, the validity goes back to what it was (lapsed before the fraud: never later than the day before
    it), and the next daily run suspends them by its own rules."""
    today = local_today(ctx.settings)
    lapsed = today - dt.timedelta(days=10)
    bid = _person(ctx, valid_until=lapsed)
    fraud = today - dt.timedelta(days=5)
    cid, _ = _certify(ctx, bid, fraud)
    with ctx.db() as db:
        assert run_cycle(db, today, ctx.rules, cases=ctx.hooks.case_sources()) == []
    done = _revoke(ctx, cid)
    assert done.counted and done.valid_until == lapsed and done.last_certified_on is None
    b = _row(ctx, bid)
    assert b.status == "active"  # nothing suspended by the revocation itself: the run does it
    assert cycle_state(b.status, b.valid_until, today, ctx.rules) is CycleState.OVERDUE
    with ctx.db() as db:
        assert run_cycle(db, today, ctx.rules, cases=ctx.hooks.case_sources()) == [bid]


def test_the_validity_falls_back_to_the_certifications_left(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    # A genuine certification 300 days ago (valid another ~two months), then the impostor's 10 days ago.
    bid = _person(ctx)
    genuine, _ = _certify(ctx, bid, today - dt.timedelta(days=300))
    genuine_until = factories.update(ctx, Certification, genuine).valid_until
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=10))
    done = _revoke(ctx, cid, reason="wrong_accept", note="复查发现视频中为他人")
    assert (done.valid_until, done.last_certified_on) == (genuine_until, today - dt.timedelta(days=300))
    with ctx.db() as db:
        assert run_cycle(db, today, ctx.rules, cases=ctx.hooks.case_sources()) == []  # still covered by the genuine one
    # A later date from elsewhere (the roster's own) is not shortened by revoking an earlier certification.
    other = _person(ctx)
    late, _ = _certify(ctx, other, today - dt.timedelta(days=20))
    roster_until = today + dt.timedelta(days=700)
    factories.update(ctx, Beneficiary, other, valid_until=roster_until)
    assert _revoke(ctx, late).valid_until == roster_until


def test_the_face_enrolled_by_the_revoked_session_is_dropped(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx)
    _certify(ctx, bid, today - dt.timedelta(days=300), consent=True, tpl=FACE)  # the person's own face
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5), consent=True, tpl=FACE)  # the impostor's
    assert _row(ctx, bid).template is not None
    assert _revoke(ctx, cid).template_cleared
    b = _row(ctx, bid)
    assert (b.template, b.template_model, b.template_consent) == (None, None, False)
    # A revoked session that could enrol nothing (no consent to keep a face) leaves the person's own template.
    keep = _person(ctx)
    _certify(ctx, keep, today - dt.timedelta(days=300), consent=True, tpl=FACE)
    cid, _ = _certify(ctx, keep, today - dt.timedelta(days=5))
    assert not _revoke(ctx, cid).template_cleared and _row(ctx, keep).template is not None


def test_revoking_twice_is_refused_and_nothing_un_revokes(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    first = _revoke(ctx, cid)
    with pytest.raises(ServiceError) as refused:
        _revoke(ctx, cid, reason="other", note="再次提交")
    assert refused.value.code == "CERTIFICATION_REVOKED"
    cert = factories.update(ctx, Certification, cid)
    assert (cert.revoke_reason, cert.revoke_note, cert.revoked_by) == ("impersonation", "民政死亡信息比对", SUPERVISOR)
    assert _row(ctx, bid).valid_until == first.valid_until
    with ctx.db() as db:
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)).all()
        assert [(e.actor, e.detail["reason"], e.detail["certification"]) for e in entries] == [
            (SUPERVISOR, "impersonation", cid)
        ]
    # Only a new certification makes the person valid again; the revoked one stays revoked.
    _certify(ctx, bid, today)
    assert factories.update(ctx, Certification, cid).revoked_at is not None


@pytest.mark.parametrize(
    ("reason", "note"), [("", "有依据"), ("fraud", "有依据"), ("other", "  "), ("other", "长" * 501)]
)
def test_a_reason_and_a_note_are_required(ctx: ServiceContext, reason: str, note: str) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    with pytest.raises(ServiceError) as refused:
        _revoke(ctx, cid, reason=reason, note=note)
    assert refused.value.code == "REVOKE_REASON"
    assert factories.update(ctx, Certification, cid).revoked_at is None


def test_a_previous_persons_certification_revoked_changes_nothing_of_the_present_ones(ctx: ServiceContext) -> None:
    """Made before a roster change gave the record another ID number: it counted for nobody already."""
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=30), consent=True, tpl=FACE)
    grace = today + dt.timedelta(days=90)
    factories.update(ctx, Beneficiary, bid, identity_since=utcnow(), valid_until=grace, last_certified_on=None)
    done = _revoke(ctx, cid)
    assert not done.counted and not done.template_cleared
    b = _row(ctx, bid)
    assert (b.valid_until, b.last_certified_on, b.template is not None) == (grace, None, True)


def test_two_revocations_at_once_revoke_once(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The first is held after its first write; the second waits for the person's row, then reads the
    certification revoked and is refused (not a second revocation over the first, nor two audit entries)."""
    ctx = pg_ctx
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    first_wrote, go_on = threading.Event(), threading.Event()

    def revoke(hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_wrote.is_set():
                        first_wrote.set()
                        go_on.wait(10)

            try:
                return revoke_certification(
                    db, ctx.rules, cid, "impersonation", "两人同时提交", SUPERVISOR, hold_days=HOLD_DAYS
                ).counted
            except ServiceError as exc:
                return exc.code

    first, first_out = running(lambda: revoke(True))
    assert first_wrote.wait(10)
    second, second_out = running(lambda: revoke(False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())
    go_on.set()
    first.join(30)
    second.join(30)
    assert (first_out, second_out) == ([True], ["CERTIFICATION_REVOKED"])
    with ctx.db() as db:
        assert len(db.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)).all()) == 1


def test_a_revoked_certification_counts_no_genuine_person_in_the_face_calibration(ctx: ServiceContext) -> None:
    """`pension-cert calibrate-faces` reports how the certified (genuine) people's faces scored: the impostor's
    accepted face is not one of them once revoked."""
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    with ctx.db() as db:
        assert len(_certified_face_bands(db)) == 1
    _revoke(ctx, cid)
    with ctx.db() as db:
        assert _certified_face_bands(db) == []
