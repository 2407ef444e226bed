"""Every way a death reaches the service writes the payment system's row by one rule (service/certification/
deaths.py): here, a roster row whose status is `deceased` (the console's registration:
tests/service/features/console/test_death_registration.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.decision.result import Outcome
from pipelines.decision.runner import CertificationReport, Template
from service.certification import registry
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.cycle import CycleState, state_of
from service.certification.deaths import record_death, withdraw_death
from service.certification.models import Beneficiary, Certification, Channel, SessionState, utcnow
from service.certification.processing import claim, process
from service.certification.retention import erase_templates_of_the_deceased
from service.certification.roster import import_roster, import_terms
from service.certification.sessions import create_session
from service.infra.clock import local_today
from tests.service import factories
from tests.service.certifiers import fixed_decision
from tests.service.test_roster import to_csv

HEADER = ["external_id", "id_number", "name", "region", "benefit_types", "status", "valid_until"]


def _stops(db: Session, ctx: ServiceContext) -> list[tuple[str, str, str]]:
    rows = registry.events(db, registry.EXPORTS["suspensions"], None, ctx.settings)
    return [(r["external_id"], r["kind"], r["on_date"]) for r in rows]


def test_a_roster_death_of_a_living_record_stops_the_payment_once(ctx: ServiceContext, db: Session) -> None:
    """Before: a roster row `deceased` for a person held as active only changed the status: no row of the payment
    files named them. Now it is a `deceased` row dated by the day of the import (the file carries no date of
    death), once: the same file again, or another change to the dead record, writes none; a person the roster
    creates as deceased (never paid here) has none."""
    terms = import_terms(ctx)
    until = (terms.today + dt.timedelta(days=200)).isoformat()
    alive, born_dead = factories.id_number("420106"), factories.id_number("420106")
    first = [["R001", alive, "王秀兰", "", "enterprise_pension", "active", until]]
    import_roster(db, ctx.keyring, "r1.csv", to_csv(first, HEADER), "test", terms)
    assert _stops(db, ctx) == []
    dead = [
        ["R001", alive, "王秀兰", "", "enterprise_pension", "deceased", until],
        ["R002", born_dead, "李建国", "", "enterprise_pension", "deceased", until],
    ]
    report = import_roster(db, ctx.keyring, "r2.csv", to_csv(dead, HEADER), "test", terms)
    assert (report.created, report.updated) == (1, 1)
    assert _stops(db, ctx) == [("R001", "deceased", terms.today.isoformat())]
    import_roster(db, ctx.keyring, "r2.csv", to_csv(dead, HEADER), "test", terms)
    dead[0][4] = "survivor_pension"  # another change to the dead record: nothing new is known of the death
    assert import_roster(db, ctx.keyring, "r3.csv", to_csv(dead, HEADER), "test", terms).updated == 1
    assert _stops(db, ctx) == [("R001", "deceased", terms.today.isoformat())]


def test_a_roster_row_saying_living_for_a_death_on_record_is_named_and_a_withdrawal_is_undone_by_a_new_death(
    ctx: ServiceContext, db: Session
) -> None:
    """The roster does not lift a death (Part R): only a supervisor does (deaths.withdraw_death). Before, a row saying
    `active` for a deceased record was counted `updated` and its status dropped without a word; now the report
    names the record. Once withdrawn, a roster `deceased` after the roster said living (r3) is a new death: it
    stops the payment again (a new row); the roster still saying `deceased` as at its last import does not
    (tests/service/features/console/test_death_withdrawal.py::test_a_roster_still_saying_deceased_does_not_undo_a_withdrawal)."""
    terms = import_terms(ctx)
    until = (terms.today + dt.timedelta(days=200)).isoformat()
    rows = [["R001", factories.id_number("420106"), "王秀兰", "", "enterprise_pension", "active", until]]
    import_roster(db, ctx.keyring, "r1.csv", to_csv(rows, HEADER), "test", terms)
    rows[0][5] = "deceased"
    assert import_roster(db, ctx.keyring, "r2.csv", to_csv(rows, HEADER), "test", terms).death_kept == []
    rows[0][5] = "active"
    report = import_roster(db, ctx.keyring, "r3.csv", to_csv(rows, HEADER), "test", terms)
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "R001"))
    assert b is not None and b.status == "deceased"
    assert report.death_kept == ["R001"] and report.to_dict()["death_kept"] == ["R001"]
    event = withdraw_death(db, b)
    assert event is not None and b.status == "active" and withdraw_death(db, b) is None  # once
    today = terms.today.isoformat()
    assert _stops(db, ctx) == [("R001", "deceased", today), ("R001", "death_withdrawn", today)]
    rows[0][5] = "deceased"
    report = import_roster(db, ctx.keyring, "r4.csv", to_csv(rows, HEADER), "test", terms)
    assert report.death_withdrawn_kept == [] and b.status == "deceased" and b.roster_status == "deceased"
    assert [k for _, k, _ in _stops(db, ctx)] == ["deceased", "death_withdrawn", "deceased"]


def test_a_withdrawn_death_of_a_person_the_roster_created_dead_stands_while_the_roster_says_the_same(
    ctx: ServiceContext, db: Session
) -> None:
    """A person the roster brought in deceased (never paid here: no `deceased` row) whose death a supervisor
    withdrew has no withdrawal row either. Before, the next changed row still saying `deceased` killed them again
    (Part DA's rule read only the payment rows); now it is the roster's same statement (`roster_status`), held back
    and named. A `deceased` after the roster said `active` is a new death."""
    terms = import_terms(ctx)
    until = (terms.today + dt.timedelta(days=200)).isoformat()
    rows = [["R002", factories.id_number("420106"), "李建国", "", "enterprise_pension", "deceased", until]]
    import_roster(db, ctx.keyring, "r1.csv", to_csv(rows, HEADER), "test", terms)
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "R002"))
    assert b is not None and b.roster_status == "deceased" and withdraw_death(db, b) is None and b.status == "active"
    rows[0][4] = "enterprise_pension;survivor_pension"  # a changed row, still `deceased`
    report = import_roster(db, ctx.keyring, "r2.csv", to_csv(rows, HEADER), "test", terms)
    assert report.death_withdrawn_kept == ["R002"] and b.status == "active" and _stops(db, ctx) == []
    rows[0][5] = "active"
    import_roster(db, ctx.keyring, "r3.csv", to_csv(rows, HEADER), "test", terms)
    rows[0][5] = "deceased"
    report = import_roster(db, ctx.keyring, "r4.csv", to_csv(rows, HEADER), "test", terms)
    assert report.death_withdrawn_kept == [] and b.status == "deceased"
    assert _stops(db, ctx) == [("R002", "deceased", terms.today.isoformat())]


@dataclass
class _EnrollingCertifier:
    """Accepts, and offers the face it saw for enrolment; records the template it was given to compare with."""

    given: list[Template | None] = field(default_factory=list)

    def run(
        self,
        card: object,
        video: object,
        actions: object,
        expected_id_number: object = None,
        template: Template | None = None,
        fingerprints: object = None,
        today: object = None,
        light: object = None,
    ) -> CertificationReport:
        self.given.append(template)
        seen = Template(np.full(512, 0.5, np.float32), "test-recognizer")
        return CertificationReport(fixed_decision(Outcome.ACCEPT), None, None, None, None, seen, {})


def test_a_person_whose_death_was_withdrawn_certifies_again_and_enrols_a_new_face(ctx: ServiceContext) -> None:
    """The daily run erased the face of a person recorded dead (retention.erase_templates_of_the_deceased: it
    cannot be restored after a withdrawal). The person certifies again as anyone never enrolled: compared with the
    ID card (no template given to the models), accepted, certified, and the face enrolled anew with the consent the
    session asks for."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, valid_until=today + dt.timedelta(days=20))
        factories.enrol_template(ctx.keyring, b, np.ones(512, np.float32), "test-recognizer")
        record_death(db, b, today - dt.timedelta(days=2), today)
        bid = b.id
    assert erase_templates_of_the_deceased(ctx) == 1
    with ctx.db() as db:
        back = db.get(Beneficiary, bid)
        assert back is not None and withdraw_death(db, back) is not None and back.template is None
        s = create_session(db, ctx, back, Channel.SELF, True, "test").session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        s.state, s.queued_at = SessionState.QUEUED, utcnow()
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        sid = s.id
    certifier = _EnrollingCertifier()
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, certifier), sid, "w1")
    assert certifier.given == [None]  # compared with the card: no face of theirs on record
    with ctx.db() as db:
        again = db.get(Beneficiary, bid)
        assert again is not None and again.status == "active" and again.last_certified_on == today
        assert again.template is not None and state_of(again, today, ctx.rules) == CycleState.CERTIFIED
        assert db.scalar(select(Certification.session_id).where(Certification.beneficiary_id == bid)) == sid
