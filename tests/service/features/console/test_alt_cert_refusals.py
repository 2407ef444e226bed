"""A counter / home-visit certification refused for a real reason (a date before the roster changed the record's ID
number, the person recorded deceased meanwhile): the person's page and a citizen's request page answered with a
redirect to a generic "check your input" and dropped the typed note. Both now show the refusal's own sentence and
put the typed kind, date and note back into the form (service/features/console/alt_cert_form.py)."""

from __future__ import annotations

import datetime as dt
import html

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, utcnow
from service.features.console.alt_cert import BEFORE_IDENTITY_CHANGE
from service.features.console.models import AltCertification, AssistKind, AssistRequest
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_alt_cert import _alt_form

NOTE = "3日上门，见到本人，核对身份证原件，老人卧床。<已核>" * 5


def _recorded(ctx: ServiceContext, bid: int) -> int:
    with ctx.db() as db:
        alts = db.scalar(select(func.count(AltCertification.session_id)).where(AltCertification.beneficiary_id == bid))
        certs = db.scalar(select(func.count(Certification.id)).where(Certification.beneficiary_id == bid))
        return (alts or 0) + (certs or 0)


def _number_changed_today(ctx: ServiceContext) -> int:
    """A person whose record the roster gave another ID number today (a visit dated before it saw the other one)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        b.identity_since = utcnow()
        return b.id


def _assert_kept(page: str, on_date: str) -> None:
    form = page[page.index('id="alt-form"') :]
    form = form[: form.index("</form>")]
    assert f">{html.escape(NOTE)}</textarea>" in form  # the typed note, escaped, in the textarea
    assert 'value="home_visit" checked' in form and f'name="on_date" value="{on_date}"' in form


def test_the_person_pages_form_refused_shows_why_and_keeps_what_was_typed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid = _number_changed_today(ctx)
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)  # rendered after the change: current
    on_date = (local_today(ctx.settings) - dt.timedelta(days=3)).isoformat()
    data = {"kind": "home_visit", "on_date": on_date, "evidence": NOTE}
    r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 409, r.text
    assert BEFORE_IDENTITY_CHANGE in r.text and "请选择认证方式" not in r.text
    _assert_kept(r.text, on_date)
    assert _recorded(ctx, bid) == 0
    # The clerk corrects only the date (the visit was today after all): the kept form certifies.
    again = _alt_form(r.text) | data | {"on_date": local_today(ctx.settings).isoformat()}
    r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=again, follow_redirects=False)
    assert r.status_code == 303 and _recorded(ctx, bid) == 2  # its alternative record and its certification


def test_the_request_pages_form_refused_shows_why_and_keeps_what_was_typed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid = _number_changed_today(ctx)
    with ctx.db() as db:
        req = AssistRequest(beneficiary_id=bid, kind=AssistKind.HOME_VISIT, phone="13800138000", openid="o-asked")
        db.add(req)
        db.flush()
        rid = req.id
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/requests/{rid}").text)
    on_date = (local_today(ctx.settings) - dt.timedelta(days=3)).isoformat()
    data = {"kind": "home_visit", "on_date": on_date, "evidence": NOTE}
    r = app_client.post(f"/console/requests/{rid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 409, r.text
    assert BEFORE_IDENTITY_CHANGE in r.text and "请选择方式" not in r.text
    _assert_kept(r.text, on_date)
    assert "依据公众号申请" not in r.text  # the typed note, not the request's pre-fill
    assert _recorded(ctx, bid) == 0


def test_a_person_recorded_deceased_meanwhile_is_named_as_the_reason(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The form was open when a supervisor recorded the death: the page says so, not "check your input"."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        b.status = "deceased"
    today = local_today(ctx.settings).isoformat()
    data = {"kind": "home_visit", "on_date": today, "evidence": NOTE}
    r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 409 and "该人员已登记死亡，不能认证" in r.text
    assert _recorded(ctx, bid) == 0
