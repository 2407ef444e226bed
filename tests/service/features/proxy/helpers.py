"""Driving the proxy API as a relative's phone would, and setting up elders and verified relatives."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from typing import Any, cast

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.decision.result import Outcome
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import Certification, CertSession, SessionState, utcnow
from service.certification.processing import claim, process
from service.features.proxy.models import ProxyOperator
from service.features.proxy.operators import mark_verified
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.conftest import ADMIN

P = "/api/v1/proxy"
_openids = itertools.count(1)
# A relative's session the machine sent to staff for something other than the face: its face cleared the accept
# and the stricter proxy lines, so one reviewer may accept it (a face in doubt, or none compared, takes two:
# docs/security.md, Part BG). The result a decided review case stores, reduced to what the rule reads.
REVIEW_WITH_A_CLEAR_FACE: dict[str, Any] = {
    "decision": "review",
    "scores": {"card_similarity": 0.9},
    "thresholds": {"face_accept": 0.5, "proxy_face_accept": 0.55},
}


def bearer(token: str) -> dict[str, str]:
    # No X-API-Key: a relative's phone holds only its operator token.
    return {"Authorization": f"Bearer {token}", "X-API-Key": ""}


def login(client: TestClient, channel_id: str | None = None, channel: str = "wechat") -> dict[str, Any]:
    r = client.post(f"{P}/operators", json={"channel": channel, "channel_id": channel_id or f"openid-{next(_openids)}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def verify_directly(ctx: ServiceContext, operator_id: str, name: str = "李建国", number: str | None = None) -> str:
    """Mark an operator verified as their verification session would (tests of the binding rules)."""
    number = number or factories.id_number(region="110101")
    with ctx.db() as db:
        op = db.get(ProxyOperator, operator_id)
        assert op is not None
        mark_verified(op, ctx.keyring.id_hash(number), number[:4] + "**", name)
    return number


def verified_operator(client: TestClient, ctx: ServiceContext) -> dict[str, Any]:
    op = login(client)
    verify_directly(ctx, op["operator_id"])
    return op


def elder(db: Session, ctx: ServiceContext, **kw: Any) -> tuple[str, str, str]:
    """(external_id, id_number, name) of a new elder on the roster."""
    number = kw.pop("id_number", None) or factories.id_number(birth=dt.date(1938, 5, 2))
    name = kw.pop("name", "王桂兰")
    b = factories.beneficiary(db, ctx.keyring, id_number=number, name=name, **kw)
    return b.external_id, number, name


def new_elder(ctx: ServiceContext, **kw: Any) -> tuple[str, str, str]:
    with ctx.db() as db:
        return elder(db, ctx, **kw)


def bind(client: TestClient, op: dict[str, Any], number: str, name: str, relationship: str = "child") -> Any:
    body = {"elder_name": name, "elder_id_number": number, "relationship": relationship}
    return client.post(f"{P}/bindings", json=body, headers=bearer(op["token"]))


def staff_consent(client: TestClient, binding_id: str, staff_id: str = "staff-007") -> Any:
    return client.post(
        f"{P}/bindings/{binding_id}/consent", json={"method": "staff_approval", "staff_id": staff_id}, headers=ADMIN
    )


def active_binding(client: TestClient, op: dict[str, Any], number: str, name: str) -> dict[str, Any]:
    r = bind(client, op, number, name)
    assert r.status_code == 201, r.text
    b: dict[str, Any] = r.json()
    if b["status"] == "pending_consent":
        r = staff_consent(client, b["binding_id"])
        assert r.status_code == 200, r.text
        b = r.json()
    assert b["status"] == "active"
    return b


def roster_csv(external_id: str, number: str, name: str) -> bytes:
    """A one-person roster file: the person under `external_id`, with this number and name."""
    buf = io.StringIO()
    csv.writer(buf).writerows(
        [["external_id", "id_number", "name", "benefit_types"], [external_id, number, name, "enterprise_pension"]]
    )
    return buf.getvalue().encode()


def import_roster(client: TestClient, data: bytes) -> dict[str, Any]:
    """The roster file imported through the API as staff; its report."""
    r = client.post("/api/v1/roster", files={"file": ("roster.csv", data, "text/csv")}, headers=ADMIN)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def listed_bindings(client: TestClient, op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operator's bindings as their phone lists them, by binding id."""
    return {b["binding_id"]: b for b in client.get(f"{P}/bindings", headers=bearer(op["token"])).json()}


# A proxy session moved along by hand (the worker's FixedCertifier reads no media): queued, decided, sent to staff.
STAFF_ACCEPT = {"decision": "accept", "reviewer": "窗口1-周"}


def queue_untouched(ctx: ServiceContext, s: dict[str, Any]) -> None:
    """Card and video in, queued (the worker's FixedCertifier never reads them)."""
    sid = s["session_id"]
    card, video = f"sessions/{sid}/id_card", f"sessions/{sid}/video"
    ctx.storage.put(card, b"card")
    ctx.storage.put(video, b"video")
    factories.update(
        ctx, CertSession, sid, id_card_key=card, video_key=video, state=SessionState.QUEUED, queued_at=utcnow()
    )


def decide_as(ctx: ServiceContext, session_id: str, outcome: Outcome) -> CertSession:
    assert claim(ctx, session_id, "w1") == session_id
    assert process(ctx, cast(Certifier, FixedCertifier(outcome)), session_id, "w1")
    with ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.state == SessionState.DECIDED
        db.expunge(s)
        return s


def set_for_review(ctx: ServiceContext, session_id: str) -> None:
    factories.update(
        ctx,
        CertSession,
        session_id,
        state="decided",
        decision="review",
        decided_at=utcnow(),
        result=dict(REVIEW_WITH_A_CLEAR_FACE),
    )


def count_certifications(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count()).select_from(Certification)) or 0)
