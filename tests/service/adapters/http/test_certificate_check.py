"""The public certificate check says whether a certificate is valid today (the bureau's calendar) and why not,
with the least personal data, and says who certified (a relative's proxy certification says so).

An outside review (docs/security.md, Part W): the check answered ``valid: true`` for a genuine certificate a year
past its date, for one of a person recorded dead since, and for the previous person's after a roster change gave
the record another ID number; it named nobody, so a forged paper pointing at another person's genuine code read as
valid; and a proxy certification's certificate did not say a relative made it.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.certificates import CODE_MAX_CHARS
from service.certification.context import ServiceContext
from service.certification.identity_review import confirm_same_person
from service.certification.models import Beneficiary, Certification, utcnow
from service.certification.processing import accept_session
from service.infra import clock
from service.infra.clock import local_today
from service.infra.security import new_token, token_hash
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.test_e2e import roster

VERIFY = "/api/v1/certificates/verify"


@dataclass(frozen=True)
class Issued:
    external_id: str
    beneficiary_id: int
    session_id: str
    token: str
    code: str
    number: str


def certify(ctx: ServiceContext, on: dt.date | None = None, channel: str = "self") -> Issued:
    """An accepted session of a new beneficiary (张秀英) certified on `on` (default: the bureau's today), as the
    worker applies an accept; its session token still good."""
    number, token, now = factories.id_number(), new_token(), utcnow()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=number, name="张秀英")
        s = factories.session_row(
            b.id,
            channel=channel,
            token_hash=token_hash(token),
            expires_at=now + dt.timedelta(hours=1),
            queued_at=now,
            state="decided",
            decision="accept",
            decided_at=now,
        )
        db.add(s)
        db.flush()
        accept_session(db, ctx, s, b, on or local_today(ctx.settings), None)
        code = db.scalars(select(Certification.code).where(Certification.session_id == s.id)).one()
        return Issued(b.external_id, b.id, s.id, token, code, number)


def check(client: TestClient, code: str) -> dict[str, Any]:
    r = TestClient(client.app).get(VERIFY, params={"code": code})  # public: no key
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_a_genuine_certificate_past_its_date_is_not_valid_today(client: TestClient, ctx: ServiceContext) -> None:
    old = certify(ctx, on=local_today(ctx.settings) - dt.timedelta(days=800))
    answer = check(client, old.code)
    assert answer["valid"] is False and answer["status"] == "expired"
    assert "有效期" in answer["message"]
    assert answer["checked_on"] == local_today(ctx.settings).isoformat()
    fresh = check(client, certify(ctx).code)
    assert fresh["valid"] is True and fresh["status"] == "valid" and fresh["message"] == "凭证有效"


def test_the_last_valid_day_ends_at_midnight_in_beijing(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = certify(ctx)
    last = dt.date.fromisoformat(check(client, issued.code)["valid_until"])
    evening = dt.datetime.combine(last, dt.time(15, 30), tzinfo=dt.UTC)  # 23:30 in Beijing, the last valid day
    monkeypatch.setattr(clock, "now_utc", lambda: evening)
    assert check(client, issued.code)["valid"] is True
    monkeypatch.setattr(clock, "now_utc", lambda: evening + dt.timedelta(hours=1))  # 00:30 the next day there
    answer = check(client, issued.code)
    assert answer["valid"] is False and answer["status"] == "expired"
    assert answer["checked_on"] == (last + dt.timedelta(days=1)).isoformat()


def test_a_certificate_of_a_person_recorded_deceased_since_is_not_valid(
    client: TestClient, ctx: ServiceContext
) -> None:
    issued = certify(ctx)
    factories.update(ctx, Beneficiary, issued.beneficiary_id, status="deceased")
    answer = check(client, issued.code)
    assert answer["valid"] is False and answer["status"] == "deceased" and "死亡" in answer["message"]
    # Nor is a new copy served to the holder of the session's token.
    png = client.get(f"/api/v1/sessions/{issued.session_id}/certificate.png", headers=bearer(issued))
    assert png.status_code == 409 and png.json()["error"]["code"] == "CERTIFICATE_DECEASED"
    # A paper long past its date tells whoever holds it nothing of a death since (the round's whole-diff review).
    old = certify(ctx, on=local_today(ctx.settings) - dt.timedelta(days=800))
    factories.update(ctx, Beneficiary, old.beneficiary_id, status="deceased")
    assert check(client, old.code)["status"] == "expired"


def bearer(issued: Issued) -> dict[str, str]:
    return {"Authorization": f"Bearer {issued.token}"}


def test_a_roster_change_of_id_number_voids_the_previous_persons_certificate(
    client: TestClient, ctx: ServiceContext
) -> None:
    issued = certify(ctx)
    other = factories.id_number(birth=dt.date(1958, 7, 1))
    row = [issued.external_id, other, "李建国", "", "enterprise_pension", "", ""]
    r = client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]), "text/csv")}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["updated"] == 1, r.text
    answer = check(client, issued.code)
    assert answer["valid"] is False and answer["status"] == "superseded"
    assert "name_masked" not in answer and "李" not in str(answer)  # nothing of the record's new person
    # The holder's copy named the record's new person next to the previous person's masked number.
    cert = client.get(f"/api/v1/sessions/{issued.session_id}/certificate", headers=bearer(issued))
    assert cert.status_code == 409 and cert.json()["error"]["code"] == "CERTIFICATE_SUPERSEDED"
    assert "李建国" not in cert.text
    # A supervisor finds it was a typo corrected (the same person): the certificate stands again.
    with ctx.db() as db:
        import_id = r.json()["import_id"]
        confirm_same_person(db, ctx.hooks, issued.beneficiary_id, import_id, "主管-王", utcnow().date(), ctx.rules)
    assert check(client, issued.code)["valid"] is True


def test_the_check_names_the_person_masked_and_nothing_more(client: TestClient, ctx: ServiceContext) -> None:
    issued = certify(ctx)
    answer = check(client, issued.code)
    assert answer["name_masked"] == "张*英" and answer["method"] == "self" and answer["method_zh"] == "本人认证"
    text = str(answer)
    assert "张秀英" not in text and issued.number not in text and issued.number[4:-4] not in text
    assert answer["id_masked"] == issued.number[:4] + "*" * 10 + issued.number[-4:]
    assert not {"photo", "template", "name", "external_id", "session_id"} & set(answer)


def test_a_proxy_certification_says_a_relative_made_it(client: TestClient, ctx: ServiceContext) -> None:
    issued = certify(ctx, channel="proxy")
    answer = check(client, issued.code)
    assert answer["valid"] is True and answer["method"] == "proxy" and "代办" in answer["method_zh"]
    cert = client.get(f"/api/v1/sessions/{issued.session_id}/certificate", headers=bearer(issued)).json()
    assert cert["method"] == "proxy" and "代办" in cert["method_zh"]


@pytest.mark.parametrize(
    "code",
    [
        base64.urlsafe_b64encode(b"[" * 1000).decode().rstrip("=") + "." + "0" * 32,  # nested: RecursionError
        "A" * 5000 + "." + "0" * 32,
        "A" * 200,
    ],
    ids=["nested-json", "long-body", "long-no-mac"],
)
def test_a_code_longer_than_any_issued_one_is_refused_as_invalid(
    client: TestClient, ctx: ServiceContext, code: str
) -> None:
    """Found by review: a body of deeply nested JSON reached json.loads (the check's fallback for a MAC that does
    not verify) and its RecursionError was an unauthenticated 500, logged as an error each time."""
    r = TestClient(client.app, raise_server_exceptions=False).get(VERIFY, params={"code": code})
    assert r.status_code == 400 and r.json()["error"]["code"] == "CERTIFICATE_INVALID", r.text
    assert len(certify(ctx).code) <= CODE_MAX_CHARS  # an issued code still fits
