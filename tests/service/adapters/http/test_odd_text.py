"""Text no database can hold, sent where the API reads an id or stores a reviewer's words: a 4xx in the error
shape, never a 500. Found by an outside review (2026-12-05); each case answered 500 on the old code.

- A NUL character: PostgreSQL stores and compares none in a text column, so the query itself failed (psycopg
  `DataError`), on routes a stranger reaches without any key (`GET /api/v1/sessions/x%00`). SQLite stored it.
- A NUL in a roster cell (external id, name, household) or in the uploaded file's name: the whole import was a
  500 on PostgreSQL; SQLite stored the NUL in the pensioner's name. Now a rejected row, or a ROSTER_FORMAT file.
- A lone surrogate (`"\\ud800"` in JSON) and JSON nested deeper than the parser's stack, in a session-creation
  body: the rate limiter, which reads that body to find the person, raised (`UnicodeEncodeError`,
  `RecursionError`) before counting anything, on both databases and for the H5 route too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, utcnow
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, in_wechat, open_session
from tests.service.adapters.http.test_error_contract import assert_error_shape
from tests.service.conftest import ADMIN
from tests.service.test_roster import HEADER, card_rows, to_csv

JSON = {"content-type": "application/json"}


def _sessions(ctx: ServiceContext) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count()).select_from(CertSession)) or 0)


def test_a_nul_in_a_session_id_is_a_422_not_a_500(client: TestClient, ctx: ServiceContext) -> None:
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    token = {"Authorization": f"Bearer {s['token']}"}
    upload = {**token, "Idempotency-Key": "request-0001"}
    bad = s["session_id"] + "%00"
    for what, r in {
        "status": client.get(f"/api/v1/sessions/{bad}", headers=token),
        "result": client.get(f"/api/v1/sessions/{bad}/result", headers=token),
        "certificate": client.get(f"/api/v1/sessions/{bad}/certificate", headers=token),
        "certificate.png": client.get(f"/api/v1/sessions/{bad}/certificate.png", headers=token),
        "card": client.post(f"/api/v1/sessions/{bad}/id-card", headers=upload, files={"file": ("c.jpg", b"x")}),
        "video": client.post(
            f"/api/v1/sessions/{bad}/video", headers=upload, files={"file": ("v.webm", b"x")}, data={"nonce": "n"}
        ),
        "review": client.post(
            f"/api/v1/sessions/{bad}/review", json={"decision": "accept", "reviewer": "x"}, headers=ADMIN
        ),
    }.items():
        error = assert_error_shape(r, what)
        assert r.status_code == 422 and error["code"] == "FIELD_INVALID", (what, r.text)
        assert error["fields"][0]["field"] == "session_id", what
    # Without any key or token too: the id is refused before anything is looked up.
    client.headers.pop("X-API-Key")
    assert client.get("/api/v1/sessions/%00").status_code == 422


def test_a_nul_in_an_external_id_or_a_reviewers_text_is_a_422(client: TestClient, ctx: ServiceContext) -> None:
    ext = beneficiary_with_number(ctx, factories.id_number())
    r = client.get(f"/api/v1/beneficiaries/{ext}%00")
    assert r.status_code == 422 and assert_error_shape(r, "lookup")["fields"][0]["field"] == "external_id"
    before = _sessions(ctx)
    for body in ({"external_id": ext + "\x00"}, {"id_number": "\x00"}):
        r = client.post("/api/v1/sessions", json=body)
        assert r.status_code == 422 and assert_error_shape(r, str(body))["code"] == "FIELD_INVALID", r.text
    assert _sessions(ctx) == before

    s = open_session(client, ext)
    factories.update(ctx, CertSession, s["session_id"], state="decided", decision="review", decided_at=utcnow())
    for body in ({"reviewer": "张\x00三"}, {"reviewer": "张三", "note": "核实\x00"}):
        r = client.post(
            f"/api/v1/sessions/{s['session_id']}/review", json={"decision": "reject", **body}, headers=ADMIN
        )
        assert r.status_code == 422 and assert_error_shape(r, str(body))["code"] == "FIELD_INVALID", r.text
    assert factories.update(ctx, CertSession, s["session_id"]).decision == "review"  # nothing settled
    ok = {"decision": "reject", "reviewer": "张三", "note": "视频\t模糊\n请重拍"}  # other control characters stay
    assert client.post(f"/api/v1/sessions/{s['session_id']}/review", json=ok, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"external_id": "\\ud800"}', id="surrogate-external-id"),
        pytest.param(b'{"id_number": "\\udfff11010219500314012X"}', id="surrogate-number"),
        pytest.param(b"[" * 60_000, id="deep-array"),
        pytest.param(b'{"a":' * 12_000, id="deep-object"),
    ],
)
def test_text_no_encoder_takes_or_json_too_deep_is_a_4xx(client: TestClient, ctx: ServiceContext, body: bytes) -> None:
    before = _sessions(ctx)
    r = client.post("/api/v1/sessions", content=body, headers=JSON)
    assert_error_shape(r, "api")
    in_wechat(client, ctx)  # the H5 route is read by the same limiter
    h5 = body.replace(b"external_id", b"id_number").replace(b'"}', b'", "name": "x", "consent": true}')
    assert_error_shape(client.post("/h5/api/sessions", content=h5, headers=JSON), "h5")
    assert _sessions(ctx) == before


def test_a_nul_in_a_roster_cell_rejects_its_row_and_in_the_file_name_the_file(
    client: TestClient, ctx: ServiceContext, data_dir: Path
) -> None:
    rows = [[*row, "H-1"] for row in card_rows(data_dir, 4)]
    rows[0][0] = "P\x0000000"  # external_id
    rows[1][2] = rows[1][2][:1] + "\x00" + rows[1][2][1:]  # name
    rows[2][7] = "H\x00-1"  # household
    r = client.post(
        "/api/v1/roster", files={"file": ("r.csv", to_csv(rows, [*HEADER, "household"]), "text/csv")}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["created"] == 1 and [e["line"] for e in report["rejected_rows"]] == [2, 3, 4]
    assert all("NUL" in e["errors"][-1] for e in report["rejected_rows"])
    with ctx.db() as db:
        stored = list(db.scalars(select(Beneficiary.name)))
    assert stored == [rows[3][2]] and not any("\x00" in name for name in stored)

    csv_body = to_csv(card_rows(data_dir, 1))
    multipart = b"".join(
        [
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="r\x00.csv"\r\n',
            b"Content-Type: text/csv\r\n\r\n" + csv_body + b"\r\n--b--\r\n",
        ]
    )
    headers = {**ADMIN, "content-type": "multipart/form-data; boundary=b"}
    r = client.post("/api/v1/roster", content=multipart, headers=headers)
    assert r.status_code == 422 and assert_error_shape(r, "file name")["code"] == "ROSTER_FORMAT", r.text
