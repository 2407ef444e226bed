"""Issue 20: a relative's own verification session (no beneficiary row, a `ProxyClaim`) sent to review shows in
the console's queue and case page with the claimed name and masked number, and a reviewer's accept verifies the
relative without certifying anybody."""

from __future__ import annotations

import html
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Certification, CertSession, SessionState, utcnow
from service.features.proxy import operators
from service.features.proxy.models import ProxyOperator
from service.features.proxy.sessions import open_verification
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_review import claim, decide

NAME = "李建国"


def verification_under_review(ctx: ServiceContext) -> tuple[str, str, str]:
    """(session id, operator id, masked number) of a verification session the machine sent to review."""
    number = factories.id_number(region="110101")
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", f"openid-{uuid.uuid4().hex[:8]}", "test").operator
        s = open_verification(db, ctx, op, number, NAME, consent=False).session
        s.state, s.decision, s.reasons, s.decided_at = SessionState.DECIDED, "review", ["SPOOF_SUSPECTED"], utcnow()
        s.result = factories.review_result(reasons=["SPOOF_SUSPECTED"])  # the machine compared the face
        return s.id, op.id, number[:4] + "*" * 10 + number[-4:]


def test_a_verification_case_is_listed_shown_and_settled(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid, op_id, masked = verification_under_review(ctx)
    csrf = login(app_client, "rev1")
    queue = html.unescape(app_client.get("/console/queue").text)
    start = queue.index(f'data-session="{sid}"')
    row = queue[start : queue.index("</tr>", start)]
    assert NAME in row and masked in row
    page = app_client.get(f"/console/cases/{sid}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    claimant = text[text.index('id="claimant"') : text.index("</p>", text.index('id="claimant"'))]
    assert NAME in claimant and masked in claimant

    assert claim(app_client, sid, csrf) == 200
    assert "已完成审核" in decide(app_client, sid, csrf, "accept")
    with ctx.db() as db:
        s, op = db.get(CertSession, sid), db.get(ProxyOperator, op_id)
        assert s is not None and s.decision == "accept" and s.beneficiary_id is None
        assert op is not None and op.verified_at is not None and op.id_masked == masked
        assert db.scalar(select(func.count()).select_from(Certification)) == 0
