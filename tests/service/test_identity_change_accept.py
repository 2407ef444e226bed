"""A video made before a roster import gave its record another ID number never certifies the record's new person
(docs/security.md, Part AA; service/certification/current_person.py).

Before: a session opened (its video recorded) for the record's previous number and sent to staff review could be
accepted by staff after the change (operator API, console: `review.settle` → `processing.accept_session`), and a
worker that read the job before the change and applied its accept after it did the same; the certification, made
after the change, then counted as the new person's in the cycle run and the public certificate check.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, cast

from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.reasons import MESSAGES_ZH, ReasonCode
from service.certification import roster
from service.certification.certificates import CertificateStatus, standing
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.cycle import run_cycle
from service.certification.identity_review import confirm_same_person
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, utcnow
from service.certification.processing import claim, process
from service.certification.review import settle
from service.infra.clock import local_today
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.conftest import ADMIN
from tests.service.test_races import count, pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)

ACCEPT = {"decision": "accept", "reviewer": "窗口3-李", "note": "核对无误"}
REJECT = {"decision": "reject", "reviewer": "窗口3-李", "note": "视频为号码变更前的人员"}
SUPERVISOR = "staff:sup2"


def _person(ctx: ServiceContext) -> tuple[str, int]:
    """A record whose validity lasts long past the grace date a change of ID number gives."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        b = factories.beneficiary(
            db,
            ctx.keyring,
            valid_until=today + dt.timedelta(days=200),
            last_certified_on=today - dt.timedelta(days=165),
        )
        return b.external_id, b.id


def _review_case(ctx: ServiceContext, bid: int) -> str:
    """A session of the record, opened now, that the machine sent to staff."""
    with ctx.db() as db:
        s = factories.review_session(bid)
        db.add(s)
        return s.id


def _roster(external_id: str) -> bytes:
    """A roster row giving the record another (valid) ID number."""
    buf = io.StringIO()
    number = factories.id_number(birth=dt.date(1938, 5, 2))
    csv.writer(buf).writerows(
        [["external_id", "id_number", "name", "benefit_types"], [external_id, number, "李桂兰", "enterprise_pension"]]
    )
    return buf.getvalue().encode()


def _change_number(ctx: ServiceContext, external_id: str) -> int:
    """The roster import that changes the record's number, committed; its import id."""
    with ctx.db() as db:
        report = roster.import_roster(db, ctx.keyring, "r.csv", _roster(external_id), "admin:importer", _terms(ctx))
    assert len(report.identity_changed) == 1 and report.import_id is not None
    return report.import_id


def _terms(ctx: ServiceContext) -> roster.ImportTerms:
    return roster.import_terms(ctx)


def _settle(client: TestClient, sid: str, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
    r = client.post(f"/api/v1/sessions/{sid}/review", json=body, headers=ADMIN)
    out: dict[str, Any] = r.json()
    return r.status_code, out


def _session(ctx: ServiceContext, sid: str) -> CertSession:
    return factories.update(ctx, CertSession, sid)


def test_staff_cannot_accept_a_video_made_before_the_records_number_changed(
    client: TestClient, ctx: ServiceContext
) -> None:
    ext, bid = _person(ctx)
    sid = _review_case(ctx, bid)
    _change_number(ctx, ext)

    status, body = _settle(client, sid, ACCEPT)
    assert status == 409 and body["error"]["code"] == "IDENTITY_CHANGED"
    assert body["error"]["message"] == MESSAGES_ZH[ReasonCode.IDENTITY_CHANGED]
    assert count(ctx, Certification, Certification.beneficiary_id == bid) == 0
    s = _session(ctx, sid)
    assert (s.state, s.decision) == ("decided", "review")  # nothing was written: the case stays open
    with ctx.db() as db:
        assert not db.scalars(select(AuditEntry).where(AuditEntry.action == "session.review")).all()

    # Staff still reject it.
    status, body = _settle(client, sid, REJECT)
    assert status == 200 and body["decision"] == "reject"


def test_a_same_person_finding_lets_staff_accept_the_case_again(client: TestClient, ctx: ServiceContext) -> None:
    """The change only corrected a typo: once a supervisor finds the same person, the case is accepted, and the
    certification is the record's (certificate valid, counted by the cycle run)."""
    ext, bid = _person(ctx)
    sid = _review_case(ctx, bid)
    import_id = _change_number(ctx, ext)
    assert _settle(client, sid, ACCEPT)[0] == 409

    today = local_today(ctx.settings)
    with ctx.db() as db:
        confirm_same_person(db, ctx.hooks, bid, import_id, SUPERVISOR, today, ctx.rules)
    status, body = _settle(client, sid, ACCEPT)
    assert status == 200 and body["decision"] == "accept"
    with ctx.db() as db:
        (cert,) = db.scalars(select(Certification).where(Certification.beneficiary_id == bid)).all()
        assert standing(db, cert, today).status is CertificateStatus.VALID


class ChangedWhileRunning:
    """A certifier that accepts; while it runs (the job read before), a roster import changes the record's number."""

    def __init__(self, ctx: ServiceContext, external_id: str) -> None:
        self.ctx, self.external_id, self.inner = ctx, external_id, FixedCertifier()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        _change_number(self.ctx, self.external_id)
        return self.inner.run(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # what the decision hooks ask a certifier besides `run`
        return getattr(self.inner, name)


def test_a_job_read_before_the_change_and_applied_after_is_rejected(ctx: ServiceContext) -> None:
    ext, bid = _person(ctx)
    with ctx.db() as db:
        s = factories.session_row(bid, expires_at=utcnow() + dt.timedelta(hours=1))
        s.id_card_key, s.video_key, s.state, s.queued_at = (
            f"sessions/{s.id}/id_card",
            f"sessions/{s.id}/video",
            "queued",
            utcnow(),
        )
        db.add(s)
        sid = s.id
    ctx.storage.put(f"sessions/{sid}/id_card", b"card")
    ctx.storage.put(f"sessions/{sid}/video", b"video")
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, ChangedWhileRunning(ctx, ext)), sid, "w1")

    row = _session(ctx, sid)
    assert (row.state, row.decision) == ("decided", "reject")
    assert row.reasons == [ReasonCode.IDENTITY_CHANGED.value]
    assert row.result is not None and row.result["decision"] == "reject"  # what the result page reads
    assert count(ctx, Certification, Certification.beneficiary_id == bid) == 0


def _certified_through_the_old_accept(ctx: ServiceContext) -> tuple[int, int, dt.date]:
    """A record whose number changed after its case was opened, and the certification the old accept wrote (made
    after the change, of the session opened before it); the record's own date is the grace date the change gave.
    (certification id, record id, grace date)."""
    ext, bid = _person(ctx)
    sid = _review_case(ctx, bid)
    _change_number(ctx, ext)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None and b.valid_until is not None
        grace = b.valid_until
        cert = Certification(
            beneficiary_id=bid,
            session_id=sid,
            certified_on=local_today(ctx.settings),
            valid_until=grace + dt.timedelta(days=365),
            code="c-" + sid,
        )
        db.add(cert)
        db.flush()
        return cert.id, bid, grace


def test_a_certificate_made_from_an_earlier_video_reads_superseded(ctx: ServiceContext) -> None:
    cert_id, _bid, _grace = _certified_through_the_old_accept(ctx)
    with ctx.db() as db:
        cert = db.get(Certification, cert_id)
        assert cert is not None
        assert standing(db, cert, local_today(ctx.settings)).status is CertificateStatus.SUPERSEDED


def test_a_certification_made_from_an_earlier_video_keeps_nobody_from_suspension(ctx: ServiceContext) -> None:
    _cert_id, bid, grace = _certified_through_the_old_accept(ctx)
    with ctx.db() as db:
        assert run_cycle(db, grace + dt.timedelta(days=1), ctx.rules, cases=ctx.hooks.case_sources()) == [bid]


def test_a_staff_accept_waits_for_a_roster_change_and_is_refused(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """PostgreSQL: the import holds the record's row (uncommitted) when staff accept the case. The accept waits for
    the row (`accept_session` locks it before reading `identity_since`), then sees the change and is refused."""
    ctx = pg_ctx
    ext, bid = _person(ctx)
    sid = _review_case(ctx, bid)
    importer = ctx.session_factory()
    roster.import_roster(importer, ctx.keyring, "r.csv", _roster(ext), "admin:importer", _terms(ctx))
    importer.flush()

    def accept() -> object:
        with ctx.db() as db:
            s = db.get(CertSession, sid)
            assert s is not None
            return settle(db, ctx, s, "accept", "甲", "the same face", "admin:aaaa")["decision"]

    t, out = started(accept)
    t.join(1.0)
    assert t.is_alive()  # waiting for the record's row lock
    importer.commit()
    importer.close()
    t.join(30)
    assert out == ["IDENTITY_CHANGED"]
    assert count(ctx, Certification, Certification.beneficiary_id == bid) == 0
