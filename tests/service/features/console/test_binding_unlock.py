"""解除锁定 from the person's page (binding_unlock.py): a relative's binding locked after three failed 代认证 tries
is lifted by staff with a note, audited on both trails, and the relative's next proxy session opens; a flagged
binding (the relative filmed themselves) only by a supervisor. Before, the page showed 已锁定 with no control, and
only the operator API could lift it: the binding stayed locked for good (the access review, finding 2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.proxy import operators
from service.features.proxy.models import BindingStatus, ProxyBinding
from tests.service import factories
from tests.service.features.console.conftest import login, new_client

NOTE = "已查看三次失败的代办认证,系老人不能点头;已上门见到本人"


@dataclass
class Locked:
    person: int
    binding: str
    token: str  # the relative's operator token

    @property
    def action(self) -> str:
        return f"/console/beneficiaries/{self.person}/bindings/{self.binding}/unlock"


def _locked(ctx: ServiceContext, flagged: bool = False, openid: str = "openid-unlock-1") -> Locked:
    """A person (济南) and their daughter's consented binding, locked after three failed tries (and `flagged`: she
    filmed herself)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        db.flush()
        signed = operators.login(db, ctx, "wechat", openid, operators.H5_CLIENT)
        operators.mark_verified(signed.operator, openid.ljust(64, "0"), "3701**********0022", "李强")
        row = ProxyBinding(
            id=str(uuid.uuid4()),
            operator_id=signed.operator.id,
            beneficiary_id=b.id,
            relationship="child",
            status=BindingStatus.ACTIVE,
            consent_at=utcnow(),
            consent_method="live_video",
            failures=3,
            locked=True,
            flagged=flagged,
        )
        db.add(row)
        db.flush()
        return Locked(b.id, row.id, signed.token)


def _open_session(client: TestClient, locked: Locked) -> int:
    auth = {"Authorization": f"Bearer {locked.token}"}
    status: int = client.post(f"/api/v1/proxy/bindings/{locked.binding}/sessions", headers=auth).status_code
    return status


def test_a_reviewer_unlocks_from_the_persons_page_and_the_next_proxy_session_opens(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    locked = _locked(ctx)
    assert _open_session(app_client, locked) == 423  # PROXY_BINDING_LOCKED
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/beneficiaries/{locked.person}").text
    assert locked.action in page and "解除锁定" in page
    r = app_client.post(locked.action, data={"csrf": csrf, "note": NOTE})
    assert r.status_code == 200 and r.url.path == f"/console/beneficiaries/{locked.person}"
    assert locked.action not in r.text
    row = factories.update(ctx, ProxyBinding, locked.binding)
    assert (row.locked, row.failures, row.flagged) == (False, 0, False)
    with ctx.db() as db:
        chain = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "proxy.binding.unlocked")).one()
        assert chain.actor == "staff:rev1" and chain.detail["note"] == NOTE
        assert (chain.detail["binding"], chain.detail["failures"]) == (locked.binding, 3)
        trail = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.binding.unlocked")).one()
        assert trail.actor == "staff:rev1" and trail.detail == {"binding": locked.binding, "note": NOTE}
    assert _open_session(app_client, locked) == 201


def test_without_a_note_or_the_csrf_token_the_lock_stays(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    locked = _locked(ctx)
    csrf = login(app_client, "rev1")
    r = app_client.post(locked.action, data={"csrf": csrf, "note": "  "})
    assert r.status_code == 422 and "请填写解除锁定的理由" in r.text
    assert app_client.post(locked.action, data={"csrf": "forged", "note": NOTE}).status_code == 403
    assert factories.update(ctx, ProxyBinding, locked.binding).locked is True
    assert _open_session(app_client, locked) == 423


def test_a_flagged_binding_is_unlocked_by_a_supervisor_not_a_reviewer(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    locked = _locked(ctx, flagged=True)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/beneficiaries/{locked.person}").text
    assert locked.action not in page and "须由主管核实后解除锁定" in page
    r = app_client.post(locked.action, data={"csrf": csrf, "note": NOTE})  # a page kept from before, or forged
    assert r.status_code == 403 and "须由主管核实后解除锁定" in r.text
    assert factories.update(ctx, ProxyBinding, locked.binding).locked is True
    with ctx.db() as db:
        denied = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "access.denied")).one()
        assert denied.actor == "staff:rev1" and denied.detail == {"need": "supervisor"}
    supervisor = new_client(app_client)
    csrf = login(supervisor, "sup1")
    assert locked.action in supervisor.get(f"/console/beneficiaries/{locked.person}").text
    assert supervisor.post(locked.action, data={"csrf": csrf, "note": NOTE}).status_code == 200
    row = factories.update(ctx, ProxyBinding, locked.binding)
    assert (row.locked, row.failures, row.flagged) == (False, 0, True)  # the flag stays on record
    assert _open_session(app_client, locked) == 201


def test_another_persons_binding_reads_as_none(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    locked, other = _locked(ctx), _locked(ctx, openid="openid-unlock-2")
    csrf = login(app_client, "rev1")
    wrong = f"/console/beneficiaries/{other.person}/bindings/{locked.binding}/unlock"
    r = app_client.post(wrong, data={"csrf": csrf, "note": NOTE})
    assert r.status_code == 404 and "代办绑定不存在或已解除" in r.text
    assert factories.update(ctx, ProxyBinding, locked.binding).locked is True
