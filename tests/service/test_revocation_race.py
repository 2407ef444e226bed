"""A supervisor revokes a certification as 冒领 while the person's next certification is being decided
(service/certification/revocation.py; docs/security.md, Part BC).

- The worker: it loads the person's face template when it claims the job and runs the models outside any
  transaction. A revocation dropping that template (the impostor's face, `revocation._drop_template`) meanwhile was
  undone by the job: it accepted on the dropped template, certified the impostor again and enrolled their face
  anew. Now `processing._apply` sees, under the person's lock, that the template it compared with is gone after
  such a revocation: the session goes to staff (TEMPLATE_DROPPED), two of them, and no face is kept.
- The operator API's staff accept (`review.settle`): it asked whether the person was revoked as fraud before it
  locked the person's row, which the revocation holds until it commits (PostgreSQL), and so settled alone an accept
  that takes two people. The console's decisions: tests/service/features/console/test_fraud_revocation_race.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.decision.result import Outcome
from pipelines.decision.runner import CertificationReport, Template
from pipelines.reasons import ReasonCode
from service.certification import processing
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, Certification, CertSession, SessionState, utcnow
from service.certification.review import REVOKED_BEFORE, accept_needs_second, settle
from service.certification.revocation import revoke_certification
from service.infra.clock import local_today
from tests.service import factories
from tests.service.certifiers import fixed_decision
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx, review_case  # noqa: F401  (the two-transaction PostgreSQL context)
from tests.service.test_revocation import FACE, HOLD_DAYS, SUPERVISOR, _certify, _person, _revoke

WORKER = "w-revoke"
# What the models found: the face matched the template they were given (the impostor's), which carries the accept
# (pipelines/decision/rules._face); the face seen is offered for enrolment.
MATCHED = replace(fixed_decision(Outcome.ACCEPT), references=["template", "card"])


class RevokedWhileTheModelsRun:
    """A certifier during whose run a supervisor's revocation of certification `cid` commits (their click in the
    console while the worker's models run); it accepts on the template it was given."""

    def __init__(self, ctx: ServiceContext, cid: int, reason: str = "impersonation") -> None:
        self.ctx, self.cid, self.reason = ctx, cid, reason
        self.compared: Template | None = None

    def run(self, *args: object, **kwargs: object) -> CertificationReport:
        template = args[4] if len(args) > 4 else kwargs.get("template")
        assert isinstance(template, Template)
        self.compared = template
        _revoke(self.ctx, self.cid, self.reason)
        return CertificationReport(MATCHED, None, None, None, None, Template(FACE.embedding, FACE.model), {})


def in_processing(ctx: ServiceContext, bid: int) -> str:
    """A session of `bid` with the consent to keep the face, its media stored, in the worker's hands."""
    with ctx.db() as db:
        s = factories.session_row(
            bid, state=SessionState.PROCESSING, worker_id=WORKER, template_consent=True, queued_at=utcnow()
        )
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        db.add(s)
        db.flush()
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        return s.id


def case_of_a_person_certified_before(ctx: ServiceContext) -> tuple[str, int]:
    """A one-reviewer case (the machine compared the face) of a person with an earlier certification: (the case's
    session, that certification)."""
    sid = review_case(ctx)
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.beneficiary_id is not None
        bid = s.beneficiary_id
    earlier, _ = _certify(ctx, bid, local_today(ctx.settings) - dt.timedelta(days=30))
    return sid, earlier


def revoke_uncommitted(ctx: ServiceContext, sup: Session, cid: int) -> None:
    """The supervisor's revocation of `cid` as 冒领, written in `sup` and not committed: it holds the person's row."""
    revoke_certification(sup, ctx.rules, cid, "impersonation", "民政比对：本人已故", SUPERVISOR, hold_days=HOLD_DAYS)
    sup.flush()


def decided(ctx: ServiceContext, sid: str) -> tuple[str | None, list[str], int, bool]:
    """The session's decision and reasons, its certifications, and whether its person has a template now."""
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.beneficiary_id is not None
        b = db.get(Beneficiary, s.beneficiary_id)
        assert b is not None
        certs = db.scalars(select(Certification.id).where(Certification.session_id == sid)).all()
        return s.decision, list(s.reasons or []), len(certs), b.template is not None


def test_a_fraud_revocation_while_the_models_run_sends_the_accept_to_two_people(ctx: ServiceContext) -> None:
    """The reproduction of the outside review (both set-ups: no row lock is involved, the revocation commits in
    its own unit between the job's claim and its decision). Before: accepted, certified again, face enrolled."""
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, local_today(ctx.settings) - dt.timedelta(days=5), consent=True, tpl=FACE)
    sid = in_processing(ctx, bid)
    certifier = RevokedWhileTheModelsRun(ctx, cid)
    assert processing.process(ctx, cast(Certifier, certifier), sid, WORKER)
    assert certifier.compared is not None  # the models compared with the template the revocation dropped
    decision, reasons, certs, enrolled = decided(ctx, sid)
    assert (decision, certs, enrolled) == ("review", 0, False)
    assert reasons == [ReasonCode.TEMPLATE_DROPPED.value]
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.result is not None and s.result["decision"] == "review"
        assert REVOKED_BEFORE in accept_needs_second(db, s)  # staff accept it only as two people


def test_a_fraud_revocation_that_keeps_the_persons_own_template_leaves_the_accept(ctx: ServiceContext) -> None:
    """The template was enrolled before the revoked certification (the person's own face), so the revocation keeps
    it: the job compared with a template still on record, and its accept stands (no needless case for staff)."""
    bid = _person(ctx)
    today = local_today(ctx.settings)
    _certify(ctx, bid, today - dt.timedelta(days=400), consent=True, tpl=FACE)  # the person's own
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))  # the impostor's, enrolling nothing
    sid = in_processing(ctx, bid)
    assert processing.process(ctx, cast(Certifier, RevokedWhileTheModelsRun(ctx, cid)), sid, WORKER)
    assert decided(ctx, sid) == ("accept", [], 1, True)


def test_the_worker_waits_for_a_revocation_holding_the_person_then_sends_the_accept_to_staff(
    pg_ctx: ServiceContext,  # noqa: F811
) -> None:
    """PostgreSQL, two transactions: the revocation holds the person's row (flushed, not committed) when the job
    applies its accept; the worker waits for it under the lock order (its session, then the person), then sees the
    template gone and the revocation made."""
    ctx = pg_ctx
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, local_today(ctx.settings) - dt.timedelta(days=5), consent=True, tpl=FACE)
    sid = in_processing(ctx, bid)
    result = MATCHED.to_dict()
    with ctx.db() as sup:
        revoke_uncommitted(ctx, sup, cid)
        worker, applied = running(
            lambda: processing._apply(ctx, sid, WORKER, Outcome.ACCEPT, [], result, FACE, compared=FACE)
        )
        assert until(lambda: lock_waits(ctx) > 0)  # the worker waits for the person's row
    worker.join(30)
    assert applied == [True]
    assert decided(ctx, sid) == ("review", [ReasonCode.TEMPLATE_DROPPED.value], 0, False)


def test_an_operator_api_accept_waits_for_a_fraud_revocation_and_then_takes_two(
    pg_ctx: ServiceContext,  # noqa: F811
) -> None:
    """The operator API's accept (`review.settle`, not the console's flow) while the revocation of the person's
    earlier certification is uncommitted. Before: it read "no revocation", waited for the person's row, then
    certified alone. Now it locks the person first, waits, and is refused as taking two people (CASE_HELD)."""
    ctx = pg_ctx
    sid, old = case_of_a_person_certified_before(ctx)

    def operator_accepts() -> object:
        with ctx.db() as db:
            s = db.get(CertSession, sid)
            assert s is not None
            try:
                return settle(db, ctx, s, "accept", "rev1", "与身份证一致", "api:ops")["decision"]
            except ServiceError as exc:
                return exc.code

    with ctx.db() as sup:
        revoke_uncommitted(ctx, sup, old)
        api, answered = running(operator_accepts)
        assert until(lambda: lock_waits(ctx) > 0)
    api.join(30)
    assert answered == ["CASE_HELD"]
    assert decided(ctx, sid)[:3] == ("review", [], 0)
