"""A revocation, and the daily run's repair, cut back only a certification that may carry the revoked one's date
(revocation.cut_back), judged by what the certification was given when accepted (`Certification.own_validity`,
migration 0028), not by the record's region or the rules of today (docs/security.md, Part "moves").

Before: the genuine certification's validity was recomputed with today's region and rules. A pensioner certified in
济南 (a birthday-month region: valid to the end of their birth month next year) who moved to 武汉 (12 months), then
had a later certification revoked as 冒领, lost a month of a genuine certification and was suspended early; the
nightly repair did the same with no revocation after the move, audited as having carried a revoked date."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select

from service.certification.carried_validity import ACTION as CUT_ACTION
from service.certification.carried_validity import cut_back_carried
from service.certification.context import ServiceContext
from service.certification.cycle import run_cycle, valid_until
from service.certification.models import AuditEntry, Beneficiary, Certification
from service.infra.clock import local_today
from tests.service import factories
from tests.service.test_revocation import _certify, _person, _revoke, _row


def _moved_pensioner(ctx: ServiceContext) -> tuple[int, int, int]:
    """A person of 济南 (birthday-month rule) certified four days ago in their birth month, then (an impostor)
    yesterday: (record id, the genuine certification's id, the fraud's id)."""
    ctx.rules = dataclasses.replace(ctx.rules, birthday_month_regions=frozenset({"3701"}))
    today = local_today(ctx.settings)
    genuine_on = today - dt.timedelta(days=4)
    number = factories.id_number("370102", birth=dt.date(1956, genuine_on.month, 1), seq=781)
    bid = _person(ctx, id_number=number, region="370102", valid_until=today - dt.timedelta(days=2))
    genuine, _ = _certify(ctx, bid, genuine_on)
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=1))
    return bid, genuine, fraud


def _until(ctx: ServiceContext, cid: int) -> dt.date:
    return factories.update(ctx, Certification, cid).valid_until


def test_a_move_then_a_revocation_keeps_the_genuine_certifications_date(ctx: ServiceContext) -> None:
    bid, genuine, fraud = _moved_pensioner(ctx)
    own = _until(ctx, genuine)
    genuine_on = factories.update(ctx, Certification, genuine).certified_on
    factories.update(ctx, Beneficiary, bid, region="420106")  # the roster moves them to 武昌区 (12 months)
    assert valid_until(genuine_on, ctx.rules, "420106") < own  # what the cut gave it before
    _revoke(ctx, fraud)
    assert _until(ctx, genuine) == own and _row(ctx, bid).valid_until == own
    with ctx.db() as db:  # not suspended before the genuine certification's own end
        assert run_cycle(db, own, ctx.rules, cases=ctx.hooks.case_sources()) == []


def test_the_nightly_repair_leaves_a_genuine_certification_after_a_move(ctx: ServiceContext) -> None:
    bid, genuine, fraud = _moved_pensioner(ctx)
    own = _until(ctx, genuine)
    _revoke(ctx, fraud)  # in 济南: nothing to cut
    factories.update(ctx, Beneficiary, bid, region="420106")  # then the roster moves them
    with ctx.db() as db:
        assert cut_back_carried(db, ctx.rules) == 0
        assert db.scalars(select(AuditEntry).where(AuditEntry.action == CUT_ACTION)).all() == []
    assert _until(ctx, genuine) == own and _row(ctx, bid).valid_until == own


def test_a_change_of_validity_months_after_the_accept_does_not_shorten_it(ctx: ServiceContext) -> None:
    today = local_today(ctx.settings)
    ctx.rules = dataclasses.replace(ctx.rules, validity_months=12, birthday_month_regions=frozenset())
    bid = _person(ctx, valid_until=today - dt.timedelta(days=2))
    genuine, _ = _certify(ctx, bid, today - dt.timedelta(days=4))
    own = _until(ctx, genuine)
    ctx.rules = dataclasses.replace(ctx.rules, validity_months=6)  # VALIDITY_MONTHS changed since
    fraud, _ = _certify(ctx, bid, today - dt.timedelta(days=1))  # six months: before the genuine one's end
    assert _until(ctx, fraud) < own
    _revoke(ctx, fraud)
    assert _until(ctx, genuine) == own and _row(ctx, bid).valid_until == own
    with ctx.db() as db:
        assert cut_back_carried(db, ctx.rules) == 0
    assert _until(ctx, genuine) == own
