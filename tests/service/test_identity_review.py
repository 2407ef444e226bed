"""A supervisor's "same person" finding on a roster change of ID number (service/certification/identity_review.py,
service/features/proxy/identity.py): a typo corrected gives back the record's validity and the relatives'
bindings the change revoked; the importer cannot confirm their own change; only the record's latest change can
be confirmed; a binding its relative replaced meanwhile stays revoked."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.cycle import run_cycle
from service.certification.identity_review import IdentityReviewError, check_reviewer, confirm_same_person
from service.certification.models import AuditEntry, Beneficiary
from service.infra.clock import local_today
from service.infra.security import mask_text
from tests.service import factories
from tests.service.features.proxy.helpers import (
    P,
    active_binding,
    bearer,
    bind,
    import_roster,
    listed_bindings,
    new_elder,
    roster_csv,
    verified_operator,
)

SUPERVISOR = "staff:sup2"


def _dates(ctx: ServiceContext) -> tuple[dt.date, dt.date]:
    """A validity well past the grace date a change gives (90 days), and the certification it came from."""
    today = local_today(ctx.settings)
    return today + dt.timedelta(days=200), today - dt.timedelta(days=165)


def _record(ctx: ServiceContext, ext: str) -> Beneficiary:
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert b is not None
        db.expunge(b)
        return b


def _confirm(ctx: ServiceContext, ext: str, import_id: int, actor: str = SUPERVISOR) -> Any:
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary.id).where(Beneficiary.external_id == ext))
        assert b is not None
        return confirm_same_person(db, ctx.hooks, b, import_id, actor, local_today(ctx.settings), ctx.rules)


def _importer(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "roster.identity_changed")).first()
        assert entry is not None
        return entry.actor


def test_a_typo_corrected_gives_back_the_validity_and_the_bindings(client: TestClient, ctx: ServiceContext) -> None:
    """Without it, a corrected typo made the same elder certify again within the grace date and every relative
    bind again, the elder consenting again."""
    until, certified = _dates(ctx)
    ext, number, name = new_elder(ctx, valid_until=until, last_certified_on=certified)
    child, stranger, former = (verified_operator(client, ctx) for _ in range(3))
    active = active_binding(client, child, number, name)
    pending = bind(client, stranger, number, name).json()
    ended = active_binding(client, former, number, name)
    assert client.delete(f"{P}/bindings/{ended['binding_id']}", headers=bearer(former["token"])).status_code == 200

    corrected = factories.id_number(birth=dt.date(1938, 5, 2))  # a valid number: the typo's correction
    report = import_roster(client, roster_csv(ext, corrected, name))
    assert report["identity_changed"] == 1
    assert listed_bindings(client, child)[active["binding_id"]]["status"] == "revoked"
    assert _record(ctx, ext).valid_until != until

    with pytest.raises(IdentityReviewError) as own:
        _confirm(ctx, ext, report["import_id"], actor=_importer(ctx))
    assert own.value.code == "IDENTITY_REVIEW_SELF"

    done = _confirm(ctx, ext, report["import_id"])
    assert done.restored == {"bindings_restored": 3, "bindings_left_revoked": 0}
    b = _record(ctx, ext)
    assert (b.valid_until, b.last_certified_on, b.identity_since) == (until, certified, None)
    assert listed_bindings(client, child)[active["binding_id"]]["status"] == "active"
    assert listed_bindings(client, stranger)[pending["binding_id"]]["status"] == "pending_consent"
    assert listed_bindings(client, former)[ended["binding_id"]]["status"] == "ended"
    # The child certifies for the elder again, under the consent the elder gave.
    r = client.post(f"{P}/bindings/{active['binding_id']}/sessions", headers=bearer(child["token"]))
    assert r.status_code == 201, r.text
    with ctx.db() as db:
        actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.target == ext))]
        (entry,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "roster.identity_confirmed")).all()
    assert actions.count("proxy.binding.restored") == 3
    assert entry.actor == SUPERVISOR and entry.detail["bindings_restored"] == 3


def test_the_cycle_counts_the_earlier_certification_again_once_confirmed(
    client: TestClient, ctx: ServiceContext
) -> None:
    """Two records' numbers corrected; only one finding made. After the grace date the cycle suspends the
    record still waiting for its finding and leaves the confirmed one, whose own validity runs on."""
    until, certified = _dates(ctx)
    confirmed, waiting = (new_elder(ctx, valid_until=until, last_certified_on=certified) for _ in range(2))
    imports = [
        import_roster(client, roster_csv(ext, factories.id_number(birth=dt.date(1938, 5, 2)), name))
        for ext, _n, name in (confirmed, waiting)
    ]
    _confirm(ctx, confirmed[0], imports[0]["import_id"])
    after_grace = local_today(ctx.settings) + dt.timedelta(days=ctx.settings.cycle.new_import_grace_days + 1)
    assert after_grace < until
    with ctx.db() as db:
        assert run_cycle(db, after_grace, ctx.rules, cases=ctx.hooks.case_sources()) == [_record(ctx, waiting[0]).id]


def test_a_live_binding_is_not_given_back_to_an_elder_recorded_dead_since(
    client: TestClient, ctx: ServiceContext
) -> None:
    ext, number, name = new_elder(ctx)
    child = verified_operator(client, ctx)
    binding = active_binding(client, child, number, name)
    report = import_roster(client, roster_csv(ext, factories.id_number(birth=dt.date(1938, 5, 2)), name))
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert b is not None
        b.status = "deceased"
    assert _confirm(ctx, ext, report["import_id"]).restored == {"bindings_restored": 0, "bindings_left_revoked": 1}
    assert listed_bindings(client, child)[binding["binding_id"]]["status"] == "revoked"


def test_only_the_records_latest_change_can_be_confirmed(client: TestClient, ctx: ServiceContext) -> None:
    ext, _number, name = new_elder(ctx, valid_until=dt.date(2027, 3, 1))
    first = import_roster(client, roster_csv(ext, factories.id_number(birth=dt.date(1938, 5, 2)), name))
    between = _record(ctx, ext).valid_until  # the grace date the first change gave
    second = import_roster(client, roster_csv(ext, factories.id_number(birth=dt.date(1938, 5, 2)), name))
    with pytest.raises(IdentityReviewError) as old:
        _confirm(ctx, ext, first["import_id"])
    assert old.value.code == "IDENTITY_CHANGE_SUPERSEDED"
    with pytest.raises(IdentityReviewError) as unknown:
        _confirm(ctx, ext, second["import_id"] + 100)
    assert unknown.value.code == "IDENTITY_CHANGE_UNKNOWN"
    # The latest change was the typo: the record is as the first change left it (which is still unconfirmed).
    assert _confirm(ctx, ext, second["import_id"]).valid_until == between != dt.date(2027, 3, 1)
    assert _record(ctx, ext).identity_since is not None


def test_a_binding_its_relative_replaced_meanwhile_stays_revoked(client: TestClient, ctx: ServiceContext) -> None:
    ext, number, name = new_elder(ctx)
    child = verified_operator(client, ctx)
    old = active_binding(client, child, number, name)
    corrected = factories.id_number(birth=dt.date(1938, 5, 2))
    report = import_roster(client, roster_csv(ext, corrected, name))
    again = bind(client, child, corrected, name)  # the child bound the corrected number before the finding
    assert again.status_code == 201
    done = _confirm(ctx, ext, report["import_id"])
    assert done.restored == {"bindings_restored": 0, "bindings_left_revoked": 1}
    seen = listed_bindings(client, child)
    assert seen[old["binding_id"]]["status"] == "revoked" and seen[again.json()["binding_id"]]["status"] != "revoked"


def test_an_importer_named_by_an_id_number_cannot_confirm_their_own_change() -> None:
    """The audit trail keeps an actor masked (a staff name may be an ID number): the importer read back from it was
    `staff:1101**********0021`, which the same person's unmasked actor did not equal, so they confirmed their own
    change (the round's whole-diff review). Compared as kept, they are one person; another supervisor passes."""
    importer = "staff:110105194912310021"
    with pytest.raises(IdentityReviewError) as own:
        check_reviewer(mask_text(importer)[:64], importer)
    assert own.value.code == "IDENTITY_REVIEW_SELF"
    check_reviewer(mask_text(importer)[:64], "staff:sup2")
