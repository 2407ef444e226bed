"""Counter / home-visit certifications and the activity-evidence import, on real roster rows."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification
from service.features.console.models import AltCertification
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_roster_pages import beneficiary_by_ext, import_file
from tests.service.test_roster import card_rows, to_csv


def evidence_csv(rows: list[list[str]]) -> bytes:
    lines = ["external_id,id_number,event_date,source,reference", *(",".join(r) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


def test_home_visit_certifies_and_resumes_a_suspended_beneficiary(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    rows = card_rows(data_dir, 1)
    rows[0][5], rows[0][6] = "suspended", ""
    csrf = login(app_client, "sup1")
    import_file(app_client, csrf, "r.csv", to_csv(rows))
    b = beneficiary_by_ext(ctx, rows[0][0])
    assert b.status == "suspended"
    rev = TestClient(app_client.app)
    csrf_rev = login(rev, "rev1")  # counter staff are reviewers: they may record it
    today = dt.date.today()
    r = rev.post(
        f"/console/beneficiaries/{b.id}/certify",
        data={"csrf": csrf_rev, "kind": "home_visit", "on_date": today.isoformat(), "evidence": "入户核验，本人卧床"},
    )
    assert "上门认证" in r.text and 'id="status">正常<' in r.text
    with ctx.db() as db:
        alt = db.scalar(select(AltCertification).where(AltCertification.beneficiary_id == b.id))
        assert alt is not None and alt.kind == "home_visit" and alt.evidence["note"] == "入户核验，本人卧床"
        cert = db.scalar(select(Certification).where(Certification.session_id == alt.session_id))
        assert cert is not None and cert.certified_on == today and cert.code
    # Missing evidence is refused with the form's generic text; a future date with its own sentence, the typed
    # note kept in the form (alt_cert_form.py).
    data = {"kind": "counter", "on_date": today.isoformat(), "evidence": ""}
    r = rev.post(f"/console/beneficiaries/{b.id}/certify", data=data | {"csrf": csrf_rev}, follow_redirects=False)
    assert r.headers["location"].endswith("?e=certify")
    data = {"kind": "counter", "on_date": (today + dt.timedelta(days=3)).isoformat(), "evidence": "x"}
    r = rev.post(f"/console/beneficiaries/{b.id}/certify", data=data | {"csrf": csrf_rev}, follow_redirects=False)
    assert r.status_code == 409 and "认证日期不能晚于今天" in r.text and ">x</textarea>" in r.text


def test_activity_evidence_import_certifies_rows_and_reports_errors(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    rows = card_rows(data_dir, 3)
    for r in rows:
        r[6] = "2025-01-31"
    csrf = login(app_client, "sup1")
    import_file(app_client, csrf, "r.csv", to_csv(rows))
    day = (dt.date.today() - dt.timedelta(days=5)).isoformat()
    future = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    evidence = evidence_csv(
        [
            [rows[0][0], "", day, "hospital", "JS-2026-001"],
            ["", rows[1][1], day, "bank", "BK-77"],  # by ID number
            [rows[2][0], "", future, "bank", "BK-78"],
            ["NOBODY", "", day, "bank", "BK-79"],
            [rows[2][0], "", "yesterday", "bank", "BK-80"],
        ]
    )
    page = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", evidence, "text/csv")})
    assert 'id="certified">2<' in page.text and 'id="rejected">3<' in page.text
    assert "日期晚于今天" in page.text and "名册中无此人" in page.text and "YYYY-MM-DD" in page.text
    for ext in (rows[0][0], rows[1][0]):
        b = beneficiary_by_ext(ctx, ext)
        assert b.last_certified_on is not None and b.last_certified_on.isoformat() == day
    assert beneficiary_by_ext(ctx, rows[2][0]).last_certified_on is None
    again = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", evidence, "text/csv")})
    assert 'id="certified">0<' in again.text  # re-importing the same file changes nothing
    with ctx.db() as db:
        kinds = db.scalars(select(AltCertification.kind)).all()
        assert list(kinds) == ["activity", "activity"]
        assert db.scalar(select(Beneficiary).where(Beneficiary.external_id == rows[0][0])) is not None
    bad = app_client.post(
        "/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", b"a,b\n1,2\n", "text/csv")}
    )
    assert bad.status_code == 422 and "缺少列" in bad.text


def test_reviewer_cannot_import_evidence(app_client: TestClient, staff_users: dict[str, int]) -> None:
    csrf = login(app_client, "rev1")
    r = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", b"x", "text/csv")})
    assert r.status_code == 403


def test_activity_evidence_never_certifies_a_relatives_verification_row(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A relative's proxy verification adds nobody to the roster (issue 20: no beneficiary row, a claim):
    evidence naming their ID number, or an external id nobody has, is refused like an unknown person."""
    from service.features.proxy import operators
    from service.features.proxy.sessions import open_verification
    from tests.service import factories

    number = factories.id_number(region="110101", birth=dt.date(1975, 8, 9))
    ext = "OPERATOR-0123456789ab"  # what the relative's row used to be called
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", "openid-relative", "test").operator
        open_verification(db, ctx, op, number, "李建国", consent=False)
        db.commit()
    csrf = login(app_client, "sup1")
    day = (dt.date.today() - dt.timedelta(days=5)).isoformat()
    evidence = evidence_csv([["", number, day, "bank", "BK-90"], [ext, "", day, "bank", "BK-91"]])
    page = app_client.post("/console/evidence", data={"csrf": csrf}, files={"file": ("e.csv", evidence, "text/csv")})
    assert 'id="certified">0<' in page.text and 'id="rejected">2<' in page.text and "名册中无此人" in page.text
    with ctx.db() as db:
        assert db.scalar(select(func.count()).select_from(Beneficiary)) == 0


def _alt_form(page: str) -> dict[str, str]:
    """The counter / home-visit form's hidden fields as the page rendered them."""
    form = page[page.index('id="alt-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_a_counter_certification_sent_twice_is_recorded_once(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: the form sent twice (a double click, or sent again after a slow answer) recorded two counter
    certifications, two sessions and two certificates. The form now carries a token of its own: the second
    send records nothing and answers as the first did (the person's page with the one certification)."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    data = form | {"kind": "counter", "on_date": local_today(ctx.settings).isoformat(), "evidence": "本人持证到柜台"}
    first = app_client.post(f"/console/beneficiaries/{bid}/certify", data=data, follow_redirects=False)
    second = app_client.post(f"/console/beneficiaries/{bid}/certify", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == f"/console/beneficiaries/{bid}"
    with ctx.db() as db:
        alts = db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == bid)).all()
        certs = db.scalar(select(func.count()).select_from(Certification).where(Certification.beneficiary_id == bid))
        assert len(alts) == 1 and certs == 1 and alts[0].evidence["note"] == "本人持证到柜台"
    # A page loaded again carries another token: a second certification from it is a new one.
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert form.get("form_token") and form["form_token"] != data.get("form_token")
    app_client.post(f"/console/beneficiaries/{bid}/certify", data=data | form)
    with ctx.db() as db:
        n = db.scalar(select(func.count()).select_from(AltCertification).where(AltCertification.beneficiary_id == bid))
        assert n == 2


def test_the_same_page_sent_again_with_other_content_is_refused_not_silently_dropped(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The form token made a second send record nothing and answer as the first: also when the page was sent again
    with another date or note (back, edit, send), which the page then showed as saved (whole-diff review)."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    today = local_today(ctx.settings)
    data = form | {"kind": "counter", "on_date": today.isoformat(), "evidence": "本人持证到柜台"}
    assert (
        app_client.post(f"/console/beneficiaries/{bid}/certify", data=data, follow_redirects=False).status_code == 303
    )
    edited = data | {"on_date": (today - dt.timedelta(days=3)).isoformat()}
    r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=edited, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/beneficiaries/{bid}?e=resent"
    assert "此页面已提交过一次认证，本次内容不同，未保存" in app_client.get(r.headers["location"]).text
    with ctx.db() as db:
        alts = db.scalars(select(AltCertification).where(AltCertification.beneficiary_id == bid)).all()
        assert [(a.on_date, a.evidence["note"]) for a in alts] == [(today, "本人持证到柜台")]
