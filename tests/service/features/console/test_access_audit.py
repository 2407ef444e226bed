"""Every access audited, in the staff console (docs/security.md, Part Y): a page refused to a staff member's role
(the audit log, the alerts, user management) is itself an access attempt, and is recorded; a list page names
whom it showed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import audit_chain
from service.features.console.models import AssistRequest, ConsoleAlert
from tests.service import factories
from tests.service.features.console.conftest import login


def denied(ctx: ServiceContext) -> list[tuple[str, str, dict[str, object]]]:
    with ctx.db() as db:
        rows = db.scalars(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "access.denied").order_by(ConsoleAuditEntry.seq)
        )
        return [(e.actor, e.target, e.detail) for e in rows]


def test_a_page_refused_to_a_role_is_audited(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A reviewer opening the audit log or the alerts (people's names, masked numbers, deaths) got a 403 and the log
    showed nothing: the attempts of a curious account were invisible."""
    login(app_client, "rev1")
    for path in ("/console/audit", "/console/alerts", "/console/users"):
        r = app_client.get(path)
        assert r.status_code == 403 and "权限" in r.text, path
    assert denied(ctx) == [
        ("staff:rev1", "/console/audit", {"need": "supervisor"}),
        ("staff:rev1", "/console/alerts", {"need": "supervisor"}),
        ("staff:rev1", "/console/users", {"need": "admin"}),
    ]
    with ctx.db() as db:
        assert audit_chain.verify_chain(db).ok

    # Allowed, nothing refused: a supervisor's view is a view.
    sup = TestClient(app_client.app)
    login(sup, "sup1")
    assert sup.get("/console/alerts").status_code == 200
    assert len(denied(ctx)) == 3


def detail_of(ctx: ServiceContext, action: str) -> dict[str, object]:
    with ctx.db() as db:
        e = db.scalar(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == action).order_by(ConsoleAuditEntry.seq.desc())
        )
        assert e is not None, action
        return e.detail


def test_a_list_page_names_the_people_it_showed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The queue, the alerts and the citizens' requests show names and masked numbers of up to hundreds of people,
    and their audit entries held only a count: "who has seen this person's data?" could not be answered. They name
    the records shown now, as the roster search does."""
    now = utcnow()
    with ctx.db() as db:
        case_person = factories.beneficiary(db, ctx.keyring, external_id="EXT-QUEUE")
        db.add(factories.session_row(case_person.id, state="decided", decision="review", decided_at=now, result={}))
        alert_person = factories.beneficiary(db, ctx.keyring, external_id="EXT-ALERT")
        db.add(ConsoleAlert(kind="certified_after_death", beneficiary_id=alert_person.id, detail={}))
        asking = factories.beneficiary(db, ctx.keyring, external_id="EXT-ASKS")
        db.add(AssistRequest(beneficiary_id=asking.id, kind="home_visit", phone="13800000000", openid="o-1"))
    login(app_client, "sup1")
    for path in ("/console/queue", "/console/alerts", "/console/requests"):
        assert app_client.get(path).status_code == 200, path
    assert detail_of(ctx, "queue.view")["shown"] == ["EXT-QUEUE"]
    assert detail_of(ctx, "alerts.view")["shown"] == ["EXT-ALERT"]
    assert detail_of(ctx, "assist.list")["shown"] == ["EXT-ASKS"]
