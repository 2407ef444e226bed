"""The certificate of a case decided by staff review, for the relative bound to the elder (proxy API).

Found by review: a certificate was served only with the session's bearer token, within `SESSION_TTL_S` (1 h) of
the video being queued, and a review accept does not extend it. A case reviewed the next morning (every relative's
first proxy certification goes to review) left a certificate nobody could ever obtain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Certification, CertSession, utcnow
from service.certification.revocation import revoke_certification
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.proxy.helpers import (
    REVIEW_WITH_A_CLEAR_FACE,
    P,
    active_binding,
    bearer,
    new_elder,
    verified_operator,
)


def _reviewed_proxy_case(client: TestClient, ctx: ServiceContext) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(relative, binding, session id) of a proxy certification queued yesterday, referred to review and accepted
    by staff now, its session's token long expired."""
    _, number, name = new_elder(ctx, name="王桂兰")
    child = verified_operator(client, ctx)
    binding = active_binding(client, child, number, name)
    s = client.post(f"{P}/bindings/{binding['binding_id']}/sessions", headers=bearer(child["token"])).json()
    now = utcnow()
    factories.update(
        ctx, CertSession, s["session_id"], expires_at=now - dt.timedelta(hours=17),
        queued_at=now - dt.timedelta(hours=18), state="decided", decision="review",
        decided_at=now - dt.timedelta(hours=18), result=REVIEW_WITH_A_CLEAR_FACE,
    )  # fmt: skip
    body = {"decision": "accept", "reviewer": "窗口3-李", "note": "核对无误"}
    r = client.post(f"/api/v1/sessions/{s['session_id']}/review", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    expired = client.get(f"/api/v1/sessions/{s['session_id']}/certificate", headers=bearer(s["token"]))
    assert expired.status_code == 401  # the session's token: Part D's lifetime, kept
    return child, binding, s["session_id"]


def test_the_bound_relative_gets_the_reviewed_certificate(client: TestClient, ctx: ServiceContext) -> None:
    child, binding, session_id = _reviewed_proxy_case(client, ctx)
    url = f"{P}/bindings/{binding['binding_id']}/certificate"
    r = client.get(url, headers=bearer(child["token"]))
    assert r.status_code == 200, r.text
    with ctx.db() as db:
        cert = db.scalars(select(Certification).where(Certification.session_id == session_id)).one()
        copies = db.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.copy")).all()
    assert r.json()["code"] == cert.code and r.json()["method_zh"] == "亲属代办认证" and r.json()["name"] == "王桂兰"
    assert r.headers["cache-control"] == "no-store"
    png = client.get(url + ".png", headers=bearer(child["token"]))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert [(e.actor, e.detail["certification"]) for e in copies] == [(f"operator:{child['operator_id']}", cert.id)]
    # The public check of the code it carries answers valid.
    assert client.get("/api/v1/certificates/verify", params={"code": cert.code}).json()["status"] == "valid"


def test_nobody_else_gets_it_nor_a_revoked_one(client: TestClient, ctx: ServiceContext) -> None:
    child, binding, session_id = _reviewed_proxy_case(client, ctx)
    url = f"{P}/bindings/{binding['binding_id']}/certificate"
    stranger = verified_operator(client, ctx)
    r = client.get(url, headers=bearer(stranger["token"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND"
    with ctx.db() as db:
        cid = db.scalars(select(Certification.id).where(Certification.session_id == session_id)).one()
        revoke_certification(
            db, ctx.rules, cid, "impersonation", "老人已去世，子女代为认证", "staff:sup1", hold_days=180
        )
    r = client.get(url, headers=bearer(child["token"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "CERTIFICATE_REVOKED"


def test_not_once_the_binding_has_ended(client: TestClient, ctx: ServiceContext) -> None:
    child, binding, _ = _reviewed_proxy_case(client, ctx)
    assert client.delete(f"{P}/bindings/{binding['binding_id']}", headers=bearer(child["token"])).status_code == 200
    r = client.get(f"{P}/bindings/{binding['binding_id']}/certificate.png", headers=bearer(child["token"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "PROXY_NOT_BOUND"
