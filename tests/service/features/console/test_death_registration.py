"""Registering a death twice (a double submit, a second tab, a corrected date, two supervisors at once) raises
one alert per certification accepted after the death, not one per registration: before, each registration
alerted again on every such certification, so supervisors found the same case twice in their list.

The form carries the date of death on record when it was rendered (none: empty): a form from a page older than
the record (another supervisor registered the death meanwhile) is refused instead of overwriting it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from service.certification import review
from service.certification.context import ServiceContext
from service.certification.models import (
    Beneficiary,
    Certification,
    CertSession,
    CycleEvent,
    EvidenceHold,
    SessionDecision,
    utcnow,
)
from service.certification.retention import storage_upkeep
from service.features.console.alt_cert import DEATH_ALERT, AltCertError, certify_alternative, mark_deceased
from service.features.console.auth import Role, Staff
from service.features.console.models import ConsoleAlert, DeathRecord, StaffUser
from service.infra import clock
from service.infra.clock import local_today
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import login, new_client
from tests.service.features.console.test_evidence_hold_pages import _certified
from tests.service.test_lock_order import lock_waits, running, until
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)


def _alerts(ctx: ServiceContext, bid: int) -> list[str]:
    with ctx.db() as db:
        rows = db.scalars(
            select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == bid, ConsoleAlert.kind == DEATH_ALERT)
        )
        return [a.detail["certified_on"] for a in rows]


def test_a_death_registered_twice_alerts_once_per_late_certification(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    today = local_today(ctx.settings)
    ten_days_ago = (today - dt.timedelta(days=10)).isoformat()
    csrf = login(app_client, "sup1")
    form = {"csrf": csrf, "kind": "counter", "on_date": ten_days_ago, "evidence": "本人持证到柜台"}
    assert app_client.post(f"/console/beneficiaries/{bid}/certify", data=form).status_code == 200
    death = {"csrf": csrf, "date_of_death": (today - dt.timedelta(days=20)).isoformat(), "source": "民政部门"}
    for _ in range(2):  # the button pressed twice, or the form sent again from a second tab
        assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    assert _alerts(ctx, bid) == [ten_days_ago]
    # A corrected (earlier) date of death, from the form showing the recorded one: the record says the new date,
    # the same certification is not alerted again.
    death["recorded_date"] = death["date_of_death"]
    death["date_of_death"] = (today - dt.timedelta(days=30)).isoformat()
    app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death)
    assert _alerts(ctx, bid) == [ten_days_ago]
    with ctx.db() as db:
        rec = db.get(DeathRecord, bid)
        assert rec is not None and rec.date_of_death == today - dt.timedelta(days=30)


def test_two_death_registrations_at_once_alert_once(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """The first registration is held after its first write; the second then runs. It waits for the person's
    row, then sees the first's record and alert (before: it raised its own copy of the alert)."""
    ctx = pg_ctx
    today = local_today(ctx.settings)
    with ctx.db() as db:
        user = StaffUser(username="sup1", display_name="主管甲", role=Role.SUPERVISOR.value, password_hash="-")
        db.add(user)
        db.flush()
        staff = Staff(id=user.id, username="sup1", display_name="主管甲", role=Role.SUPERVISOR, csrf="-")
        b = factories.beneficiary(db, ctx.keyring)
        bid = b.id
        certify_alternative(db, ctx, b, "counter", today - dt.timedelta(days=5), None, {"note": "x"})
    first_wrote, go_on = threading.Event(), threading.Event()

    def register(hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_wrote.is_set():
                        first_wrote.set()
                        go_on.wait(10)

            row = db.get(Beneficiary, bid)
            assert row is not None
            died = today - dt.timedelta(days=10)
            return len(mark_deceased(db, staff, row, died, "民政部门", today, hold_days=180, zone=ctx.settings))

    first, first_out = running(lambda: register(True))
    assert first_wrote.wait(10)
    second, second_out = running(lambda: register(False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())
    go_on.set()
    first.join(30)
    second.join(30)
    assert (first_out, second_out) == ([1], [0])
    assert len(_alerts(ctx, bid)) == 1


def _death_form(page: str) -> dict[str, str]:
    """The death form's hidden fields as the page rendered them."""
    form = page[page.index('id="death-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def test_a_death_form_from_an_old_page_does_not_overwrite_the_recorded_date(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: a supervisor who had the person's page open since before a colleague registered the death sent the
    form and silently replaced the colleague's date and source with their own."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    today = local_today(ctx.settings)
    d1, d2 = (today - dt.timedelta(days=3)).isoformat(), (today - dt.timedelta(days=40)).isoformat()
    login(app_client, "sup1")
    old_page = _death_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert old_page.get("recorded_date", "") == ""
    sup2 = new_client(app_client)
    login(sup2, "sup2")
    fresh = _death_form(sup2.get(f"/console/beneficiaries/{bid}").text)
    r = sup2.post(f"/console/beneficiaries/{bid}/deceased", data=fresh | {"date_of_death": d1, "source": "民政部门"})
    assert r.status_code == 200
    r = app_client.post(
        f"/console/beneficiaries/{bid}/deceased", data=old_page | {"date_of_death": d2, "source": "家属告知"}
    )
    assert r.status_code == 409 and "本次提交未保存" in r.text and d1 in r.text and "民政部门" in r.text
    with ctx.db() as db:
        rec = db.get(DeathRecord, bid)
        assert rec is not None and (rec.date_of_death.isoformat(), rec.source) == (d1, "民政部门")
        assert rec.recorded_by == staff_users["sup2"]
    # The page now shows the recorded date, and its form corrects it.
    page = app_client.get(f"/console/beneficiaries/{bid}").text
    corrected = _death_form(page)
    assert corrected["recorded_date"] == d1 and "更正死亡信息" in page
    r = app_client.post(
        f"/console/beneficiaries/{bid}/deceased", data=corrected | {"date_of_death": d2, "source": "家属告知"}
    )
    assert r.status_code == 200
    with ctx.db() as db:
        rec = db.get(DeathRecord, bid)
        assert rec is not None and (rec.date_of_death.isoformat(), rec.source) == (d2, "家属告知")


def test_a_correction_from_an_old_page_does_not_overwrite_a_source_corrected_since(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The stale-form check compared the date only: a colleague's correction of the source alone (the date kept)
    was silently replaced by an older page's (whole-diff review). The form carries the source it was rendered
    with too."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    d1 = (local_today(ctx.settings) - dt.timedelta(days=3)).isoformat()
    login(app_client, "sup1")
    first = _death_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert (
        app_client.post(
            f"/console/beneficiaries/{bid}/deceased", data=first | {"date_of_death": d1, "source": "家属告知"}
        ).status_code
        == 200
    )
    old_page = _death_form(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert old_page["recorded_source"] == "家属告知"
    sup2 = new_client(app_client)
    login(sup2, "sup2")
    fresh = _death_form(sup2.get(f"/console/beneficiaries/{bid}").text)
    r = sup2.post(
        f"/console/beneficiaries/{bid}/deceased", data=fresh | {"date_of_death": d1, "source": "民政部门死亡证明"}
    )
    assert r.status_code == 200
    r = app_client.post(
        f"/console/beneficiaries/{bid}/deceased", data=old_page | {"date_of_death": d1, "source": "家属电话告知"}
    )
    assert r.status_code == 409 and "本次提交未保存" in r.text and "民政部门死亡证明" in r.text
    with ctx.db() as db:
        rec = db.get(DeathRecord, bid)
        assert rec is not None and rec.source == "民政部门死亡证明"


def test_two_death_registrations_with_other_dates_at_once_keep_the_first(pg_ctx: ServiceContext) -> None:  # noqa: F811
    """Two supervisors register the death from pages without one, with other dates, at the same moment on
    PostgreSQL. The second waits for the person's row, then sees the first's record: refused (before: it
    overwrote the first's date)."""
    ctx = pg_ctx
    today = local_today(ctx.settings)
    with ctx.db() as db:
        staff = []
        for name in ("sup1", "sup2"):
            user = StaffUser(username=name, display_name=name, role=Role.SUPERVISOR.value, password_hash="-")
            db.add(user)
            db.flush()
            staff.append(Staff(id=user.id, username=name, display_name=name, role=Role.SUPERVISOR, csrf="-"))
        bid = factories.beneficiary(db, ctx.keyring).id
    first_wrote, go_on = threading.Event(), threading.Event()

    def register(who: Staff, days: int, hold: bool) -> object:
        with ctx.db() as db:
            if hold:

                @event.listens_for(db, "after_flush")
                def pause(session: Session, _ctx: object) -> None:
                    if not first_wrote.is_set():
                        first_wrote.set()
                        go_on.wait(10)

            row = db.get(Beneficiary, bid)
            assert row is not None
            died = today - dt.timedelta(days=days)
            return len(mark_deceased(db, who, row, died, "民政部门", today, hold_days=180, zone=ctx.settings))

    first, first_out = running(lambda: register(staff[0], 10, True))
    assert first_wrote.wait(10)
    second, second_out = running(lambda: register(staff[1], 12, False))
    assert until(lambda: lock_waits(ctx) > 0 or not second.is_alive())
    go_on.set()
    first.join(30)
    second.join(30)
    assert first_out == [0]
    assert len(second_out) == 1 and isinstance(second_out[0], AltCertError) and "本次提交未保存" in str(second_out[0])
    with ctx.db() as db:
        rec = db.get(DeathRecord, bid)
        assert rec is not None and rec.date_of_death == today - dt.timedelta(days=10) and rec.recorded_by == staff[0].id


def test_a_death_registered_after_a_video_certification_holds_its_media(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The death of a person certified by video 25 days ago is registered today, dated 60 days ago (the typical
    冒领): the alert's certification keeps its card and video past the purge that would have deleted them six days
    later, under a hold in the supervisor's name that a release by two supervisors ends, as any hold. Before: the
    alert was raised and the purge deleted the evidence while it was open. A counter certification's alert says
    there were no media to hold."""
    bid, sid, _cid, keys = _certified(ctx, days_ago=25)
    today = local_today(ctx.settings)
    csrf = login(app_client, "sup1")
    counter = {"csrf": csrf, "kind": "counter", "on_date": (today - dt.timedelta(days=2)).isoformat(), "evidence": "x"}
    assert app_client.post(f"/console/beneficiaries/{bid}/certify", data=counter).status_code == 200
    death = {"csrf": csrf, "date_of_death": (today - dt.timedelta(days=60)).isoformat(), "source": "民政部门"}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    storage_upkeep(ctx, utcnow() + dt.timedelta(days=6))
    with ctx.db() as db:
        alerts = db.scalars(select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == bid)).all()
        by_session = {a.detail["session"]: a for a in alerts if a.kind == DEATH_ALERT}
        (hold,) = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).all()
        session = db.get(CertSession, sid)
        assert session is not None and session.media_purged_at is None
        assert (hold.reason, hold.placed_by, hold.released_at) == ("investigation", "staff:sup1", None)
        assert by_session[sid].detail["evidence"] == "held" and by_session[sid].detail["hold"] == hold.id
        assert [a.detail["evidence"] for s, a in by_session.items() if s != sid] == ["none"]
    assert all(ctx.storage.exists(k) for k in keys)


def test_the_alerts_page_says_what_became_of_a_late_certifications_media(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A death alert records what became of the media (Part BU: `evidence` held with the hold, purged, none); the
    alerts page did not show it, so a supervisor could not tell whether the card and video were kept. It now says
    so, the hold linked to where it is listed (the session's row on the person's page)."""
    today = local_today(ctx.settings)
    held_bid, held_sid, _cid, _keys = _certified(ctx, days_ago=25)
    purged_bid, purged_sid, _cid, _keys = _certified(ctx, days_ago=25)
    factories.update(ctx, CertSession, purged_sid, media_purged_at=utcnow())
    csrf = login(app_client, "sup1")
    counter = {"csrf": csrf, "kind": "counter", "on_date": (today - dt.timedelta(days=2)).isoformat(), "evidence": "x"}
    assert app_client.post(f"/console/beneficiaries/{held_bid}/certify", data=counter).status_code == 200
    death = {"csrf": csrf, "date_of_death": (today - dt.timedelta(days=60)).isoformat(), "source": "民政部门"}
    for bid in (held_bid, purged_bid):
        assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    with ctx.db() as db:
        (hold,) = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == held_sid)).all()
    page = app_client.get(f"/console/alerts?kind={DEATH_ALERT}").text
    rows = re.findall(rf'<tr data-kind="{DEATH_ALERT}">(.*?)</tr>', page, re.S)
    assert len(rows) == 3
    link = f'<a href="/console/beneficiaries/{held_bid}#hold-{hold.id}">保全单 #{hold.id}</a>'
    assert sum(f"证据已保全（{link}）" in r for r in rows) == 1
    assert sum("影像已按期删除" in r and f"/beneficiaries/{purged_bid}" in r for r in rows) == 1
    assert sum("柜台或上门认证，无影像" in r and f"/beneficiaries/{held_bid}" in r for r in rows) == 1
    person = app_client.get(f"/console/beneficiaries/{held_bid}").text
    assert f'id="hold-{hold.id}"' in person  # where the link lands


def _payment_rows(client: TestClient, since: dt.date | None = None) -> list[tuple[str, str, str, str]]:
    """(external_id, kind, on_date, suspended_since) of each row of the payment system's stop file."""
    params = {"since": since.isoformat()} if since is not None else {}
    r = client.get("/api/v1/exports/suspensions.csv", headers=ADMIN, params=params)
    assert r.status_code == 200
    rows = csv.DictReader(io.StringIO(r.text))
    return [(row["external_id"], row["kind"], row["on_date"], row["suspended_since"]) for row in rows]


def test_a_death_registered_in_the_console_stops_the_payment_once_per_date(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: the record became `deceased` and nothing else; the person left the lists and the daily run, and no
    row of the payment files named them, so the pension was never stopped (while a living person who failed to
    certify was). Now the death is a `deceased` row of exports/suspensions.csv dated by the date of death: once
    for the form sent twice, and a corrected date gets a row of its own with the new date."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring, external_id="DEAD01", valid_until=today + dt.timedelta(days=40)).id
        factories.beneficiary(db, ctx.keyring, external_id="ALIVE1", valid_until=today + dt.timedelta(days=40))
    died, corrected = today - dt.timedelta(days=3), today - dt.timedelta(days=10)
    csrf = login(app_client, "sup1")
    death = {"csrf": csrf, "date_of_death": died.isoformat(), "source": "家属告知", "recorded_date": ""}
    for _ in range(2):  # the button pressed twice
        assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    assert _payment_rows(app_client, since=today) == [("DEAD01", "deceased", died.isoformat(), "")]
    death |= {"recorded_date": died.isoformat(), "date_of_death": corrected.isoformat()}
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    assert app_client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200  # sent again
    assert _payment_rows(app_client, since=today) == [
        ("DEAD01", "deceased", corrected.isoformat(), ""),
        ("DEAD01", "deceased", died.isoformat(), ""),
    ]
    with ctx.db() as db:
        events = db.scalars(select(CycleEvent).where(CycleEvent.beneficiary_id == bid).order_by(CycleEvent.id))
        assert [e.on_date for e in events] == [died, corrected]  # the latest row is the date in force
    assert "登记死亡，停止发放" in app_client.get(f"/console/beneficiaries/{bid}").text
    # The living person is in no file; the dead one is never suspended on top (the run takes the living only).
    later = today + dt.timedelta(days=60)
    run = app_client.post("/api/v1/cycle/run", params={"today": later.isoformat(), "force": "true"}, headers=ADMIN)
    assert run.status_code == 200 and run.json()["suspended"] == 1
    assert sorted(r[:2] for r in _payment_rows(app_client)) == [
        ("ALIVE1", "suspended"),
        ("DEAD01", "deceased"),
        ("DEAD01", "deceased"),
    ]


def test_a_suspended_persons_death_row_says_since_when_payment_stopped(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A person already suspended when the death is registered: the row still comes (the death may be older than
    the suspension: payments before it are recovered), with the suspension's start."""
    today = local_today(ctx.settings)
    died = today - dt.timedelta(days=50)
    _bid, stopped = suspended_person_registered_dead(app_client, ctx, "SUSP01", died)
    assert _payment_rows(app_client, since=today) == [("SUSP01", "deceased", died.isoformat(), stopped.isoformat())]


def suspended_person_registered_dead(
    client: TestClient, ctx: ServiceContext, external_id: str, died: dt.date
) -> tuple[int, dt.date]:
    """A person suspended 20 days ago (lapsed the day before) whose death on `died` supervisor sup1 registers on the
    console: their id and the suspension's start."""
    today = local_today(ctx.settings)
    stopped = today - dt.timedelta(days=20)
    with ctx.db() as db:
        b = factories.beneficiary(
            db,
            ctx.keyring,
            external_id=external_id,
            status="suspended",
            suspended_on=stopped,
            valid_until=today - dt.timedelta(days=21),
        )
        bid = b.id
    death = {"csrf": login(client, "sup1"), "date_of_death": died.isoformat(), "source": "民政部门"}
    assert client.post(f"/console/beneficiaries/{bid}/deceased", data=death).status_code == 200
    return bid, stopped


DIED = dt.date(2031, 3, 7)
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("queued", "decided", "alerted"),
    [
        # Filmed on 5 March, two days before the death; the staff review's backlog accepts it on 10 March.
        (dt.datetime(2031, 3, 5, 10, 0), dt.datetime(2031, 3, 10, 10, 0), False),
        # Queued at 23:58 on the day of death, processed after midnight: made on the day of death, not after it.
        (dt.datetime(2031, 3, 7, 23, 58), dt.datetime(2031, 3, 8, 0, 5), False),
        # Filmed on 8 March, the day after the death: the alert, and its media held, as before.
        (dt.datetime(2031, 3, 8, 10, 0), dt.datetime(2031, 3, 10, 10, 0), True),
    ],
    ids=["made-before-accepted-after", "made-on-the-day-decided-after-midnight", "made-after"],
)
def test_certified_after_death_is_judged_by_the_day_the_video_was_made(
    ctx: ServiceContext,
    staff_users: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    queued: dt.datetime,
    decided: dt.datetime,
    alerted: bool,
) -> None:
    """死亡后仍认证通过 compared the date of death with `certified_on`, the day staff (or the machine) decided: a
    video made while the person lived and accepted after the death raised a 冒领 suspicion against the family and
    held the elder's media for 180 days. It is judged by the day the person made it (the bureau's day of its
    upload, deaths.made_on), and the alert says both days. Times are Beijing's."""
    now = {"at": queued.replace(tzinfo=BEIJING)}
    monkeypatch.setattr(clock, "now_utc", lambda: now["at"].astimezone(dt.UTC))
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, valid_until=dt.date(2031, 3, 20))
        at = now["at"].astimezone(dt.UTC).replace(tzinfo=None)
        s = factories.review_session(b.id, queued_at=at, created_at=at)
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        for key in (s.id_card_key, s.video_key):
            ctx.storage.put(key, b"media")
        db.add(s)
        db.flush()
        bid, sid = b.id, s.id
    now["at"] = decided.replace(tzinfo=BEIJING)
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        review.settle(db, ctx, row, SessionDecision.ACCEPT, "rev1", "ok", "staff:rev1", case_checked=True)
    with ctx.db() as db:
        certified_on = db.scalars(select(Certification.certified_on).where(Certification.session_id == sid)).one()
    assert certified_on == decided.date() > DIED  # the office's day, as Part AT dates it
    sup = Staff(id=staff_users["sup1"], username="sup1", display_name="主管", role=Role.SUPERVISOR, csrf="x")
    with ctx.db() as db:
        person = db.get(Beneficiary, bid)
        assert person is not None
        today = dt.date(2031, 3, 12)
        alerts = mark_deceased(db, sup, person, DIED, "民政部门", today, hold_days=180, zone=ctx.settings)
        holds = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == sid)).all()
        made = [(a.detail["made_on"], a.detail["certified_on"], a.detail["evidence"]) for a in alerts]
    if alerted:
        assert made == [(queued.date().isoformat(), decided.date().isoformat(), "held")] and len(holds) == 1
        assert "认证材料提交日期 2031-03-08，认证日期 2031-03-10" in holds[0].note
    else:
        assert made == [] and holds == []
