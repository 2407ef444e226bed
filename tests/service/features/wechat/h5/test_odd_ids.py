"""A NUL in an H5 page's or call's session id, on both databases: PostgreSQL cannot compare a text with a NUL,
so each of these was a 500 there (SQLite simply found nothing). Now the calls are 422 FIELD_INVALID and the
result page is the unknown-record page, like any id that is not the person's."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.features.console.models import AssistRequest
from service.features.wechat.h5 import identity
from tests.service import factories

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


def test_a_nul_in_any_value_of_the_assistance_pages_is_refused_not_a_server_error(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The assistance form's screen (`/h5/apply/<session>`, `/h5/apply/binding/<binding>`) and every field of its
    post: the ids were looked up as typed, the free-text note was stored as typed (a psycopg DataError), each a 500
    on PostgreSQL for anyone logged in. Now 422 FIELD_INVALID, as the H5 calls above, and nothing stored."""
    with ctx.db() as db:
        factories.beneficiary(db, ctx.keyring, name="李秀英", id_number=factories.id_number(seq=7))
        db.commit()
    client.cookies.set(identity.COOKIE, identity.mint(ctx, "openid-odd-2"))
    for path in (f"/h5/apply/{BAD}", f"/h5/apply/binding/{BAD}", f"/h5/apply?x={BAD}"):
        page = client.get(path)
        assert page.status_code == 422 and page.json()["error"]["code"] == "FIELD_INVALID", (path, page.text[:200])
    form = client.get("/h5/apply").text
    token = form.split('name="token" value="')[1].split('"')[0]
    good = {"kind": "home_visit", "phone": "13800000000", "token": token, "name": "李秀英", "note": "上午在家"}
    good["id_number"] = factories.id_number(seq=7)
    for field in ("session", "binding", "note", "name", "id_number", "phone", "kind", "token"):
        body = {**good, field: good.get(field, "") + "a\x00b"}
        r = client.post("/h5/apply", data=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "FIELD_INVALID", (
            field,
            r.status_code,
            r.text[:200],
        )
    with ctx.db() as db:
        assert db.scalars(select(AssistRequest)).all() == []
    assert client.post("/h5/apply", data=good).status_code == 200  # the same form without the NUL is taken
