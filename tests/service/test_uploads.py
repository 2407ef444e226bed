"""The one upload sequence (service.certification.uploads.store_upload) that the session API and the H5 card
routes share: token before the body, a retried request answered without the caller's pre-check, a refusing
pre-check storing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.certification import uploads
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import CertSession, UploadKind
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session
from tests.service.media import LIVE_VIDEO, card_for_video


class Refused(Exception):
    pass


def _card_key(ctx: ServiceContext, sid: str) -> str | None:
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        return row.id_card_key


def test_the_body_is_read_only_after_the_token_is_checked(client: TestClient, ctx: ServiceContext) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    reads: list[int] = []

    def read() -> bytes:
        reads.append(1)
        return b"never read"

    with ctx.db() as db, pytest.raises(ServiceError) as refused:
        uploads.store_upload(
            db, ctx, s["session_id"], "not-the-token", UploadKind.ID_CARD, read, "image/jpeg", "request-0"
        )
    assert refused.value.code == "UNAUTHORIZED"
    assert reads == []


def test_a_refusing_precheck_stores_nothing_and_a_replay_skips_it(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    sid, token = s["session_id"], s["token"]
    card, _ = card_for_video(data_dir, LIVE_VIDEO)
    seen: list[bytes] = []

    def refuse(_s: CertSession, data: bytes) -> None:
        seen.append(data)
        raise Refused

    with ctx.db() as db, pytest.raises(Refused):
        uploads.store_upload(
            db, ctx, sid, token, UploadKind.ID_CARD, lambda: card, "image/jpeg", "card-1", None, refuse
        )
    assert seen == [card] and _card_key(ctx, sid) is None

    with ctx.db() as db:
        view = uploads.store_upload(
            db, ctx, sid, token, UploadKind.ID_CARD, lambda: card, "image/jpeg", "card-1", None, None
        )
    assert view["uploads"] == {"id_card": True, "video": False}
    assert _card_key(ctx, sid) is not None

    # The same request again: answered as stored, the pre-check (the H5 OCR, seconds) not run a second time.
    with ctx.db() as db:
        again = uploads.store_upload(
            db, ctx, sid, token, UploadKind.ID_CARD, lambda: card, "image/jpeg", "card-1", None, refuse
        )
    assert again == view and seen == [card]
