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
from service.certification.outcome import OUTCOME_READ, OUTCOMES_READ
from service.infra import clock
from service.infra.clock import local_midnight, local_today
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


def _decided_on(ctx: ServiceContext, sid: str, day: dt.date, hour: int, decision: str = "accept") -> dt.datetime:
    """`sid` decided at `hour` o'clock of the bureau's `day` (stored naive UTC); that time."""
    at = local_midnight(ctx.settings, day) + dt.timedelta(hours=hour)
    factories.update(ctx, CertSession, sid, state="decided", decision=decision, reasons=[], decided_at=at)
    return at


def _opened(client: TestClient, ctx: ServiceContext, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """A session opened by the key of `headers` (default: the test's channel key); its id and person's number."""
    number = factories.id_number(region="110105")
    external_id = beneficiary_with_number(ctx, number)
    r = client.post("/api/v1/sessions", json={"external_id": external_id, "template_consent": True}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["session_id"]), number


def test_a_key_lists_the_outcomes_of_the_sessions_it_opened_in_a_period_page_by_page(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Before: an integrator reconciling its year read each session it opened one by one (`/outcome`) and had no
    list of them; `GET /api/v1/sessions/outcomes` was read as the session id "outcomes". Now the key lists the
    sessions it opened that were decided on the bureau's days asked, by decision time, a page after another
    (`next`), each with the person's external id and masked number; another key's are not listed; each page is
    audited with whom it showed."""
    ctx.settings.security.api_keys.append(BANK)
    first = local_today(ctx.settings) - dt.timedelta(days=40)
    last = first + dt.timedelta(days=30)
    mine = [_opened(client, ctx) for _ in range(4)]
    bank, _ = _opened(client, ctx, {"X-API-Key": BANK})
    _decided_on(ctx, mine[0][0], first, 0)  # the bureau's first day begins at its own midnight (16:00 UTC before)
    _decided_on(ctx, mine[1][0], last, 23, "reject")
    _decided_on(ctx, mine[2][0], first + dt.timedelta(days=5), 9)
    _decided_on(ctx, mine[3][0], last + dt.timedelta(days=1), 0)  # the day after: not in the period
    _decided_on(ctx, bank, first + dt.timedelta(days=5), 10)
    period = {"decided_from": first.isoformat(), "decided_to": last.isoformat(), "limit": 2}

    pages, params = [], dict(period)
    while True:
        r = client.get("/api/v1/sessions/outcomes", params=params)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        if r.json()["next"] is None:
            break
        params = period | {"after": r.json()["next"]}

    listed = [item for page in pages for item in page["items"]]
    assert [len(page["items"]) for page in pages] == [2, 1]
    assert [item["session_id"] for item in listed] == [mine[0][0], mine[2][0], mine[1][0]]
    assert listed[2]["decision"] == "reject" and listed[2]["state"] == "decided"
    for item, (_, number) in zip(listed, (mine[0], mine[2], mine[1]), strict=True):
        assert item["id_masked"].startswith(number[:4]) and "*" in item["id_masked"] and number not in r.text
    with ctx.db() as db:
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == OUTCOMES_READ).order_by(AuditEntry.id))
        shown = [(e.actor, e.detail["sessions"], len(e.detail["shown"])) for e in entries]
    actor = ctx.keyring.key_names("api:", API_KEY)[0]
    assert shown == [(actor, 2, 2), (actor, 1, 1)]

    banks = client.get("/api/v1/sessions/outcomes", params=period, headers={"X-API-Key": BANK}).json()
    assert [item["session_id"] for item in banks["items"]] == [bank]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"decided_from": "1704067200", "decided_to": "2026-12-31"}, "FIELD_INVALID"),
        ({"decided_to": "2026-12-31"}, "FIELD_MISSING"),
        ({"decided_from": "2026-12-31", "decided_to": "2026-01-01"}, "FIELD_INVALID"),
        ({"decided_from": "2026-01-01", "decided_to": "2026-12-31", "limit": "501"}, "FIELD_INVALID"),
        ({"decided_from": "2026-01-01", "decided_to": "2026-12-31", "after": "sess-1"}, "FIELD_INVALID"),
        ({"decided_from": "2026-01-01", "decided_to": "2026-12-31", "after": "2026-13-01T00:00~s"}, "FIELD_INVALID"),
        ({"decided_from": "0001-01-01", "decided_to": "2026-12-31"}, "INVALID_DATE"),
        ({"decided_from": "2026-01-01", "decided_to": "9999-12-31"}, "INVALID_DATE"),
    ],
    ids=["seconds", "no-start", "reversed", "page-too-large", "bare-id", "bad-time", "first-day", "last-day"],
)
def test_the_outcome_list_refuses_what_is_no_period_page_or_cursor(
    client: TestClient, params: dict[str, str], code: str
) -> None:
    r = client.get("/api/v1/sessions/outcomes", params=params)
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
