"""The validity a revocation leaves (service/certification/revocation.py, `revalidate`), found by review.

Before: a supervisor's same-person finding on a roster change of ID number restored the validity from the audit
trail, the revoked fraud's included; a certification entered late (a counter or home visit dated in the past)
stored the record's latest date, the fraud's, and kept it once the fraud was revoked; and with no certification
left the validity fell back to the day before the fraud even when the person had lapsed long before it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from service.certification.certificates import CertificateStatus, check_code, issued_claims
from service.certification.context import ServiceContext
from service.certification.cycle import run_cycle, valid_until
from service.certification.daily_run import daily_run
from service.certification.identity_review import confirm_same_person
from service.certification.models import AuditEntry, Beneficiary, BeneficiaryStatus, Certification, in_force
from service.features.console.alt_cert import certify_alternative
from service.infra.clock import local_today
from tests.service import factories
from tests.service.test_identity_change_accept import _change_number
from tests.service.test_revocation import _certify, _person, _revoke, _row


def test_a_same_person_finding_does_not_bring_back_a_revoked_validity(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    lapsed = today - dt.timedelta(days=10)
    bid = _person(ctx, valid_until=lapsed)
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=5))  # 冒领
    import_id = _change_number(ctx, _row(ctx, bid).external_id)  # a typo corrected by the roster
    grace = _row(ctx, bid).valid_until
    assert not _revoke(ctx, fraud).counted  # the previous number's, as things stand
    with ctx.db() as db:
        done = confirm_same_person(db, ctx.hooks, bid, import_id, "staff:sup2", today, ctx.rules)
    b = _row(ctx, bid)
    # The same person again: the fraud counts as theirs and is revoked, so what it gave is not given back; the
    # grace date the change gave stays (the roster's own date).
    assert grace is not None and grace > lapsed
    assert (b.valid_until, done.valid_until, b.last_certified_on) == (grace, grace, None)
    with ctx.db() as db:  # lapsed when the grace date ends (the fraud's year gave nothing)
        assert run_cycle(db, grace + dt.timedelta(days=1), ctx.rules, cases=ctx.hooks.case_sources()) == [bid]


def test_a_late_entered_certification_leaves_its_own_validity(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today - dt.timedelta(days=10))
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    seen = today - dt.timedelta(days=200)  # a home visit 200 days ago, entered after the fraud
    _late_entry(ctx, bid, seen)
    done = _revoke(ctx, fraud)
    b = _row(ctx, bid)
    own = valid_until(seen, ctx.rules, b.region, b.birth_date)
    assert done.valid_until == own
    assert done.last_certified_on == seen
    # The day after the home visit's own validity: lapsed, and its certificate reads expired (before, the row
    # kept the fraud's date: never suspended, and the check said valid for the fraud's whole year).
    with ctx.db() as db:
        late = db.scalars(select(Certification).where(Certification.beneficiary_id == bid, in_force())).one()
        assert late.valid_until == own
        assert check_code(db, ctx.keyring, late.code, own + dt.timedelta(days=1))[1].status is CertificateStatus.EXPIRED
        assert run_cycle(db, own + dt.timedelta(days=1), ctx.rules, cases=ctx.hooks.case_sources()) == [bid]


def test_a_late_entry_stores_its_own_validity_and_the_record_keeps_the_later_one(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today - dt.timedelta(days=10))
    cid, _ = _certify(ctx, bid, today)
    seen = today - dt.timedelta(days=200)
    _late_entry(ctx, bid, seen)
    b = _row(ctx, bid)
    with ctx.db() as db:
        query = select(Certification.id, Certification.valid_until).where(Certification.beneficiary_id == bid)
        rows = {i: until for i, until in db.execute(query)}
        late = db.scalars(
            select(Certification).where(Certification.id != cid, Certification.beneficiary_id == bid)
        ).one()
        assert issued_claims(late.code).valid_until == late.valid_until  # the code signs the same date
    ours = valid_until(today, ctx.rules, b.region, b.birth_date)
    assert b.valid_until == ours and rows[cid] == ours
    assert rows[late.id] == valid_until(seen, ctx.rules, b.region, b.birth_date) < ours


def test_a_late_entry_stored_with_the_frauds_date_is_cut_back_by_the_revocation(ctx: ServiceContext) -> None:
    """A row written before each row stored its own validity: it carries the record's latest date, the fraud's."""
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today - dt.timedelta(days=10))
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    seen = today - dt.timedelta(days=200)
    late = _late_entry(ctx, bid, seen)
    # As such a row was stored (before migration 0028 no row was marked as holding its own validity).
    factories.update(ctx, Certification, late, valid_until=_row(ctx, bid).valid_until, own_validity=False)
    _revoke(ctx, fraud)
    b = _row(ctx, bid)
    own = valid_until(seen, ctx.rules, b.region, b.birth_date)
    assert factories.update(ctx, Certification, late).valid_until == own == b.valid_until
    with ctx.db() as db:
        assert run_cycle(db, own + dt.timedelta(days=1), ctx.rules, cases=ctx.hooks.case_sources()) == [bid]


def test_with_nothing_left_the_validity_goes_back_to_what_it_was(ctx: ServiceContext) -> None:
    """A person lapsed a year ago whom an impostor certified: revoked, they read lapsed a year ago again (not valid
    until the day before the fraud: that widened the cycle run's shelter for a case being decided)."""
    today = local_today(ctx.settings)
    long_ago = today - dt.timedelta(days=365)
    bid = _person(ctx, valid_until=long_ago)
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    assert _revoke(ctx, fraud).valid_until == long_ago
    assert _row(ctx, bid).valid_until == long_ago


def test_with_nothing_left_a_roster_grace_date_ends_the_day_before_the_fraud(ctx: ServiceContext) -> None:
    """A new import's grace date (no certification of their own yet): never later than the day before the revoked
    certification, as before (a roster grace date is not kept apart from what certified it)."""
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today + dt.timedelta(days=40))
    on = today - dt.timedelta(days=5)
    fraud, _ = _certify(ctx, bid, on)
    assert _revoke(ctx, fraud).valid_until == on - dt.timedelta(days=1)


def test_a_late_entry_a_revocation_before_part_bz_left_with_the_frauds_date_is_cut_back(ctx: ServiceContext) -> None:
    """A revocation made before each row stored its own validity recomputed the record but left the late entry's
    row with the fraud's date (nothing revokes again to cut it): the cycle run sheltered the person, and the public
    check said valid, until the fraud's date. The daily run now cuts such a row back first (audited)."""
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today - dt.timedelta(days=10))
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=5))
    frauds_date = _row(ctx, bid).valid_until
    seen = today - dt.timedelta(days=200)
    late = _late_entry(ctx, bid, seen)
    _revoke(ctx, fraud)
    # As the revocation then left the row (unmarked: stored before migration 0028).
    factories.update(ctx, Certification, late, valid_until=frauds_date, own_validity=False)
    b = _row(ctx, bid)
    own = valid_until(seen, ctx.rules, b.region, b.birth_date)
    assert b.valid_until == own and frauds_date is not None and frauds_date > own
    day = own + dt.timedelta(days=1)
    assert daily_run(ctx, "test", day).suspended == 1
    row = factories.update(ctx, Certification, late)
    assert row.valid_until == own
    assert _row(ctx, bid).status == BeneficiaryStatus.SUSPENDED
    with ctx.db() as db:
        assert check_code(db, ctx.keyring, row.code, day)[1].status is CertificateStatus.EXPIRED
        cut = db.scalars(select(AuditEntry.detail).where(AuditEntry.action == "certification.validity_cut")).all()
    assert cut == [
        {
            "certification": late,
            "revoked": fraud,
            "valid_until_before": frauds_date.isoformat(),
            "valid_until": own.isoformat(),
        }
    ]
    assert daily_run(ctx, "test", day + dt.timedelta(days=1)).suspended == 0  # nothing more to cut, nobody new


def test_the_daily_run_leaves_a_late_entry_sheltered_by_a_certification_in_force(ctx: ServiceContext) -> None:
    """Guard: a late entry that carries a later certification still in force is the revocation's to cut; the daily
    run changes nothing while nothing of the person's was revoked."""
    today = local_today(ctx.settings)
    bid = _person(ctx, valid_until=today - dt.timedelta(days=10))
    _certify(ctx, bid, today - dt.timedelta(days=5))
    seen = today - dt.timedelta(days=200)
    late = _late_entry(ctx, bid, seen)
    carried = _row(ctx, bid).valid_until
    factories.update(ctx, Certification, late, valid_until=carried, own_validity=False)
    assert daily_run(ctx, "test", today).suspended == 0
    assert factories.update(ctx, Certification, late).valid_until == carried


def _late_entry(ctx: ServiceContext, bid: int, seen: dt.date) -> int:
    """A home visit on `seen` entered now (补录): its certification's id."""
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        certify_alternative(db, ctx, b, "home_visit", seen, None, {"note": "补录"})
        db.flush()
        query = select(Certification.id).where(Certification.beneficiary_id == bid, Certification.certified_on == seen)
        return db.scalars(query).one()
