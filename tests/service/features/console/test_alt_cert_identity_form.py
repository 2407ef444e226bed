"""A counter / home-visit form rendered before a roster import gave the record another ID number, and sent after
it (dated that day, so `dated_for_current_person` lets it through): the staff member saw the card of the number
the page showed, the previous one. Before, it certified the record as it now stands (the new person). The form
now carries the record's identity stamp as it was rendered; sent after a change, nothing is recorded and a
Chinese page asks to reload. A page loaded after the change certifies as before."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification import roster
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, Certification, utcnow
from service.features.console.alt_cert import StaleIdentityForm, certify_alternative, identity_stamp
from service.features.console.models import AltCertification, AssistKind, AssistRequest, AssistStatus
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_alt_cert import _alt_form
from tests.service.test_identity_change_accept import _roster
from tests.service.test_races import pg_ctx, started  # noqa: F401  (the two-transaction PostgreSQL context)


def _certs(ctx: ServiceContext, bid: int) -> tuple[int, int]:
    with ctx.db() as db:
        alts = db.scalar(
            select(func.count()).select_from(AltCertification).where(AltCertification.beneficiary_id == bid)
        )
        certs = db.scalar(select(func.count()).select_from(Certification).where(Certification.beneficiary_id == bid))
        return alts or 0, certs or 0


def test_a_form_rendered_before_a_change_of_id_number_is_refused_after_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    with ctx.db() as db:  # the roster import gives the record another ID number while the page is open
        b = db.get(Beneficiary, bid)
        assert b is not None
        b.identity_since = utcnow()
        db.commit()
    data = {"kind": "counter", "on_date": local_today(ctx.settings).isoformat(), "evidence": "本人持证到柜台"}
    r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 409, r.text
    assert "身份证号" in r.text and "刷新" in r.text
    assert _certs(ctx, bid) == (0, 0)
    # The page loaded again shows the record as it stands: its form certifies.
    form = _alt_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    r = app_client.post(f"/console/beneficiaries/{bid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/beneficiaries/{bid}"
    assert _certs(ctx, bid) == (1, 1)


def test_the_request_pages_form_rendered_before_a_change_is_refused_after_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The same form on a citizen's request page (记录认证并办结, `assist.certify_and_close`)."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
        req = AssistRequest(beneficiary_id=bid, kind=AssistKind.HOME_VISIT, phone="13800138000", openid="o-asked")
        db.add(req)
        db.commit()
        rid = req.id
    login(app_client, "rev1")
    form = _alt_form(app_client.get(f"/console/requests/{rid}").text)
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        b.identity_since = utcnow()
        db.commit()
    data = {"kind": "home_visit", "on_date": local_today(ctx.settings).isoformat(), "evidence": "入户核验"}
    r = app_client.post(f"/console/requests/{rid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 409, r.text
    assert "身份证号" in r.text and "刷新" in r.text
    assert _certs(ctx, bid) == (0, 0)
    with ctx.db() as db:
        still = db.get(AssistRequest, rid)
        assert still is not None and still.status == AssistStatus.OPEN  # not closed either
    form = _alt_form(app_client.get(f"/console/requests/{rid}").text)
    r = app_client.post(f"/console/requests/{rid}/certify", data=form | data, follow_redirects=False)
    assert r.status_code == 303 and _certs(ctx, bid) == (1, 1)


def test_a_form_sent_while_the_change_is_being_imported_waits_and_is_refused(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """PostgreSQL: the import holds the record's row (uncommitted) when the form is sent. The certification waits
    for the row (`certify_alternative` compares the stamp under its lock), then sees the change: nothing recorded."""
    ctx = pg_ctx
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        bid, ext, seen = b.id, b.external_id, identity_stamp(b)
    importer = ctx.session_factory()
    roster.import_roster(importer, ctx.keyring, "r.csv", _roster(ext), "admin:importer", roster.import_terms(ctx))
    importer.flush()

    def send() -> object:
        with ctx.db() as db:
            b = db.get(Beneficiary, bid)
            assert b is not None
            try:
                certify_alternative(db, ctx, b, "counter", local_today(ctx.settings), None, {"note": "x"}, None, seen)
            except StaleIdentityForm:
                return "stale"
            return "certified"

    t, out = started(send)
    t.join(1.0)
    assert t.is_alive()  # waiting for the record's row lock
    importer.commit()
    importer.close()
    t.join(30)
    assert out == ["stale"]
    assert _certs(ctx, bid) == (0, 0)
