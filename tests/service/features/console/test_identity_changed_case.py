"""A case whose video was made before a roster import gave its record another ID number (docs/security.md,
Part AA): the case page says so, an accept is refused with the reason in Chinese (the case stays the reviewer's),
and a reject still settles it. A certification without a video (counter, home visit, activity evidence) dated
before the day of the change is refused the same way: what staff saw then was the previous number's person."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, CertSession
from service.features.console.alt_cert import BEFORE_IDENTITY_CHANGE, AltCertError, certify_alternative
from service.infra.clock import local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import csrf_of, login
from tests.service.features.console.test_alt_cert import evidence_csv


def _review_case(ctx: ServiceContext) -> tuple[str, str, int]:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.review_session(b.id)
        s.reasons = ["SPOOF_SUSPECTED"]
        db.add(s)
        return s.id, b.external_id, b.id


def _change_number(client: TestClient, external_id: str) -> None:
    buf = io.StringIO()
    number = factories.id_number(birth=dt.date(1938, 5, 2))
    rows = [
        ["external_id", "id_number", "name", "benefit_types"],
        [external_id, number, "李桂兰", "enterprise_pension"],
    ]
    csv.writer(buf).writerows(rows)
    files = {"file": ("roster.csv", buf.getvalue().encode(), "text/csv")}
    r = client.post("/api/v1/roster", files=files, headers=ADMIN)
    assert r.status_code == 200 and r.json()["identity_changed"] == 1, r.text


def _decide(client: TestClient, sid: str, decision: str) -> tuple[int, str]:
    page = client.get(f"/console/cases/{sid}").text
    r = client.post(
        f"/console/cases/{sid}/decide", data={"csrf": csrf_of(page), "decision": decision, "reason": "核对视频"}
    )
    return r.status_code, r.text


def test_a_case_made_before_the_number_changed_is_shown_so_and_cannot_be_accepted(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid, ext, bid = _review_case(ctx)
    csrf = login(app_client, "rev1")
    assert 'id="identity-changed"' not in app_client.get(f"/console/cases/{sid}").text
    _change_number(app_client, ext)
    assert app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code in (200, 303)

    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="identity-changed"' in page and "变更了该档案的身份证号" in page

    status, text = _decide(app_client, sid, "accept")
    assert status == 409 and "视频中的人员是变更前号码的人员" in text
    assert f"/console/cases/{sid}" in text  # back to the case, which stays the reviewer's
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "review"
        assert db.query(Certification).filter(Certification.beneficiary_id == bid).count() == 0

    status, text = _decide(app_client, sid, "reject")
    assert status == 200 and "已完成审核" in text
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "reject"


def test_a_certification_without_video_dated_before_the_change_is_refused(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    _sid, ext, bid = _review_case(ctx)
    _change_number(app_client, ext)
    today = local_today(ctx.settings)
    before = today - dt.timedelta(days=3)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        with pytest.raises(AltCertError) as refused:
            certify_alternative(db, ctx, b, "counter", before, None, {"note": "柜台核验，补录"})
        assert refused.value.message == BEFORE_IDENTITY_CHANGE

    csrf = login(app_client, "sup1")
    evidence = evidence_csv([[ext, "", before.isoformat(), "hospital", "JS-2026-009"]])
    page = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", evidence, "text/csv")})
    assert 'id="certified">0<' in page.text and "日期早于该档案身份证号变更之日" in page.text
    with ctx.db() as db:
        assert db.query(Certification).filter(Certification.beneficiary_id == bid).count() == 0
        b = db.get(Beneficiary, bid)
        assert b is not None
        certify_alternative(db, ctx, b, "counter", today, None, {"note": "柜台核验新证件"})  # seen since: certifies
        assert db.query(Certification).filter(Certification.beneficiary_id == bid).count() == 1
