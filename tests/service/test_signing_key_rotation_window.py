"""The window of a signing-key rotation (docs/operations.md, "Rotating the signing key"; docs/security.md Part AH):
while a previous key is listed, one person keeps one hash (a roster row created meanwhile, a relative verified
while the rekey runs), `pension-cert rekey --check` sees every stored hash left under a previous key (the relative's
verified identity too), a roster import after a key was dropped too early changes nobody's identity, a relative
with two accounts across the keys still logs in, and production refuses a short previous key."""

from __future__ import annotations

import base64
import dataclasses
import os
import uuid

import pytest
from sqlalchemy import func, select

from pipelines.decision.result import Outcome
from service.adapters.cli.rekey_cmd import hash_copies, hashed_columns
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, Beneficiary, CertSession
from service.certification.rekey import rehash_column
from service.certification.roster import import_roster
from service.features.proxy import operators
from service.features.proxy.bindings import bind
from service.features.proxy.hooks import on_decided
from service.features.proxy.models import ProxyClaim, ProxyOperator, ProxyOperatorIdentity
from service.features.proxy.operators import mark_verified
from service.features.proxy.sessions import open_verification
from service.infra.config import settings_from_flat
from tests.service import factories
from tests.service.test_races import pg_ctx  # noqa: F401  (the two-transaction PostgreSQL context)
from tests.service.test_roster import TERMS, to_csv
from tests.service.test_signing_key_rotation import WHO, hashed_deployment, rehash, rotate


def verified_relative(ctx: ServiceContext, number: str, openid: str) -> tuple[str, str]:
    """A relative verified as `number` (not on the roster) before the rotation: (operator id, session id)."""
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", openid, "test").operator
        sid = open_verification(db, ctx, op, number, "王五", consent=False).session.id
        claim = db.get_one(ProxyClaim, sid)
        mark_verified(op, claim.id_hash, claim.id_masked, claim.name)
        op_id = op.id
        db.commit()
    return op_id, sid


def test_check_sees_a_relatives_identity_left_under_the_previous_key(ctx: ServiceContext) -> None:
    made = hashed_deployment(ctx)
    with ctx.db() as db:
        old_person = db.get_one(ProxyOperatorIdentity, made["op"]).person_hash
    rotate(ctx)
    rehash(ctx)
    with ctx.db() as db:  # a verification decided from a claim read before the rekey's batch, written after it
        db.get_one(ProxyOperatorIdentity, made["op"]).person_hash = old_person
        db.commit()
    left = rehash(ctx, write=False)
    assert left["proxy_operator_identities.person_hash"]["rehashed"] == 1  # was: nothing left, exit 0
    rehash(ctx)
    with ctx.db() as db:
        assert db.get_one(ProxyOperatorIdentity, made["op"]).person_hash == ctx.keyring.id_hash(made["numbers"][0])
    again = rehash(ctx, write=False)
    assert all(c["rehashed"] == 0 and c["unreadable"] == 0 for c in again.values()), again


def test_a_verification_decided_while_the_rekey_runs_takes_the_claims_new_hash(
    pg_ctx: ServiceContext,  # noqa: F811
) -> None:
    """PostgreSQL, two real transactions: the worker read the claim, the rekey moved it and committed, then the
    worker's decision wrote the relative's identity. It now re-reads the claim under a lock before writing."""
    ctx = pg_ctx
    number = factories.id_number(region="110101")
    op_id, sid = verified_relative(ctx, number, "openid-race")
    with ctx.db() as db:  # verified again from scratch: the decision under test makes the identity
        db.delete(db.get_one(ProxyOperatorIdentity, op_id))
        db.commit()
    rotate(ctx)
    worker = ctx.session_factory()
    try:
        s = worker.get_one(CertSession, sid)
        stale = worker.get_one(ProxyClaim, sid)  # read before the rekey's batch (the worker's earlier steps)
        assert stale.id_hash != ctx.keyring.id_hash(number)
        for column in hashed_columns():  # the rekey, its own transactions, commits meanwhile
            rehash_column(ctx, column, hash_copies(), 500, True, WHO)
        assert on_decided(worker, ctx, s, None, Outcome.ACCEPT, [], None)
        worker.commit()
    finally:
        worker.close()
    with ctx.db() as db:
        person = db.get_one(ProxyOperatorIdentity, op_id).person_hash
    assert person == ctx.keyring.id_hash(number)  # was: the previous key's, for good
    left = {c.name: rehash_column(ctx, c, hash_copies(), 500, False, WHO) for c in hashed_columns()}
    assert all(c.resealed == 0 and not c.unreadable for c in left.values())


def test_a_new_roster_row_during_the_rotation_takes_the_hash_the_persons_claims_carry(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101")
    op_id, _sid = verified_relative(ctx, number, "openid-self")
    rotate(ctx)
    with ctx.db() as db:
        row = ["EXT-SELF", number, "王五", "", "enterprise_pension", "", "2026-06-30"]
        terms = dataclasses.replace(TERMS, hooks=ctx.hooks)  # the service's import: import_terms(ctx)
        report = import_roster(db, ctx.keyring, "roster.csv", to_csv([row]), "test", terms)
        assert report.created == 1, report.to_dict()
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "EXT-SELF"))
        assert b is not None and b.id_hash == db.get_one(ProxyOperatorIdentity, op_id).person_hash  # one person
        op = operators.login(db, ctx, "wechat", "openid-self", "test").operator
        with pytest.raises(ServiceError, match="cannot be their own proxy"):
            bind(db, ctx, op, "王五", number, "child")


def test_a_roster_import_after_the_key_was_dropped_too_early_changes_nobodys_identity(ctx: ServiceContext) -> None:
    number = factories.id_number()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=number, name="张秀英")
        ext, bid = b.external_id, b.id
    rotate(ctx, keep_previous=False)  # the leaked key dropped before the rekey ran
    with ctx.db() as db:
        row = [ext, number, "张秀英", "", "enterprise_pension", "", "2026-06-30"]
        report = import_roster(db, ctx.keyring, "roster.csv", to_csv([row]), "test", TERMS)
        assert report.identity_changed == [] and report.updated == 1, report.to_dict()
        assert db.get_one(Beneficiary, bid).id_hash == ctx.keyring.id_hash(number)  # found by number again
        other = factories.id_number()
        moved = import_roster(db, ctx.keyring, "roster.csv", to_csv([[ext, other, *row[2:]]]), "test", TERMS)
        assert len(moved.identity_changed) == 1  # another number is still a change of ID number


def test_a_relative_with_an_account_under_each_key_still_logs_in(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        first = operators.login(db, ctx, "wechat", "openid-two", "test").operator.id
    old, _new = rotate(ctx, keep_previous=False)  # the old key left out by mistake: a second account is made
    with ctx.db() as db:
        second = operators.login(db, ctx, "wechat", "openid-two", "test").operator.id
    ctx.keyring = type(ctx.keyring)(ctx.settings.media_key_bytes, _new, previous_signing_keys=[old])
    with ctx.db() as db:  # was: IntegrityError (uq_proxy_operator_channel), the login a 500
        again = operators.login(db, ctx, "wechat", "openid-two", "test")
        assert again.operator.id == second and not again.created
        assert db.scalar(select(func.count()).select_from(ProxyOperator)) == 2
        assert db.get_one(ProxyOperator, first).channel_hash != again.operator.channel_hash
        noted = db.scalar(select(AuditEntry).where(AuditEntry.action == "proxy.operator.duplicate_channel"))
        assert noted is not None and noted.detail["other"] == [first]


def test_production_refuses_a_short_previous_signing_key() -> None:
    values = {
        "env": "production", "media_key": base64.b64encode(os.urandom(32)).decode(), "signing_key": "s" * 40,
        "api_keys": ["k" * 40], "admin_api_keys": ["a" * 40],
    }  # fmt: skip
    ok = settings_from_flat(**values, signing_keys_previous=["p" * 40])
    short = settings_from_flat(**values, signing_keys_previous=["p" * 40, "short-" + uuid.uuid4().hex[:6]])
    assert not any("SIGNING_KEYS_PREVIOUS" in w for w in ok.production_weaknesses())
    assert any("PENSION_CERT_SIGNING_KEYS_PREVIOUS" in w for w in short.production_weaknesses())
