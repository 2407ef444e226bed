"""A reviewer gives back (放弃) a case whose claim has lapsed while a colleague takes it over (接手), on PostgreSQL
with two transactions at once. Before: `release_case` read the claim without a lock, found it still its own,
waited for the colleague's take-over to commit and then cleared the colleague's claim. Now it locks and re-reads
the claim (as `claim_case` does): it waits, sees the case taken over and gives nothing back."""

from __future__ import annotations

import datetime as dt

from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.features.console.auth import Role
from service.features.console.config import ConsoleConfig
from service.features.console.models import ReviewClaim
from service.features.console.review_queue import CaseError, claim_case, release_case
from tests.service.features.console.test_fraud_revocation_race import _staff
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx, review_case  # noqa: F401  (the two-transaction PostgreSQL context)


def test_giving_back_a_lapsed_claim_a_colleague_takes_over_leaves_the_colleagues_claim(
    pg_ctx: ServiceContext,  # noqa: F811
) -> None:
    ctx = pg_ctx
    cfg = ConsoleConfig()
    sid = review_case(ctx)
    holder, colleague = _staff(ctx, "rev1", Role.REVIEWER), _staff(ctx, "rev2", Role.REVIEWER)
    lapsed_at = utcnow() - dt.timedelta(seconds=cfg.claim_ttl_s + 60)
    with ctx.db() as db:
        db.add(ReviewClaim(session_id=sid, claimed_by=holder.id, claimed_at=lapsed_at))

    def give_back() -> object:
        with ctx.db() as db:
            release_case(db, holder, sid)
            return "released"

    with ctx.db() as db:
        claim_case(db, cfg, colleague, sid)  # the take-over, not committed yet
        db.flush()
        releasing, answered = running(give_back)
        assert until(lambda: lock_waits(ctx) > 0)  # the release waits for the claim the take-over holds
    releasing.join(30)
    assert len(answered) == 1 and isinstance(answered[0], CaseError), answered
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by == colleague.id
