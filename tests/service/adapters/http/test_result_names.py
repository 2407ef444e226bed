"""The session result answers the liveness stage's Chinese messages under `messages`, the name every other
output uses, and still under the deprecated `messages_zh` for API clients written before issue 24, whichever
name the stored row holds (rows decided before the rename hold only the old one)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.models import CertSession, SessionState, utcnow
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session

MESSAGES = ["光线太暗,请到明亮处重拍"]


def _decided(ctx: ServiceContext, session_id: str, result: dict[str, Any]) -> None:
    with ctx.db() as db:
        row = db.get(CertSession, session_id)
        assert row is not None
        row.state, row.decided_at, row.result = SessionState.DECIDED, utcnow(), result


@pytest.mark.parametrize("stored_name", ["messages", "messages_zh"])
def test_both_names_are_answered_whichever_the_row_holds(
    client: TestClient, ctx: ServiceContext, stored_name: str
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    liveness = {"passed": False, "reasons": ["CAPTURE_TOO_DARK"], stored_name: MESSAGES}
    _decided(ctx, s["session_id"], {"decision": "reject", "reasons": ["CAPTURE_TOO_DARK"], "liveness": liveness})
    r = client.get(f"/api/v1/sessions/{s['session_id']}/result", headers={"Authorization": f"Bearer {s['token']}"})
    assert r.status_code == 200, r.text
    live = r.json()["result"]["liveness"]
    assert live["messages"] == MESSAGES and live["messages_zh"] == MESSAGES
    assert live["reasons"] == ["CAPTURE_TOO_DARK"]


def test_a_result_without_liveness_is_answered_as_stored(client: TestClient, ctx: ServiceContext) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    stored = {"decision": "reject", "reasons": ["MEDIA_CORRUPT"], "detail": "not a video", "scores": {}}
    _decided(ctx, s["session_id"], stored)
    r = client.get(f"/api/v1/sessions/{s['session_id']}/result", headers={"Authorization": f"Bearer {s['token']}"})
    assert r.json()["result"] == stored
