"""A death recorded by mistake is withdrawn by a supervisor on the person's page (deaths.withdraw_death, the one way
back): the record returns to the status it had, and the payment system's stop file gets a `death_withdrawn` row.
Before, nothing reversed a death: the `deceased` row claimed back a living person's pension for good (the roster's
side: tests/service/test_deaths.py)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.models import DeathRecord
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.features.console.test_death_registration import _payment_rows, suspended_person_registered_dead


def _withdraw_form(page: str) -> dict[str, str]:
    """The withdrawal form's hidden fields as the page rendered them."""
    form = page[page.index('id="death-withdraw-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def _status(ctx: ServiceContext, bid: int) -> str:
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        return str(b.status)


def test_a_death_recorded_by_mistake_is_withdrawn_and_the_payment_system_told(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    today = local_today(ctx.settings)
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring, external_id="WRONG1", valid_until=today + dt.timedelta(days=40)).id
    died = today - dt.timedelta(days=3)
    csrf = login(app_client, "sup1")
    death = {"csrf": csrf, "date_of_death": died.isoformat(), "source": "民政部门", "recorded_date": ""}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert form["recorded_date"] == died.isoformat()
    # No reason: refused, nothing changes.
    r = app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form | {"reason": " "})
    assert "请填写撤销死亡登记的原因" in r.text and _status(ctx, bid) == "deceased"
    withdraw = form | {"reason": "登记错人：同名的邻居已核实在世"}
    for _ in range(2):  # the button pressed twice: one withdrawal, one row
        assert app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=withdraw).status_code == 200
    assert _status(ctx, bid) == "active"
    assert _payment_rows(app_client, since=today) == [
        ("WRONG1", "deceased", died.isoformat(), ""),
        ("WRONG1", "death_withdrawn", died.isoformat(), ""),
    ]
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert "撤销死亡登记，撤回停发" in page and 'id="death-withdraw-form"' not in page and "登记（将停止认证）" in page
    with ctx.db() as db:
        assert db.get(DeathRecord, bid) is None
        entries = db.scalars(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "beneficiary.death_withdrawn")
        ).all()
        assert [(e.actor, e.detail["reason"], e.detail["date_of_death"], e.detail["status"]) for e in entries] == [
            ("staff:sup1", "登记错人：同名的邻居已核实在世", died.isoformat(), "active")
        ]
    # Registered again (the same date): a new stop row, the latest in force.
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    assert [r[1] for r in _payment_rows(app_client, since=today)] == ["deceased", "death_withdrawn", "deceased"]
    assert _status(ctx, bid) == "deceased"


def test_a_suspended_persons_withdrawn_death_leaves_them_suspended(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    today = local_today(ctx.settings)
    died = today - dt.timedelta(days=5)
    bid, stopped = suspended_person_registered_dead(app_client, ctx, "SUSP02", died)
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text) | {"reason": "误登记"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form).status_code == 200
    assert _status(ctx, bid) == "suspended"
    assert _payment_rows(app_client, since=today)[-1] == (
        "SUSP02",
        "death_withdrawn",
        died.isoformat(),
        stopped.isoformat(),
    )


def test_a_withdrawal_is_a_supervisors_and_not_of_a_date_changed_since_the_page(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    today = local_today(ctx.settings)
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    csrf = login(app_client, "sup1")
    death = {"csrf": csrf, "date_of_death": (today - dt.timedelta(days=3)).isoformat(), "source": "民政部门"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text) | {"reason": "误登记"}
    # Another supervisor corrects the date meanwhile: the old page's withdrawal is refused, the death stands.
    corrected = death | {
        "recorded_date": death["date_of_death"],
        "date_of_death": (today - dt.timedelta(days=9)).isoformat(),
    }
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=corrected).status_code == 200
    r = app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form)
    assert r.status_code == 409 and "死亡信息已在您打开此页面后被更新" in r.text
    assert _status(ctx, bid) == "deceased"
    # A reviewer has no form, and the route refuses one.
    with TestClient(app_client.app) as other:
        rev_csrf = login(other, "rev1")
        assert 'id="death-withdraw-form"' not in other.get(f"/console/beneficiaries/{bid}").text
        r = other.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form | {"csrf": rev_csrf})
        assert r.status_code == 403
    assert _status(ctx, bid) == "deceased"
