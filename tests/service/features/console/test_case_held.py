"""A case held in the console is decided there: the operator API cannot settle a case a reviewer has claimed,
nor a proxy rejection waiting for a supervisor's second decision (that would skip the second person)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from service.features.console.models import ReviewClaim
from tests.service import factories
from tests.service.features.console.conftest import api_settle, csrf_of, login


def _review_case(ctx: ServiceContext, channel: str = "proxy") -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.review_session(b.id, channel=channel)
        s.reasons = ["SPOOF_SUSPECTED"]
        db.add(s)
        return s.id


def test_the_api_cannot_settle_a_case_held_in_the_console(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    # free: a self session (a proxy one's SPOOF_SUSPECTED accept takes two people anyway: test_insider.py)
    claimed, pending, free = _review_case(ctx), _review_case(ctx), _review_case(ctx, channel="self")
    csrf = login(app_client, "rev1")
    for sid in (claimed, pending):
        assert app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code in (200, 303)
    # rev1 rejects the proxy case: it now waits for a supervisor's second decision.
    page = app_client.get(f"/console/cases/{pending}").text
    app_client.post(
        f"/console/cases/{pending}/decide",
        data={"csrf": csrf_of(page), "decision": "reject", "reason": "视频中不是本人"},
    )
    with ctx.db() as db:
        held = db.get(ReviewClaim, pending)
        assert held is not None and held.pending_decision == "reject" and held.claimed_by is None
    assert api_settle(app_client, claimed, "accept") == (409, "CASE_HELD")
    assert api_settle(app_client, pending, "accept") == (409, "CASE_HELD")
    with ctx.db() as db:
        for sid in (claimed, pending):
            s = db.get(CertSession, sid)
            assert s is not None and s.decision == "review"  # nothing was settled
    assert api_settle(app_client, free, "accept") == (200, "")  # a case nobody holds: the API may settle it


def test_an_abandoned_claim_does_not_block_the_api(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _review_case(ctx, channel="self")
    csrf = login(app_client, "rev2")
    app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    with ctx.db() as db:
        c = db.get(ReviewClaim, sid)
        assert c is not None and c.claimed_by is not None
        c.claimed_at = utcnow() - dt.timedelta(hours=2)  # past the claim's lifetime (30 min)
    assert api_settle(app_client, sid, "reject") == (200, "")
