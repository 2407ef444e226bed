"""Driving the session API as a channel and a citizen would."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity
from tests.service import factories


def open_session(client: TestClient, external_id: str, consent: bool = True) -> dict[str, Any]:
    r = client.post("/api/v1/sessions", json={"external_id": external_id, "template_consent": consent})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def auth(session: dict[str, Any], request_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}", "Idempotency-Key": request_id or uuid.uuid4().hex}


def put_card(
    client: TestClient, s: dict[str, Any], data: bytes, ctype: str = "image/jpeg", rid: str | None = None
) -> Any:
    return client.post(
        f"/api/v1/sessions/{s['session_id']}/id-card", headers=auth(s, rid), files={"file": ("card.jpg", data, ctype)}
    )


def put_video(
    client: TestClient,
    s: dict[str, Any],
    data: bytes,
    ctype: str = "video/webm",
    rid: str | None = None,
    nonce: str | None = None,
) -> Any:
    return client.post(
        f"/api/v1/sessions/{s['session_id']}/video",
        headers=auth(s, rid),
        files={"file": ("selfie.webm", data, ctype)},
        data={"nonce": nonce if nonce is not None else s["challenge"]["nonce"]},
    )


def beneficiary_with_number(ctx: ServiceContext, number: str, **kw: Any) -> str:
    with ctx.db() as db:
        return beneficiary_in(db, ctx, number, **kw)


def beneficiary_in(db: Session, ctx: ServiceContext, number: str, **kw: Any) -> str:
    b = factories.beneficiary(db, ctx.keyring, id_number=number, **kw)
    return b.external_id


def in_wechat(client: TestClient, ctx: ServiceContext, openid: str = "openid-h5-test") -> None:
    """The H5 pages' WeChat login cookie, as the OAuth callback sets it."""
    client.cookies.set(identity.COOKIE, identity.mint(ctx, openid))


def open_h5_session(client: TestClient, ctx: ServiceContext) -> dict[str, Any]:
    """A new beneficiary's self session opened from the H5 pages (logged in to WeChat, consent given)."""
    number = factories.id_number()
    beneficiary_with_number(ctx, number)
    in_wechat(client, ctx)
    r = client.post("/h5/api/sessions", json={"name": "张秀英", "id_number": number, "consent": True})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
