"""A bureau's own system revokes a certification found fraudulent (death records matched against payments, the
fund's audit) through the operator API: `POST /api/v1/certifications/revoke` (service/certification/revoke_request.py).

Before: only a supervisor in the staff console could revoke one; the bureau's systems had no way to, and every
finding had to be re-typed by hand, person by person.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.evidence_hold import PLACED
from service.certification.models import AuditEntry, Beneficiary, Certification, EvidenceHold, utcnow
from service.certification.processing import accept_session
from service.certification.retention import purge_media
from service.certification.revocation import ACTION
from service.certification.revoke_request import REQUEST_ACTION, Target, revoke_requested
from service.features.proxy.models import ProxyBinding, ProxySession, ProxySessionKind
from service.infra.clock import local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.test_evidence_hold import _accepted, _past_retention
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)
from tests.service.test_revocation import _certify, _person
from tests.service.test_signing_key_rotation import rotate

URL = "/api/v1/certifications/revoke"
NOTE = "民政死亡信息比对:本人已于上月去世"


def _post(client: TestClient, body: dict[str, Any], key: str | None = None, admin: bool = True) -> Any:
    headers = {**(ADMIN if admin else {}), "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post(URL, json=body, headers=headers)


def _entries(ctx: ServiceContext, action: str) -> list[AuditEntry]:
    with ctx.db() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_an_operator_revokes_by_certification_id_as_its_key(client: TestClient, ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today - dt.timedelta(days=10))
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    r = _post(client, {"certification_id": cid, "reason": "impersonation", "note": NOTE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["certification_id"] == cid and body["reason"] == "impersonation" and body["replayed"] is False
    assert body["valid_until"] == (today - dt.timedelta(days=10)).isoformat()  # recomputed without it
    assert body["external_id"] == factories.update(ctx, Beneficiary, bid).external_id
    cert = factories.update(ctx, Certification, cid)
    assert cert.revoked_at is not None and cert.revoked_by is not None and cert.revoked_by.startswith("admin:")
    (core,) = _entries(ctx, ACTION)
    (request,) = _entries(ctx, REQUEST_ACTION)
    assert core.actor == request.actor == cert.revoked_by  # the operator key's identity, not a name it typed
    assert request.detail["via"] == "api" and request.detail["certification"] == cid


def test_by_session_or_by_person_and_date_and_what_names_nothing(client: TestClient, ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx)
    external = factories.update(ctx, Beneficiary, bid).external_id
    one, _ = _certify(ctx, bid, today - dt.timedelta(days=40))
    two, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    on = (today - dt.timedelta(days=40)).isoformat()
    r = _post(client, {"external_id": external, "certified_on": on, "reason": "wrong_accept", "note": NOTE})
    assert r.status_code == 200 and r.json()["certification_id"] == one, r.text
    session = factories.update(ctx, Certification, two).session_id
    r = _post(client, {"session_id": session, "reason": "other", "note": NOTE})
    assert r.status_code == 200 and r.json()["certification_id"] == two, r.text
    refusals: list[tuple[dict[str, Any], int, str]] = [
        ({"external_id": external, "certified_on": today.isoformat()}, 404, "CERTIFICATION_UNKNOWN"),
        ({"external_id": "NOBODY", "certified_on": on}, 404, "CERTIFICATION_UNKNOWN"),
        ({"certification_id": 999999}, 404, "CERTIFICATION_UNKNOWN"),
        ({"certification_id": one, "external_id": "SOMEONE-ELSE"}, 404, "CERTIFICATION_UNKNOWN"),
        ({"external_id": external}, 422, "REVOKE_TARGET"),  # a person alone names no certification
        ({}, 422, "REVOKE_TARGET"),
        ({"certification_id": one, "session_id": session}, 422, "REVOKE_TARGET"),
    ]
    for target, status, code in refusals:
        r = _post(client, {**target, "reason": "other", "note": NOTE})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (target, r.text)
        assert r.json()["error"]["message"]  # a Chinese message for every error


def test_two_certifications_the_same_day_are_ambiguous(client: TestClient, ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx)
    external = factories.update(ctx, Beneficiary, bid).external_id
    _certify(ctx, bid, today - dt.timedelta(days=3))
    _certify(ctx, bid, today - dt.timedelta(days=3))
    r = _post(
        client,
        {
            "external_id": external,
            "certified_on": (today - dt.timedelta(days=3)).isoformat(),
            "reason": "other",
            "note": NOTE,
        },
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "CERTIFICATION_AMBIGUOUS", r.text
    assert _entries(ctx, ACTION) == []


def test_a_retried_request_is_answered_as_the_first(client: TestClient, ctx: ServiceContext) -> None:
    """The bureau's system timed out and sends the same request again (same Idempotency-Key): the same answer,
    marked replayed, not a CERTIFICATION_REVOKED that would read as "someone else revoked it"; nothing twice."""
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    body = {"certification_id": cid, "reason": "impersonation", "note": NOTE}
    first = _post(client, body, key="retry-0001")
    again = _post(client, body, key="retry-0001")
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == {**first.json(), "replayed": True}
    assert len(_entries(ctx, ACTION)) == 1 and len(_entries(ctx, REQUEST_ACTION)) == 1
    other = _post(client, {**body, "note": "另一份核查意见"}, key="retry-0001")
    assert other.status_code == 409 and other.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH", other.text
    fresh = _post(client, body, key="another-request")
    assert fresh.status_code == 409 and fresh.json()["error"]["code"] == "CERTIFICATION_REVOKED", fresh.text


def test_a_request_retried_across_a_signing_key_rotation_is_still_the_first(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The operator key's identity in the audit (`admin:<mac8>`) is a MAC under the signing key: the deployment
    restarted with a new PENSION_CERT_SIGNING_KEY (the old one in _PREVIOUS, docs/security.md Part AH) between a
    request and its retry. The same key, the same request: replayed, not IDEMPOTENCY_MISMATCH (which tells the
    bureau's system that someone else used its key); another operator key is still a mismatch."""
    today = local_today(ctx.settings)
    cid, _ = _certify(ctx, _person(ctx), today - dt.timedelta(days=5))
    body = {"certification_id": cid, "reason": "impersonation", "note": NOTE}
    first = _post(client, body, key="retry-rotation-1")
    assert first.status_code == 200, first.text
    rotate(ctx)
    again = _post(client, body, key="retry-rotation-1")
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "replayed": True}
    assert len(_entries(ctx, ACTION)) == 1 and len(_entries(ctx, REQUEST_ACTION)) == 1
    rotate(ctx, keep_previous=False)  # the key that made the first entry's name is no longer in use
    lost = _post(client, body, key="retry-rotation-1")
    assert lost.status_code == 409 and lost.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH", lost.text


def test_a_request_retried_across_an_operator_key_replacement_is_still_the_first(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The bureau's system replaced its operator key (both in ADMIN_API_KEYS, the pair in API_KEYS_REPLACED)
    between a request and its retry. Before: the retry under the new key was IDEMPOTENCY_MISMATCH (someone else
    used the key); the pair was refused at start for an operator key. Now it is the first request's answer; an
    operator key the pair does not name is still a mismatch."""
    today = local_today(ctx.settings)
    cid, _ = _certify(ctx, _person(ctx), today - dt.timedelta(days=5))
    body = {"certification_id": cid, "reason": "impersonation", "note": NOTE}
    first = _post(client, body, key="retry-replaced-1")
    assert first.status_code == 200, first.text
    security = ctx.settings.security
    new, other = "the-systems-new-operator-key-0123456789", "another-operator-key-0123456789"
    security.admin_api_keys += [new, other]
    security.api_keys_replaced = {ADMIN["X-API-Key"]: new}
    again = client.post(URL, json=body, headers={"X-API-Key": new, "Idempotency-Key": "retry-replaced-1"})
    assert again.status_code == 200 and again.json() == {**first.json(), "replayed": True}, again.text
    assert len(_entries(ctx, ACTION)) == 1 and len(_entries(ctx, REQUEST_ACTION)) == 1
    stranger = client.post(URL, json=body, headers={"X-API-Key": other, "Idempotency-Key": "retry-replaced-1"})
    assert stranger.status_code == 409 and stranger.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH", stranger.text


def test_only_an_operator_key_with_a_request_key_and_a_reason(client: TestClient, ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    channel = _post(client, {"certification_id": cid, "reason": "other", "note": NOTE}, admin=False)
    assert channel.status_code == 403 and channel.json()["error"]["code"] == "ADMIN_KEY_REQUIRED"
    bad = _post(client, {"certification_id": cid, "reason": "fraud", "note": NOTE})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "REVOKE_REASON", bad.text
    empty = _post(client, {"certification_id": cid, "reason": "other", "note": "   "})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "REVOKE_REASON", empty.text
    no_key = client.post(URL, json={"certification_id": cid, "reason": "other", "note": NOTE}, headers=ADMIN)
    assert no_key.status_code == 422 and no_key.json()["error"]["code"] == "FIELD_MISSING", no_key.text
    assert factories.update(ctx, Certification, cid).revoked_at is None


def proxy_certified(ctx: ServiceContext) -> tuple[str, str]:
    """A relative certified an elder under their binding three days ago: (the session id, the binding id)."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring)
        op, binding = factories.relative_binding(db, elder.id)
        s = factories.session_row(elder.id, channel="proxy", state="decided", decision="accept", decided_at=utcnow())
        db.add(s)
        db.flush()
        kind = ProxySessionKind.CERTIFICATION.value
        db.add(ProxySession(session_id=s.id, kind=kind, operator_id=op.id, binding_id=binding.id))
        db.flush()
        accept_session(db, ctx, s, elder, today - dt.timedelta(days=3), None)
        return s.id, binding.id


def test_a_relatives_proxy_certification_revoked_by_the_api_locks_their_binding(
    client: TestClient, ctx: ServiceContext
) -> None:
    """As the console's revocation does (features/console/revoke.py): the relative who certified under the binding
    cannot certify the elder again that way before staff have looked."""
    session_id, binding_id = proxy_certified(ctx)
    r = _post(client, {"session_id": session_id, "reason": "impersonation", "note": NOTE})
    assert r.status_code == 200, r.text
    assert factories.update(ctx, ProxyBinding, binding_id).locked
    assert [e.target for e in _entries(ctx, "proxy.binding.locked")] == [r.json()["external_id"]]


def test_the_same_request_twice_at_once_revokes_once_and_answers_both(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The bureau's system retries before its first request's answer came back: the retry waits for the person's
    row, then finds the first one's revocation under its key and is answered as the first (PostgreSQL)."""
    ctx = pg_ctx
    today = local_today(ctx.settings)
    bid = _person(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    first_wrote, go_on = threading.Event(), threading.Event()

    def revoke(hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_wrote.is_set():
                        first_wrote.set()
                        go_on.wait(10)

            target = Target(certification_id=cid)
            done = revoke_requested(db, ctx, target, "other", NOTE, "admin:abcd1234", "key-00001", {})
            return done.replayed

    first, first_out = running(lambda: revoke(True))
    assert first_wrote.wait(10)
    second, second_out = running(lambda: revoke(False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())
    go_on.set()
    first.join(30)
    second.join(30)
    assert (first_out, second_out) == ([False], [True])
    assert len(_entries(ctx, ACTION)) == 1 and len(_entries(ctx, REQUEST_ACTION)) == 1


def test_the_answer_says_what_became_of_the_evidence(client: TestClient, ctx: ServiceContext) -> None:
    """Before: the API's revocation placed its hold without an end in its audit entry (`until`), and its answer did
    not say whether the media were held or deleted already: the bureau could not learn the evidence was gone."""
    gone_sid, gone, _ = _accepted(ctx, _past_retention(ctx))
    purge_media(ctx)  # its retention period over: card and video deleted
    held_sid, held, _ = _accepted(ctx, 1)
    body = {"certification_id": held, "reason": "impersonation", "note": NOTE}
    r = _post(client, body, key="key-held-1")
    assert r.status_code == 200, r.text
    with ctx.db() as db:
        hold = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == held_sid)).one()
    until = hold.ends_at.isoformat(timespec="seconds") + "Z"
    assert (r.json()["evidence"], r.json()["evidence_held_until"]) == ("held", until)
    (placed,) = _entries(ctx, PLACED)
    assert placed.detail["until"] == hold.ends_at.isoformat(timespec="seconds")
    again = _post(client, body, key="key-held-1").json()  # a retry: answered as the first
    assert (again["replayed"], again["evidence"], again["evidence_held_until"]) == (True, "held", until)
    r = _post(client, {"session_id": gone_sid, "reason": "wrong_accept", "note": NOTE})
    assert (r.json()["certification_id"], r.json()["evidence"], r.json()["evidence_held_until"]) == (
        gone,
        "purged",
        None,
    ), r.text
    r = _post(
        client,
        {
            "certification_id": _certify(ctx, _person(ctx), local_today(ctx.settings))[0],
            "reason": "other",
            "note": NOTE,
        },
    )
    assert (r.json()["evidence"], r.json()["evidence_held_until"]) == ("not_held", None), r.text


def test_a_features_revocation_hook_runs_once_per_revocation_from_outside(ctx: ServiceContext) -> None:
    """Before: what the console adds to a revocation from outside (the binding's lock) was a second function that
    copied `revoke_requested`'s parameters (features/console/revoke_outside.py), which every route had to call
    instead. Now it is a RevokedHook on `ctx.hooks.revocations`, run by `revoke_requested` itself: once per
    revocation, not again for a retried request."""
    calls: list[tuple[str, str, str]] = []
    ctx.hooks.revocations["test"] = lambda db, session_id, actor, target: calls.append((session_id, actor, target))
    cid, _ = _certify(ctx, _person(ctx), local_today(ctx.settings) - dt.timedelta(days=5))
    answers = []
    for _ in range(2):
        with ctx.db() as db:
            target = Target(certification_id=cid)
            answers.append(revoke_requested(db, ctx, target, "other", NOTE, "admin:abcd1234", "key-00002", {}))
    assert [a.replayed for a in answers] == [False, True]
    assert calls == [(answers[0].session_id, "admin:abcd1234", answers[0].external_id)]
