"""GET /api/v1/sessions/{id}/outcome: the channel key that opened a session reads its outcome, also once the session
token has ended (docs/service.md). Before, a case staff decided after SESSION_TTL_S was unreadable to the app that
opened it (401 TOKEN_EXPIRED with the token, 401 with the key), so a rejected pensioner was never told to retry."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CertSession, utcnow
from service.certification.outcome import OUTCOME_READ
from service.infra import clock
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session
from tests.service.conftest import ADMIN, API_KEY

BANK = "bank-app-channel-key-0123456789abcdef"  # another integrator's channel key
NEW_KEY = "the-same-integrators-new-key-0123456789"  # the key that replaced the test's channel key


def _in_review(ctx: ServiceContext, sid: str) -> None:
    """Card and video in, queued now, then sent to staff by the worker (a borderline card)."""
    now = utcnow()
    factories.update(
        ctx,
        CertSession,
        sid,
        state="decided",
        decision="review",
        reasons=["ID_GLARE"],
        queued_at=now,
        decided_at=now,
        result={"decision": "review", "scores": {"card_similarity": 0.4}},
    )


def test_the_opening_key_reads_an_outcome_staff_decided_after_the_token_ended(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = clock.now_utc()
    monkeypatch.setattr(clock, "now_utc", lambda: opened)
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number(region="110105", seq=95)))
    sid = s["session_id"]
    _in_review(ctx, sid)
    later = opened + dt.timedelta(hours=2)  # staff decide after SESSION_TTL_S
    monkeypatch.setattr(clock, "now_utc", lambda: later)
    body = {"decision": "reject", "reviewer": "窗口1-周", "note": "证件不清"}
    assert client.post(f"/api/v1/sessions/{sid}/review", json=body, headers=ADMIN).status_code == 200
    token_read = client.get(f"/api/v1/sessions/{sid}/result", headers={"Authorization": f"Bearer {s['token']}"})
    assert token_read.status_code == 401 and token_read.json()["error"]["code"] == "TOKEN_EXPIRED"

    r = client.get(f"/api/v1/sessions/{sid}/outcome")

    assert r.status_code == 200, r.text
    assert r.json() == {
        "session_id": sid,
        "state": "decided",
        "channel": "self",
        "decision": "reject",
        "reasons": ["ID_GLARE"],
        "decided_at": later.replace(tzinfo=None).isoformat() + "Z",
        "reviewed": True,
    }  # no scores, no media, nothing of the reviewer or the note
    with ctx.db() as db:
        reads = db.scalars(select(AuditEntry).where(AuditEntry.action == OUTCOME_READ)).all()
    assert [(e.actor, e.target) for e in reads] == [(ctx.keyring.key_names("api:", API_KEY)[0], sid)]


def test_another_key_and_a_withdrawn_key_read_no_outcome_a_replaced_key_does(
    client: TestClient, ctx: ServiceContext
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number(region="110105", seq=96)))
    path = f"/api/v1/sessions/{s['session_id']}/outcome"
    security = ctx.settings.security
    security.api_keys.append(BANK)

    other = client.get(path, headers={"X-API-Key": BANK})
    assert other.status_code == 404 and other.json()["error"]["code"] == "NOT_FOUND"
    assert client.get("/api/v1/sessions/no-such-session/outcome").status_code == 404  # the same answer

    security.api_keys.append(NEW_KEY)  # the integrator's key replaced (docs/operations.md)
    security.api_keys_replaced = {API_KEY: NEW_KEY}
    security.api_keys.remove(API_KEY)
    assert client.get(path).status_code == 401  # the withdrawn key reads nothing
    replaced = client.get(path, headers={"X-API-Key": NEW_KEY})
    assert replaced.status_code == 200 and replaced.json()["state"] == "open", replaced.text
