"""A widow on her late husband's WeChat through a signing-key rotation (docs/security.md Part CR's "Left": a verified
person's record hashed under another key than the check reads as a living relative). Checked at each step of a
rotation: the new key in force with the old one listed, then `pension-cert rekey`'s passes one by one (the roster's
hashes, each moving its copies on the relatives' claims and identities in the same transaction; the claims; the
identities). The husband's record and his identity on her account never hold hashes of two keys, so he is found
and read as deceased at every step: her page stays her own and her certificate is served."""

from __future__ import annotations

import datetime as dt

from service.adapters.cli.rekey_cmd import hash_copies, hashed_columns
from service.certification.models import Beneficiary, BeneficiaryStatus
from service.certification.rekey import rehash_column
from service.features.proxy import operators
from service.features.proxy import sessions as proxy_sessions
from service.features.proxy.models import ProxyClaim, ProxyOperator
from service.features.wechat.h5 import identity
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App
from tests.service.features.wechat.h5.test_my_certificate import reviewed
from tests.service.features.wechat.h5.test_my_data import certified
from tests.service.features.wechat.h5.test_my_data_read_only import verified_account
from tests.service.test_signing_key_rotation import rotate

WHO = {"os_user": "test"}


def _her_page_is_her_own(app: App) -> None:
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))  # minted under the key in force
    page = app.client.get("/h5/me")
    assert page.status_code == 200 and 'id="read-only"' not in page.text and 'id="withdraw"' in page.text
    r = app.client.get(f"/h5/me/{app.beneficiary_id}/certificate.png")
    assert r.status_code == 200, r.text


def test_a_widows_page_stays_her_own_at_every_step_of_a_signing_key_rotation(app: App) -> None:
    number = factories.id_number(region="110101", birth=dt.date(1950, 5, 6))
    with app.ctx.db() as db:
        husband = factories.beneficiary(db, app.ctx.keyring, name="王建国", id_number=number)
        husband.status = BeneficiaryStatus.DECEASED
        db.commit()
        hid = husband.id
    verified_account(app, OPENID, number)  # he once did the family page's real-name check on her phone
    certified(app, openid=OPENID, enrol=True)
    reviewed(app)
    _her_page_is_her_own(app)
    rotate(app.ctx)  # the new key in force, the old one listed: nothing re-hashed yet
    _her_page_is_her_own(app)
    for column in hashed_columns():
        rehash_column(app.ctx, column, hash_copies(), batch=1, write=True, who=WHO)
        _her_page_is_her_own(app)
    with app.ctx.db() as db:
        moved = db.get(Beneficiary, hid)
        assert moved is not None and moved.id_hash == app.ctx.keyring.id_hash(number)  # the rotation did happen


def test_a_widows_page_stays_her_own_when_his_verification_is_decided_across_the_rekey(app: App) -> None:
    """His real-name check on her phone was decided while `pension-cert rekey` moved his roster record: the worker
    read the claim's hash before the move and wrote it on his identity after, so his identity holds the old key's
    hash while his record and the claim hold the new one's (the rekey's rerun moves it). Before: his record was not
    found, he read as a living relative not on the roster, and her page was read-only, her certificate refused."""
    number = factories.id_number(region="110101", birth=dt.date(1950, 5, 6))
    with app.ctx.db() as db:
        husband = factories.beneficiary(db, app.ctx.keyring, name="王建国", id_number=number)
        husband.status = BeneficiaryStatus.DECEASED
        op = operators.login(db, app.ctx, "wechat", OPENID, "test").operator
        claim_id = proxy_sessions.open_verification(db, app.ctx, op, number, "王建国", False).session.id
        db.commit()
        op_id = op.id
    certified(app, openid=OPENID, enrol=True)
    reviewed(app)
    with app.ctx.db() as db:
        claim = db.get(ProxyClaim, claim_id)
        assert claim is not None
        read_before_the_move = (claim.id_hash, claim.id_masked, claim.name)
    rotate(app.ctx)
    roster, *_ = hashed_columns()
    rehash_column(app.ctx, roster, hash_copies(), batch=100, write=True, who=WHO)
    with app.ctx.db() as db:
        account = db.get(ProxyOperator, op_id)
        assert account is not None
        operators.mark_verified(account, *read_before_the_move)  # the decision, from its read before the move
        db.commit()
        claim = db.get(ProxyClaim, claim_id)
        assert claim is not None and claim.id_hash == app.ctx.keyring.id_hash(number) != account.person_hash
    _her_page_is_her_own(app)
