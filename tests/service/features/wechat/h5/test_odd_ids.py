"""A NUL in an H5 page's or call's session id, on both databases: PostgreSQL cannot compare a text with a NUL,
so each of these was a 500 there (SQLite simply found nothing). Now the calls are 422 FIELD_INVALID and the
result page is the unknown-record page, like any id that is not the person's."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.features.wechat.h5 import identity

BAD = "a%00b"


def test_a_nul_in_an_h5_session_id_is_refused_not_a_server_error(client: TestClient, ctx: ServiceContext) -> None:
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-odd-1"))
    for path in (f"/h5/api/sessions/{BAD}/link", f"/h5/api/sessions/{BAD}/again"):
        r = client.post(path)
        assert r.status_code == 422 and r.json()["error"]["code"] == "FIELD_INVALID", (path, r.text)
    card = client.post(f"/h5/api/sessions/{BAD}/card", files={"file": ("card.jpg", b"\xff\xd8\xff", "image/jpeg")})
    assert card.status_code == 422, card.text
    media = client.post(f"/h5/api/sessions/{BAD}/card-media", json={"media_id": "m1"})
    assert media.status_code == 422, media.text
    page = client.get(f"/h5/result/{BAD}")
    assert page.status_code == 404 and "未找到认证记录" in page.text
