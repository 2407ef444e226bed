"""The rule that a certification closes the person's open requests (assist.close_on_certification) runs after the
person's row is locked, the one step against the lock order (service/certification/lock_order.py: requests
first): it takes the requests with SKIP LOCKED, so it never waits for one the request page holds. Here, on
PostgreSQL, a member of staff holds a request on its page (locked) while a colleague records a counter
certification of the same person: the colleague's certification completes at once, the request left to the page
that holds it; the page then certifies and closes it (before, with the requests waited for, the two would have
deadlocked: each waiting for the row the other holds)."""

from __future__ import annotations

from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification
from service.features.console import assist
from service.features.console.alt_cert import certify_alternative
from service.features.console.auth import Role, Staff
from service.features.console.models import AltCertification, AssistRequest, StaffUser
from service.infra.clock import local_today
from tests.service import factories
from tests.service.test_lock_order import running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)


def _person_with_a_request(ctx: ServiceContext) -> tuple[int, int, Staff]:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        req = assist.submit(db, b, "home_visit", "13800138000", "卧床", "openid-x", "wechat:x")
        user = StaffUser(username="rev1", display_name="审核员", role=Role.REVIEWER.value, password_hash="-")
        db.add(user)
        db.flush()
        return b.id, req.id, Staff(user.id, user.username, user.display_name, Role.REVIEWER, "-")


def test_a_certification_does_not_wait_for_a_request_its_page_holds(pg_ctx: ServiceContext) -> None:  # noqa: F811
    ctx = pg_ctx
    bid, rid, staff = _person_with_a_request(ctx)
    today = local_today(ctx.settings)

    def at_the_counter() -> object:
        with ctx.db() as db:
            b = db.get(Beneficiary, bid)
            assert b is not None
            return certify_alternative(db, ctx, b, "counter", today, None, {"note": "柜台"})

    with ctx.db() as page:
        req = page.get(AssistRequest, rid, with_for_update=True)  # the request page's closing holds it
        assert req is not None
        counter, out = running(at_the_counter)
        assert until(lambda: bool(out), timeout=5.0), "the counter certification waited for the held request"
        counter.join(5.0)
        assert isinstance(out[0], AltCertification)
        assist.certify_and_close(page, ctx, staff, req, "home_visit", today, "上门见到本人")
    with ctx.db() as db:
        closed = db.get(AssistRequest, rid)
        assert closed is not None
        assert (closed.status, closed.outcome, closed.closed_by) == ("closed", "certified", staff.id)
        count = db.scalar(select(func.count()).select_from(Certification).where(Certification.beneficiary_id == bid))
        assert count == 2
