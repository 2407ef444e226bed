"""The dashboard's machine figures count what the machine decided (docs/security.md Part R): a review case that
staff settled stays a review in 机器结论分布 and never counts as an automatic accept, whichever way it was settled
(the console, or the operator API, which leaves no console decision row)."""

from __future__ import annotations

import datetime as dt

from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionDecision, SessionState, utcnow
from service.certification.review import settle
from service.features.console.dashboard import compute
from tests.service import factories


def test_a_settled_review_stays_a_review_and_is_no_automatic_accept(ctx: ServiceContext) -> None:
    now = utcnow()
    with ctx.db() as db:
        machine, reviewed = (factories.beneficiary(db, ctx.keyring, status="suspended") for _ in range(2))
        for b, decision in ((machine, SessionDecision.ACCEPT), (reviewed, SessionDecision.REVIEW)):
            db.add(
                factories.session_row(
                    b.id,
                    id=f"dash-{decision}",
                    state=SessionState.DECIDED,
                    decision=decision,
                    queued_at=now - dt.timedelta(hours=2),
                    decided_at=now - dt.timedelta(hours=1),
                    result=factories.review_result(decision=decision.value),
                )
            )
        db.flush()
        before = compute(db, ctx.rules, now, today=now.date())
        assert (before.decided, dict(before.decision_mix), before.auto_accept_rate) == (
            2,
            {"accept": 1, "review": 1},
            0.5,
        )
        # The operator API settles the review case (POST /api/v1/sessions/{id}/review): the machine said review.
        s = db.get(CertSession, "dash-review")
        assert s is not None
        settle(db, ctx, s, SessionDecision.ACCEPT, "ops", "本人到柜台核实", "api:ops")
        db.flush()
        after = compute(db, ctx.rules, utcnow(), today=now.date())
        # Before: {"accept": 2} and an automatic-accept rate of 100 %, the staff accept counted as the machine's.
        assert (after.decided, dict(after.decision_mix), after.auto_accept_rate) == (
            2,
            {"accept": 1, "review": 1},
            0.5,
        )
