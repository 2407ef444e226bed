"""A reviewer's accept of a person's case while a supervisor's revocation of that person's earlier certification as
冒领 is being written (PostgreSQL, two transactions at once; docs/security.md, Part BC: such an accept takes two
people, `review.accept_needs_second`).

Before: `decide_case` asked the rule right after locking the session and the claim, before `accept_session`
locked the person's row, which the revocation holds until it commits. It read "no revocation", waited for the row,
then certified the person on one reviewer's word, a moment after the revocation. Now the person's row is locked
before the rule is asked (the lock order: the session, the claim, the person): the decision waits for the
revocation and then sees it. The operator API's accept and the worker's: tests/service/test_revocation_race.py.
"""

from __future__ import annotations

from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Certification, utcnow
from service.features.console.auth import Role, Staff
from service.features.console.models import ReviewClaim, StaffUser
from service.features.console.review_queue import OVERRULED, decide_case
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx, review_case  # noqa: F401  (the two-transaction PostgreSQL context)
from tests.service.test_revocation_race import case_of_a_person_certified_before, revoke_uncommitted


def _staff(ctx: ServiceContext, username: str, role: Role) -> Staff:
    with ctx.db() as db:
        user = StaffUser(username=username, display_name=username, role=role.value, password_hash="-")
        db.add(user)
        db.flush()
        return Staff(id=user.id, username=username, display_name=username, role=role, csrf="-")


def _accept_while_revoking(ctx: ServiceContext, staff: Staff, sid: str, earlier: int) -> list[object]:
    """`staff` accepts case `sid` while the revocation of `earlier` holds the person's row; what `decide_case`
    answered, once the revocation has committed."""

    def decide() -> object:
        with ctx.db() as db:
            return decide_case(db, ctx, staff, sid, "accept", "与身份证一致")

    with ctx.db() as sup:
        revoke_uncommitted(ctx, sup, earlier)
        reviewer, answered = running(decide)
        assert until(lambda: lock_waits(ctx) > 0)  # the decision waits for the person's row
    reviewer.join(30)
    return answered


def _certifications(ctx: ServiceContext, sid: str) -> int:
    with ctx.db() as db:
        return len(db.scalars(select(Certification.id).where(Certification.session_id == sid)).all())


def test_a_reviewers_accept_racing_a_fraud_revocation_waits_for_a_supervisor(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    sid, earlier = case_of_a_person_certified_before(ctx)
    reviewer = _staff(ctx, "rev1", Role.REVIEWER)
    with ctx.db() as db:
        db.add(ReviewClaim(session_id=sid, claimed_by=reviewer.id, claimed_at=utcnow()))
    assert _accept_while_revoking(ctx, reviewer, sid, earlier) == ["awaiting_supervisor"]
    assert _certifications(ctx, sid) == 0
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and (c.pending_decision, c.pending_by) == ("accept", reviewer.id)


def test_a_supervisors_second_accept_racing_a_fraud_revocation_needs_a_third_look(
    pg_ctx: ServiceContext,  # noqa: F811
) -> None:
    """A first reject waits; the supervisor giving the second decision accepts instead while the revocation is
    written. Before: the accept, one person's (the first said reject), settled the case. Now it becomes the new
    first decision (OVERRULED), for another supervisor."""
    ctx = pg_ctx
    sid, earlier = case_of_a_person_certified_before(ctx)
    reviewer, supervisor = _staff(ctx, "rev1", Role.REVIEWER), _staff(ctx, "sup1", Role.SUPERVISOR)
    with ctx.db() as db:
        db.add(
            ReviewClaim(
                session_id=sid,
                claimed_by=supervisor.id,
                claimed_at=utcnow(),
                pending_decision="reject",
                pending_reason="与身份证照片不符",
                pending_by=reviewer.id,
                pending_at=utcnow(),
            )
        )
    assert _accept_while_revoking(ctx, supervisor, sid, earlier) == [OVERRULED]
    assert _certifications(ctx, sid) == 0
