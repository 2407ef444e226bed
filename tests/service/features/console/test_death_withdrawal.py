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
from service.certification.evidence_hold import RELEASE_ASKED
from service.certification.models import AuditEntry, Beneficiary, EvidenceHold
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.alt_cert import DEATH_ALERT
from service.features.console.models import ConsoleAlert, DeathRecord
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login, new_client
from tests.service.features.console.test_death_registration import _payment_rows, suspended_person_registered_dead
from tests.service.features.console.test_evidence_hold_pages import _certified
from tests.service.features.console.test_roster_pages import beneficiary_by_ext, import_file
from tests.service.test_roster import to_csv


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


def test_a_roster_still_saying_deceased_does_not_undo_a_withdrawal(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a death the roster recorded on the wrong record, withdrawn by a supervisor, came back at the next
    import that changed that row while it still said `deceased` (the benefit system's file corrected only later):
    the person dead again and a second stop row for the payment system. The row gives no date of death, so it is
    the death withdrawn: it does not apply, and 导入结果 names the record. A row not withdrawn still kills, and a
    death registered with a date in the console still applies."""
    today = local_today(ctx.settings)
    until = (today + dt.timedelta(days=200)).isoformat()
    header = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]
    rows = [
        ["MIXUP1", factories.id_number("420106"), "王秀兰", "420106", "enterprise_pension", "deceased", until],
        ["OTHER1", factories.id_number("420106"), "李建国", "420106", "enterprise_pension", "active", until],
    ]
    csrf = login(app_client, "sup1")
    first = [[*rows[0][:5], "active", until], rows[1]]
    import_file(app_client, csrf, "r1.csv", to_csv(first, header))
    import_file(app_client, csrf, "r2.csv", to_csv(rows, header))  # the roster's death of the wrong record
    bid = beneficiary_by_ext(ctx, "MIXUP1").id
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text) | {"reason": "名册登记错人"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form).status_code == 200
    stops = [("MIXUP1", "deceased", today.isoformat(), ""), ("MIXUP1", "death_withdrawn", today.isoformat(), "")]
    assert _payment_rows(app_client, since=today) == stops
    # The next roster changes the row (a new benefit) and still says `deceased`; another person dies in it.
    rows[0][4], rows[1][5] = "enterprise_pension;survivor_pension", "deceased"
    page = import_file(app_client, csrf, "r3.csv", to_csv(rows, header))
    assert 'id="death-withdrawn-kept"' in page and "名册仍填写为撤销的那次死亡" in page
    kept = page[page.index('id="death-withdrawn-kept"') :].split("</p>")[0]
    assert "MIXUP1" in kept and "OTHER1" not in kept
    assert _status(ctx, bid) == "active" and beneficiary_by_ext(ctx, "OTHER1").status == "deceased"
    assert _payment_rows(app_client, since=today) == [*stops, ("OTHER1", "deceased", today.isoformat(), "")]
    # The person really dies later: registered with a date, the death applies (a new stop row).
    died = {"csrf": csrf, "date_of_death": today.isoformat(), "source": "民政部门", "recorded_date": ""}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=died).status_code == 200
    assert _status(ctx, bid) == "deceased"
    assert [r[:2] for r in _payment_rows(app_client, since=today) if r[0] == "MIXUP1"][-1] == ("MIXUP1", "deceased")


def test_a_roster_death_after_the_roster_said_living_again_applies(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: after a roster death was withdrawn, every later roster `deceased` for the record was held back as
    "the death withdrawn", even after the roster had said `active` again: a real death months later was dropped
    (the record active, no stop row, the pension paid on). Now only the roster's same statement (`deceased` at its
    last import too: `roster_status`) is held back; a `deceased` after `active` is a new death."""
    today = local_today(ctx.settings)
    until = (today + dt.timedelta(days=200)).isoformat()
    header = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]
    base = ["MIXUP1", factories.id_number("420106"), "王秀兰", "420106", "enterprise_pension"]
    csrf = login(app_client, "sup1")
    import_file(app_client, csrf, "r1.csv", to_csv([[*base, "active", until]], header))
    import_file(app_client, csrf, "r2.csv", to_csv([[*base, "deceased", until]], header))  # the wrong record
    bid = beneficiary_by_ext(ctx, "MIXUP1").id
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text) | {"reason": "名册登记错人"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form).status_code == 200
    page = import_file(app_client, csrf, "r3.csv", to_csv([[*base, "active", until]], header))  # corrected
    assert _status(ctx, bid) == "active" and 'id="death-withdrawn-kept"' not in page
    page = import_file(app_client, csrf, "r4.csv", to_csv([[*base, "deceased", until]], header))  # a real death
    assert _status(ctx, bid) == "deceased" and 'id="death-withdrawn-kept"' not in page
    assert _payment_rows(app_client, since=today) == [
        ("MIXUP1", "deceased", today.isoformat(), ""),
        ("MIXUP1", "death_withdrawn", today.isoformat(), ""),
        ("MIXUP1", "deceased", today.isoformat(), ""),
    ]


def test_the_rosters_first_death_after_a_console_death_withdrawn_applies(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a console death registered by mistake and withdrawn made the roster's first `deceased` for the
    record (the person really died later) read as "the death withdrawn": dropped, the pension paid on. The roster
    never said that death; its `deceased` after `active` is a new death and applies."""
    today = local_today(ctx.settings)
    until = (today + dt.timedelta(days=200)).isoformat()
    header = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]
    base = ["WRONG1", factories.id_number("420106"), "张桂英", "420106", "enterprise_pension"]
    csrf = login(app_client, "sup1")
    import_file(app_client, csrf, "r1.csv", to_csv([[*base, "active", until]], header))
    bid = beneficiary_by_ext(ctx, "WRONG1").id
    died = {"csrf": csrf, "date_of_death": today.isoformat(), "source": "民政部门", "recorded_date": ""}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=died).status_code == 200  # wrong person
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text) | {"reason": "登记错人"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form).status_code == 200
    page = import_file(app_client, csrf, "r2.csv", to_csv([[*base, "deceased", until]], header))  # she died
    assert _status(ctx, bid) == "deceased" and 'id="death-withdrawn-kept"' not in page
    assert [r[1] for r in _payment_rows(app_client, since=today) if r[0] == "WRONG1"] == [
        "deceased",
        "death_withdrawn",
        "deceased",
    ]


def test_a_withdrawn_death_closes_its_alerts_and_asks_the_release_of_its_holds(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: the `certified_after_death` alert a death raised (the person certified by video after the date of
    death registered) and the hold it placed on that video stayed open after the death was withdrawn, for a
    supervisor to find on the alerts page. Now the withdrawal closes the alert, audited as its doing, and is the
    first supervisor's request to release the hold: a second supervisor's one confirmation releases it (Part BC:
    never one person alone). A death registered again raises the alert again."""
    bid, sid, _cid, _keys = _certified(ctx, days_ago=25)
    today = local_today(ctx.settings)
    csrf = login(app_client, "sup1")
    death = {"csrf": csrf, "date_of_death": (today - dt.timedelta(days=60)).isoformat(), "source": "民政部门"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    form = _withdraw_form(app_client.get(f"/console/beneficiaries/{bid}").text) | {"reason": "登记错人"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased/withdraw", data=form).status_code == 200
    with ctx.db() as db:
        (alert,) = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == DEATH_ALERT)).all()
        assert alert.resolved and alert.detail["resolve_note"] == "死亡登记已撤销：登记错人"
        assert alert.detail["death_withdrawn"] is True
        chain = db.scalars(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq)).all()
        closed = [e.detail for e in chain if e.action == "alert.resolve"]
        assert closed == [{"kind": DEATH_ALERT, "note": "死亡登记已撤销：登记错人", "death_withdrawn": True}]
        (withdrawn,) = [e.detail for e in chain if e.action == "beneficiary.death_withdrawn"]
        assert (withdrawn["alerts_closed"], withdrawn["hold_release_asked"]) == (1, 1)
        (hold,) = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).all()
        assert hold.released_at is None  # one supervisor's act: still in force
        asks = db.scalars(select(AuditEntry).where(AuditEntry.action == RELEASE_ASKED)).all()
        assert [(e.actor, e.detail["hold"]) for e in asks] == [("staff:sup1", hold.id)]
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    assert "死亡登记已撤销，预警已关闭" in page and "预警：死亡日期后仍有认证通过" not in page
    sup2 = new_client(app_client)
    release = f"/console/beneficiaries/{bid}/holds/{hold.id}/release"
    assert sup2.post(release, data={"csrf": login(sup2, "sup2"), "note": "同意解除"}).status_code == 200
    with ctx.db() as db:
        released = db.get(EvidenceHold, hold.id)
        assert released is not None and released.released_by == "staff:sup2"
    # The person really dies later: registered again, the late certification is alerted anew.
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    with ctx.db() as db:
        alerts = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == DEATH_ALERT)).all()
        assert sorted(a.resolved for a in alerts) == [False, True]
