"""The H5 pages' JSON endpoints hold to the same rules as the API (issue #22): consent is a JSON boolean, and
an Idempotency-Key is bound to the card it first carried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import CertSession
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, in_wechat, open_h5_session


@pytest.mark.parametrize("field", ["consent", "template_consent"])
@pytest.mark.parametrize("value", ["yes", "true", 1, "on"])
def test_h5_consent_flags_must_be_booleans(client: TestClient, ctx: ServiceContext, field: str, value: object) -> None:
    number = factories.id_number()
    beneficiary_with_number(ctx, number)
    in_wechat(client, ctx)
    body = {"name": "张秀英", "id_number": number, "consent": True, "template_consent": False, field: value}
    r = client.post("/h5/api/sessions", json=body)
    assert r.status_code == 422, r.text
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(CertSession)) == 0
    body[field] = True
    assert client.post("/h5/api/sessions", json=body).status_code == 200


def test_h5_card_idempotency_key_reused_for_another_card_is_a_conflict(
    client: TestClient, ctx: ServiceContext, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx.settings.h5, "card_check", False)  # the OCR feedback is not what is tested here
    s = open_h5_session(client, ctx)
    url = f"/h5/api/sessions/{s['session_id']}/card"
    first = (data_dir / "idcard/synthetic/card_001.jpg").read_bytes()
    other = (data_dir / "idcard/synthetic/card_002.jpg").read_bytes()

    def put(data: bytes) -> Any:
        headers = {"Authorization": f"Bearer {s['token']}", "Idempotency-Key": "h5-card-0001"}
        return client.post(url, headers=headers, files={"file": ("card.jpg", data, "image/jpeg")})

    assert put(first).status_code == 200
    r = put(other)
    assert r.status_code == 409 and r.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert put(first).status_code == 200
    assert ctx.storage.get(f"sessions/{s['session_id']}/id_card") == first
