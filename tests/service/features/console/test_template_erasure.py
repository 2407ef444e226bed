"""At the counter: a person without WeChat asks staff to erase their face template (PIPL art. 47), from the
person's page (routes_roster.withdraw_template). Any staff member who may see the person records it, with how the
request was made, in the console's audit chain; staff outside the person's region reach nothing; the CSRF token is
checked. Before: the console showed "人脸模板 已登记" and had no way to erase it (docs/security.md, Part AL)."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.models import StaffUser
from tests.service import factories
from tests.service.features.console.conftest import login, new_client

NOTE = "本人持身份证到柜台申请删除"


def _enrolled(ctx: ServiceContext) -> tuple[int, str]:
    """A person (济南) with a template, and an open session of theirs with consent to keep one."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        factories.enrol_template(ctx.keyring, b, np.ones(8, dtype=np.float32), "test-model")
        s = factories.session_row(b.id, template_consent=True)
        db.add(s)
        db.flush()
        return b.id, s.id


def _template(ctx: ServiceContext, bid: int) -> bytes | None:
    return factories.update(ctx, Beneficiary, bid).template


def test_a_reviewer_erases_the_template_at_the_persons_request(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, sid = _enrolled(ctx)
    csrf = login(app_client, "rev1")
    action = f"/console/beneficiaries/{bid}/template/withdraw"
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert action in page
    r = app_client.post(action, data={"csrf": csrf, "note": NOTE})
    assert r.status_code == 200 and r.url.path == f"/console/beneficiaries/{bid}"
    assert "人脸模板 未登记" in r.text and action not in r.text
    after = factories.update(ctx, Beneficiary, bid)
    assert (after.template, after.template_model, after.template_consent) == (None, None, False)
    assert factories.update(ctx, CertSession, sid).template_consent is False  # the open session enrols nothing
    with ctx.db() as db:
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "template.withdrawn")).one()
        assert entry.actor == "staff:rev1" and entry.detail["via"] == "console" and entry.detail["note"] == NOTE
        assert entry.detail["template_cleared"] is True and entry.detail["sessions"] == 1


def test_without_a_note_or_the_csrf_token_nothing_is_erased(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, _ = _enrolled(ctx)
    csrf = login(app_client, "rev1")
    action = f"/console/beneficiaries/{bid}/template/withdraw"
    no_note = app_client.post(action, data={"csrf": csrf, "note": "  "})
    assert no_note.url.path == f"/console/beneficiaries/{bid}" and "请填写本人如何提出申请" in no_note.text
    assert app_client.post(action, data={"csrf": "forged", "note": NOTE}).status_code == 403
    assert _template(ctx, bid) is not None


def test_staff_outside_the_persons_region_reach_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, _ = _enrolled(ctx)
    with ctx.db() as db:
        user = db.get(StaffUser, staff_users["rev2"])
        assert user is not None
        user.scope = ["4201"]  # 武汉市: the person is in 济南
    wuhan = new_client(app_client)
    csrf = login(wuhan, "rev2")
    r = wuhan.post(f"/console/beneficiaries/{bid}/template/withdraw", data={"csrf": csrf, "note": NOTE})
    assert r.url.path == "/console/roster"
    assert _template(ctx, bid) is not None


def test_a_consent_pending_in_a_session_is_withdrawn_at_the_counter_without_a_template(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """No template yet, but a session in flight with consent to keep one (reviewer rv5): the form is shown (as the
    H5 page shows it) and withdrawing takes the session's consent away. Before: the form only with a template."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, template_consent=True)
        db.add(s)
        db.flush()
        bid, sid = b.id, s.id
    csrf = login(app_client, "rev1")
    action = f"/console/beneficiaries/{bid}/template/withdraw"
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert "人脸模板 未登记" in page and action in page and "同意保存人脸模板" in page
    r = app_client.post(action, data={"csrf": csrf, "note": NOTE})
    assert r.status_code == 200 and action not in r.text
    assert factories.update(ctx, CertSession, sid).template_consent is False
