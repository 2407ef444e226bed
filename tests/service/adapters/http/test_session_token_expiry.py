"""Issue #22: a session token answers nothing once its lifetime is over, whatever the use: uploads, status
polling, the result, the certificate (JSON and PNG), the H5 card upload and link. The lifetime is the
session's own (SESSION_TTL_S from its creation) and, once queued, SESSION_TTL_S from the queuing, so that a
citizen who uploaded at the last minute still reads the decision; nothing later renews it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.models import CertSession, utcnow
from tests.service import factories
from tests.service.adapters.http.helpers import (
    auth,
    beneficiary_with_number,
    open_h5_session,
    open_session,
    put_card,
    put_video,
)
from tests.service.conftest import ADMIN
from tests.service.media import LIVE_VIDEO

CARD = "idcard/synthetic/card_005.jpg"


def _refused_as_expired(r: Any) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"]["code"] == "TOKEN_EXPIRED" and set(body) == {"error"}  # the error, and no data


def _gets(client: TestClient, s: dict[str, Any]) -> list[Any]:
    headers = {"Authorization": f"Bearer {s['token']}"}
    base = f"/api/v1/sessions/{s['session_id']}"
    return [client.get(base + tail, headers=headers) for tail in ("", "/result", "/certificate", "/certificate.png")]


def test_an_expired_session_token_reads_and_uploads_nothing(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    assert put_card(client, s, (data_dir / CARD).read_bytes()).status_code == 200
    status, result, *_ = _gets(client, s)
    assert status.status_code == 200 and result.status_code == 200  # alive: polling works

    factories.update(ctx, CertSession, s["session_id"], expires_at=utcnow() - dt.timedelta(seconds=1))
    status, result, cert, png = _gets(client, s)
    for r in (status, result, cert, png):
        _refused_as_expired(r)
    _refused_as_expired(put_card(client, s, (data_dir / "idcard/synthetic/card_001.jpg").read_bytes()))
    _refused_as_expired(put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()))
    # Someone without the token learns nothing, not even that the session expired.
    wrong = client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "UNAUTHORIZED"


def test_a_queued_session_token_lives_session_ttl_after_queuing_and_a_review_does_not_renew_it(
    client: TestClient, ctx: ServiceContext
) -> None:
    ttl = dt.timedelta(seconds=ctx.settings.certification.session_ttl_s)
    ext = beneficiary_with_number(ctx, factories.id_number(), status="suspended")
    s = open_session(client, ext)
    now = utcnow()
    # Uploaded at the session's last minute: the upload window is over, the decision is read within SESSION_TTL_S.
    factories.update(
        ctx,
        CertSession,
        s["session_id"],
        expires_at=now - dt.timedelta(minutes=1),
        queued_at=now - dt.timedelta(minutes=2),
        state="decided",
        decision="review",
        decided_at=now,
        result=factories.review_result(),
    )
    status, result, *_ = _gets(client, s)
    assert status.status_code == 200 and result.json()["result"] == factories.review_result()

    # Staff accept it: a certificate exists, readable while the token lives.
    body = {"decision": "accept", "reviewer": "窗口3-李", "note": "核对无误"}
    assert client.post(f"/api/v1/sessions/{s['session_id']}/review", json=body, headers=ADMIN).status_code == 200
    _, result, cert, png = _gets(client, s)
    assert result.json()["decision"] == "accept" and cert.status_code == 200 and png.status_code == 200

    # SESSION_TTL_S after the queuing the token is over, though the review decided the session just now.
    factories.update(ctx, CertSession, s["session_id"], queued_at=now - ttl - dt.timedelta(seconds=1))
    for r in _gets(client, s):
        _refused_as_expired(r)


@pytest.mark.parametrize("card_check", [False, True])
def test_h5_card_upload_and_link_refuse_an_expired_token(
    client: TestClient, ctx: ServiceContext, data_dir: Path, monkeypatch: pytest.MonkeyPatch, card_check: bool
) -> None:
    monkeypatch.setattr(ctx.settings.h5, "card_check", card_check)
    s = open_h5_session(client, ctx)
    factories.update(ctx, CertSession, s["session_id"], expires_at=utcnow() - dt.timedelta(seconds=1))
    card = (data_dir / CARD).read_bytes()
    r = client.post(
        f"/h5/api/sessions/{s['session_id']}/card", headers=auth(s), files={"file": ("card.jpg", card, "image/jpeg")}
    )
    _refused_as_expired(r)
    _refused_as_expired(client.post(f"/h5/api/sessions/{s['session_id']}/link", headers=auth(s)))
    assert not ctx.storage.exists(f"sessions/{s['session_id']}/id_card")
