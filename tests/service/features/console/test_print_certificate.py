"""打印凭证 on the person's page: a person who walks in to the counter gets a printed copy of their certificate
(routes_roster.print_certificate, certificate_copy.py: `certificates.latest_copy`, the one rule). Any staff member
who may see the person, as for the page's other counter actions; audited in the console's chain; the copy refused,
with why in Chinese, when none is valid. Before: the console listed the certifications and printed none (Part BZ,
"Left")."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.revocation import revoke_certification
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.models import StaffUser
from tests.service import factories
from tests.service.features.console.conftest import certified_at_counter, login, new_client


def _copies(ctx: ServiceContext) -> list[tuple[str, object]]:
    with ctx.db() as db:
        found = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "certificate.copy")).all()
        return [(e.actor, e.detail["certification"]) for e in found]


def test_a_reviewer_prints_the_certificate_of_a_person_at_the_counter(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, cid = certified_at_counter(ctx)
    login(app_client, "rev1")
    url = f"/console/beneficiaries/{bid}/certificate.png"
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert f'href="{url}"' in page and "打印凭证" in page
    r = app_client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert r.headers["cache-control"] == "no-store"
    assert _copies(ctx) == [("staff:rev1", cid)]


def test_none_valid_is_refused_with_why_and_nothing_is_recorded(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        never = factories.beneficiary(db, ctx.keyring).id
    bid, cid = certified_at_counter(ctx)
    with ctx.db() as db:
        revoke_certification(db, ctx.rules, cid, "impersonation", "冒用", "staff:sup1", hold_days=180)
    login(app_client, "rev1")
    r = app_client.get(f"/console/beneficiaries/{never}/certificate.png")
    assert r.status_code == 404 and "该人员还没有通过的认证，无凭证可打印" in r.text
    r = app_client.get(f"/console/beneficiaries/{bid}/certificate.png")
    assert r.status_code == 409 and "无法打印凭证：该凭证已被经办机构撤销" in r.text
    assert _copies(ctx) == []


def test_staff_outside_the_persons_region_and_strangers_print_nothing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, _ = certified_at_counter(ctx)
    url = f"/console/beneficiaries/{bid}/certificate.png"
    r = app_client.get(url, follow_redirects=False)  # not logged in: the login page, nothing served
    assert r.status_code in (302, 303) and "/console/login" in r.headers["location"]
    with ctx.db() as db:
        user = db.get(StaffUser, staff_users["rev2"])
        assert user is not None
        user.scope = ["4201"]  # 武汉市: the person is in 济南
    wuhan = new_client(app_client)
    login(wuhan, "rev2")
    r = wuhan.get(url)
    assert r.status_code == 404 and "人员不存在" in r.text and r.headers["content-type"].startswith("text/html")
    assert _copies(ctx) == []
