"""Rotating the signing key (docs/operations.md, "Rotating the signing key"; docs/security.md Part AH): the key
SIGNING_KEY replaced (PENSION_CERT_SIGNING_KEYS_PREVIOUS) still recognises the ID-number look-up hashes, the
relatives' account ids, the certificate codes and the H5 cookies it made, and `pension-cert rekey` recomputes the
stored look-up hashes with the current key, in audited batches, resumable, on SQLite and PostgreSQL. Before, a new
PENSION_CERT_SIGNING_KEY made every pensioner "not found" by number, every issued certificate fail its check,
every relative a stranger to their account and logged everyone out."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.requests import Request

import service.schema
from service.adapters.cli.rekey_cmd import hash_copies, hashed_columns
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import AuditEntry, Beneficiary
from service.certification.rekey import rehash_column
from service.certification.roster import import_roster
from service.certification.sessions import find_beneficiary
from service.features.proxy import operators
from service.features.proxy.models import CLAIM_FIELD, ProxyClaim, ProxyOperator, ProxyOperatorIdentity
from service.features.wechat.h5 import identity
from service.infra.config import DEV_SIGNING_KEY, SECRET_SETTINGS, InsecureSettingsError, settings_from_flat
from service.infra.security import Keyring, mask_id
from tests.service import factories
from tests.service.adapters.http.test_certificate_check import VERIFY, certify, check
from tests.service.test_roster import TERMS, to_csv

ROOT = Path(__file__).resolve().parents[2]
WHO = {"os_user": "test"}


def rotate(ctx: ServiceContext, keep_previous: bool = True) -> tuple[str, str]:
    """The deployment restarted with a new SIGNING_KEY, the old one in SIGNING_KEYS_PREVIOUS (or dropped)."""
    old, new = ctx.settings.security.signing_key, "new-signing-key-" + os.urandom(16).hex()
    media = ctx.settings.media_key_bytes
    ctx.keyring = Keyring(media, new, previous_signing_keys=[old] if keep_previous else [])
    return old, new


def only_current(ctx: ServiceContext, new: str) -> None:
    """The previous signing key dropped."""
    ctx.keyring = Keyring(ctx.settings.media_key_bytes, new)


def test_the_previous_signing_keys_setting() -> None:
    assert "PENSION_CERT_SIGNING_KEYS_PREVIOUS" in SECRET_SETTINGS  # never shown in an error or the CLI
    s = settings_from_flat(env="development", signing_keys_previous=["old-key", DEV_SIGNING_KEY])
    assert s.security.signing_keys_previous == ["old-key", DEV_SIGNING_KEY]
    with pytest.raises(ValueError, match="entry 2 is empty"):
        settings_from_flat(signing_keys_previous=["old-key", " "])
    # Outside development the public key never signed anything: recognising it would let anyone mint cookies.
    test = settings_from_flat(
        env="test", media_key=base64.b64encode(os.urandom(32)).decode(), signing_key="x" * 40,
        api_keys=["k" * 40], signing_keys_previous=[DEV_SIGNING_KEY],
    )  # fmt: skip
    assert test.dev_default_secrets() == ["PENSION_CERT_SIGNING_KEYS_PREVIOUS"]
    with pytest.raises(InsecureSettingsError, match="PENSION_CERT_SIGNING_KEYS_PREVIOUS"):
        test.validate_secrets()


def test_a_pensioner_hashed_under_the_previous_key_is_still_found_by_number(ctx: ServiceContext) -> None:
    number = factories.id_number()
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring, id_number=number).id
    old, new = rotate(ctx, keep_previous=False)
    with ctx.db() as db, pytest.raises(ServiceError):  # the key changed alone: "not found"
        find_beneficiary(db, ctx, None, number)
    ctx.keyring = Keyring(ctx.settings.media_key_bytes, new, previous_signing_keys=[old])
    with ctx.db() as db:
        assert find_beneficiary(db, ctx, None, number).id == bid
        assert ctx.keyring.id_hashes(number)[0] == ctx.keyring.id_hash(number)  # new hashes: the current key


def test_a_roster_import_during_the_rotation_updates_the_person_and_makes_no_second_row(
    ctx: ServiceContext,
) -> None:
    number = factories.id_number()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=number, name="张秀英")
        bid, ext, old_hash = b.id, b.external_id, b.id_hash
    rotate(ctx)
    row = [ext, number, "张秀兰", "", "enterprise_pension", "", "2026-06-30"]
    with ctx.db() as db:
        report = import_roster(db, ctx.keyring, "roster.csv", to_csv([row]), "test", TERMS)
        assert (report.updated, report.identity_changed, report.rejected) == (1, [], []), report.to_dict()
        updated = db.get_one(Beneficiary, bid)
        assert updated.name == "张秀兰" and updated.id_hash == old_hash  # the same person; the rekey moves it
        # Another record with the same number: refused, as before the rotation, not a second row for the person.
        other = ["X" + ext, *row[1:]]
        again = import_roster(db, ctx.keyring, "roster.csv", to_csv([other]), "test", TERMS)
        assert len(again.rejected) == 1 and "already belongs" in json.dumps(again.rejected, ensure_ascii=False)
        hashes = ctx.keyring.id_hashes(number)
        same = select(func.count()).select_from(Beneficiary).where(Beneficiary.id_hash.in_(hashes))
        assert db.scalar(same) == 1


def test_a_certificate_issued_under_the_previous_key_still_checks(client: TestClient, ctx: ServiceContext) -> None:
    issued = certify(ctx)
    _old, new = rotate(ctx)
    assert check(client, issued.code)["valid"] is True
    only_current(ctx, new)  # the old key dropped after the rekey: the paper stays genuine (its code is stored)
    assert check(client, issued.code)["valid"] is True
    body, _, mac = issued.code.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    for bad in (forged, body + "." + "0" * 32, "1.2"):
        r = TestClient(client.app).get(VERIFY, params={"code": bad})
        assert r.status_code != 200 and "CERTIFICATE_INVALID" in r.text
    png = client.get(
        f"/api/v1/sessions/{issued.session_id}/certificate.png", headers={"Authorization": f"Bearer {issued.token}"}
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")  # the holder's copy, under the old code


def cookie_request(value: str) -> Request:
    return Request({"type": "http", "headers": [(b"cookie", f"{identity.COOKIE}={value}".encode())]})


def test_an_h5_cookie_signed_with_the_previous_key_is_accepted_until_the_key_is_dropped(ctx: ServiceContext) -> None:
    cookie = identity.mint(ctx, "openid-1")
    _old, new = rotate(ctx)
    assert identity.openid_from(ctx, cookie_request(cookie)) == "openid-1"
    fresh = identity.mint(ctx, "openid-1")
    only_current(ctx, new)
    assert identity.openid_from(ctx, cookie_request(cookie)) is None  # logged in again (2 hours at most)
    assert identity.openid_from(ctx, cookie_request(fresh)) == "openid-1"
    expired = identity.mint(ctx, "openid-1", now=time.time() - 3 * identity.TTL_S)
    assert identity.openid_from(ctx, cookie_request(expired)) is None


def test_an_assistance_form_opened_before_the_switch_still_submits(ctx: ServiceContext) -> None:
    from service.features.wechat.h5 import requests  # the package first (its routes import this module)

    token = requests._form_token(ctx, "openid-2")
    _old, new = rotate(ctx)
    assert requests._form_token_ok(ctx, "openid-2", token)  # was "页面已过期" after the switch
    assert not requests._form_token_ok(ctx, "openid-3", token) and not requests._form_token_ok(ctx, "openid-2", "é")
    only_current(ctx, new)
    assert not requests._form_token_ok(ctx, "openid-2", token)
    assert requests._form_token_ok(ctx, "openid-2", requests._form_token(ctx, "openid-2"))


def test_a_relatives_account_is_recognised_and_moved_to_the_current_key_on_sight(ctx: ServiceContext) -> None:
    with ctx.db() as db:
        first = operators.login(db, ctx, "wechat", "openid-7", "test")
        op_id, old_hash = first.operator.id, first.operator.channel_hash
    _old, new = rotate(ctx)
    with ctx.db() as db:
        assert operators.find(db, ctx, "wechat", "openid-7") is not None
        again = operators.login(db, ctx, "wechat", "openid-7", "test")
        assert not again.created and again.operator.id == op_id  # the same account, not a second one
        assert again.operator.channel_hash == ctx.keyring.macs("proxy-operator:wechat:openid-7")[0] != old_hash
    only_current(ctx, new)
    with ctx.db() as db:
        found = operators.find(db, ctx, "wechat", "openid-7")
        assert found is not None and found.id == op_id
        assert db.scalar(select(func.count()).select_from(ProxyOperator)) == 1


def test_a_relatives_claim_during_the_rotation_carries_the_hash_the_persons_rows_have(ctx: ServiceContext) -> None:
    """One hash per person at any time: the roster row, the claims and the verified identity are compared with
    each other (the roster's name for the claim, "never the elder themself"), so a new claim takes theirs."""
    from service.features.proxy.sessions import open_verification, roster_name_differs  # lazy: as the app loads it

    listed, outsider = factories.id_number(), factories.id_number(region="110101")
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=listed, name="张秀英")
        first = operators.login(db, ctx, "wechat", "openid-8", "test").operator
        open_verification(db, ctx, first, outsider, "李四", consent=False)
        roster_hash, outsider_old = b.id_hash, ctx.keyring.id_hash(outsider)
    rotate(ctx)
    with ctx.db() as db:
        ops = [operators.login(db, ctx, "wechat", f"openid-{i}", "test").operator for i in (9, 10)]
        mine = open_verification(db, ctx, ops[0], listed, "张秀兰", consent=False).session.id
        again = open_verification(db, ctx, ops[1], outsider, "李四", consent=False).session.id
        claim = db.get_one(ProxyClaim, mine)
        assert claim.id_hash == roster_hash and roster_name_differs(db, claim)  # the roster row is found
        assert db.get_one(ProxyClaim, again).id_hash == outsider_old  # the same person as the first claim


def hashed_deployment(ctx: ServiceContext, people: int = 5) -> dict[str, Any]:
    """Beneficiaries, a relative verified as the first of them (their claim and identity carry the same hash),
    and a relative's claim of a number not on the roster: all hashed with the signing key before the rotation."""
    numbers = [factories.id_number() for _ in range(people)]
    outsider = factories.id_number(region="110101")
    with ctx.db() as db:
        rows = [factories.beneficiary(db, ctx.keyring, id_number=n) for n in numbers]
        op = ProxyOperator(id=str(uuid.uuid4()), channel="wechat", channel_hash=uuid.uuid4().hex, token_hash="-")
        db.add(op)
        db.flush()
        person = ctx.keyring.id_hash(numbers[0])
        db.add(ProxyOperatorIdentity(operator_id=op.id, person_hash=person, id_masked=mask_id(numbers[0])))
        for number in (numbers[0], outsider):
            s = factories.session_row(None)
            db.add(s)
            db.flush()
            db.add(
                ProxyClaim(
                    session_id=s.id, operator_id=op.id, id_hash=ctx.keyring.id_hash(number),
                    id_enc=ctx.keyring.encrypt_field(number, CLAIM_FIELD), id_masked=mask_id(number), name="李",
                )
            )  # fmt: skip
        return {"ids": [r.id for r in rows], "numbers": numbers, "outsider": outsider, "op": op.id}


def rehash(ctx: ServiceContext, batch: int = 2, write: bool = True) -> dict[str, Any]:
    copies = hash_copies()
    return {c.name: rehash_column(ctx, c, copies, batch, write, WHO).as_dict("rehashed") for c in hashed_columns()}


def all_current(ctx: ServiceContext, new: str, made: dict[str, Any]) -> None:
    """Every stored hash is the current key's: the previous one can go, and everyone is still found."""
    only_current(ctx, new)
    with ctx.db() as db:
        for bid, number in zip(made["ids"], made["numbers"], strict=True):
            assert find_beneficiary(db, ctx, None, number).id == bid
        claims = {c.id_hash for c in db.scalars(select(ProxyClaim))}
        assert claims == {ctx.keyring.id_hash(made["numbers"][0]), ctx.keyring.id_hash(made["outsider"])}
        person = db.get_one(ProxyOperatorIdentity, made["op"]).person_hash
        assert person == ctx.keyring.id_hash(made["numbers"][0])  # still the same person as the roster row


def test_rekey_rehashes_every_lookup_hash_and_its_copies_in_audited_batches(ctx: ServiceContext) -> None:
    made = hashed_deployment(ctx)
    _old, new = rotate(ctx)
    left = rehash(ctx, write=False)
    assert left["beneficiaries.id_hash"]["rehashed"] == 5 and left["proxy_claims.id_hash"]["rehashed"] == 2
    counts = rehash(ctx, batch=2)
    assert counts["beneficiaries.id_hash"] == {
        "rehashed": 5, "current": 0, "unreadable": 0, "unreadable_ids": [], "failed": 0, "failed_ids": [],
    }  # fmt: skip
    # The first number's claim moved with its roster row (same transaction): only the outsider's was left.
    assert (counts["proxy_claims.id_hash"]["rehashed"], counts["proxy_claims.id_hash"]["current"]) == (1, 1)
    with ctx.db() as db:
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "keys.rekey")).all()
        assert sorted(e.target for e in entries).count("beneficiaries.id_hash") == 3  # batches of 2
        assert sum(e.detail["rehashed"] for e in entries) == 6 and entries[0].detail["os_user"] == "test"
    again = rehash(ctx, write=False)  # nothing left: idempotent, and the check says so
    assert all(c["rehashed"] == 0 and c["unreadable"] == 0 for c in again.values())
    all_current(ctx, new, made)


def test_a_claim_emptied_by_retention_keeps_its_hash_and_is_not_unreadable(ctx: ServiceContext) -> None:
    """The outsider's claim, unaccepted, emptied by retention (proxy/claim_retention.py): the rekey has no number
    to recompute its hash from and leaves it as it is, unreported; the relative's identity still moves, from its
    own claim."""
    made = hashed_deployment(ctx)
    outsider_hash = ctx.keyring.id_hash(made["outsider"])
    with ctx.db() as db:
        claim = db.scalars(select(ProxyClaim).where(ProxyClaim.id_hash == outsider_hash)).one()
        claim.id_enc, claim.name = "", ""
    rotate(ctx)
    counts = rehash(ctx)
    assert all(c["unreadable"] == 0 for c in counts.values())
    with ctx.db() as db:
        assert db.scalars(select(ProxyClaim.id_hash).where(ProxyClaim.id_enc == "")).one() == outsider_hash
        who = db.get_one(ProxyOperatorIdentity, made["op"])
        assert who.person_hash == ctx.keyring.id_hash(made["numbers"][0])


def test_rekey_interrupted_midway_loses_nothing_and_the_rerun_finishes(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = hashed_deployment(ctx, people=6)
    old, new = rotate(ctx)
    real, calls = ctx.keyring.decrypt_field, []

    def dies_on_the_fourth(token: str, context: str) -> str:
        calls.append(context)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the operator's Ctrl-C, a killed process
        return real(token, context)

    monkeypatch.setattr(ctx.keyring, "decrypt_field", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        rehash_column(ctx, hashed_columns()[0], hash_copies(), 3, True, WHO)
    monkeypatch.undo()
    with ctx.db() as db:
        stored = [db.get_one(Beneficiary, bid).id_hash for bid in made["ids"]]
    current = [h == ctx.keyring.id_hash(n) for h, n in zip(stored, made["numbers"], strict=True)]
    assert current == [True] * 3 + [False] * 3  # the first batch committed, the second rolled back whole
    with ctx.db() as db:  # meanwhile everyone is found, either way
        assert [find_beneficiary(db, ctx, None, n).id for n in made["numbers"]] == made["ids"]
    assert rehash(ctx)["beneficiaries.id_hash"]["rehashed"] == 3  # the rerun does the rest only
    all_current(ctx, new, made)
    assert old != new


def test_rekey_under_a_mistaken_signing_key_changes_nothing(ctx: ServiceContext) -> None:
    made = hashed_deployment(ctx, people=2)
    with ctx.db() as db:
        before = [db.get_one(Beneficiary, bid).id_hash for bid in made["ids"]]
    rotate(ctx, keep_previous=False)  # a new key, and the old one not given: no stored hash is recognised
    counts = rehash(ctx)
    assert counts["beneficiaries.id_hash"]["unreadable_ids"] == [str(i) for i in made["ids"]]
    assert counts["beneficiaries.id_hash"]["rehashed"] == 0
    with ctx.db() as db:
        assert [db.get_one(Beneficiary, bid).id_hash for bid in made["ids"]] == before


def test_two_rows_for_one_person_are_reported_not_merged_by_the_rekey(ctx: ServiceContext) -> None:
    number = factories.id_number()
    with ctx.db() as db:
        old_row = factories.beneficiary(db, ctx.keyring, id_number=number)
    rotate(ctx)
    with ctx.db() as db:  # written around the service's look-ups (e.g. by hand in the database)
        factories.beneficiary(db, ctx.keyring, id_number=number)
    counts = rehash(ctx)["beneficiaries.id_hash"]
    assert counts["failed_ids"] == [str(old_row.id)] and counts["rehashed"] == 0


def run_cli(
    var_dir: Path, media: str, signing: str, previous: list[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PENSION_CERT_")},
        "PENSION_CERT_VAR_DIR": str(var_dir),
        "PENSION_CERT_MEDIA_KEY": media,
        "PENSION_CERT_SIGNING_KEY": signing,
        "PENSION_CERT_SIGNING_KEYS_PREVIOUS": json.dumps(previous),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "service.adapters.cli", "rekey", "--skip-media", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False, cwd=ROOT,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


def test_the_rekey_command_checks_then_rehashes_then_finds_nothing_left(tmp_path: Path) -> None:
    media = base64.b64encode(os.urandom(32)).decode()
    old, new = "old-signing-key-" + os.urandom(8).hex(), "new-signing-key-" + os.urandom(8).hex()
    ctx = ServiceContext(
        settings_from_flat(var_dir=tmp_path, media_key=media, signing_key=old), schema=service.schema.metadata
    )
    made = hashed_deployment(ctx, people=3)
    ctx.engine.dispose()
    code, report, err = run_cli(tmp_path, media, new, [old], "--check")
    assert code == 1 and report["hashes"]["beneficiaries.id_hash"]["rehashed"] == 3, err  # left: exit 1
    assert report["previous_signing_keys"] == 1
    code, report, err = run_cli(tmp_path, media, new, [old], "--batch", "2")
    assert code == 0 and report["ok"] and report["hashes"]["proxy_claims.id_hash"]["rehashed"] == 1, err
    code, report, err = run_cli(tmp_path, media, new, [], "--check")  # the previous key dropped: all current
    assert code == 0 and report["hashes"]["beneficiaries.id_hash"]["current"] == 3, err
    ctx = ServiceContext(
        settings_from_flat(var_dir=tmp_path, media_key=media, signing_key=new), schema=service.schema.metadata
    )
    all_current(ctx, new, made)
    code, _report, err = run_cli(tmp_path, media, new, [""])  # an empty previous key: the settings' exit
    assert code == 4 and "PENSION_CERT_SIGNING_KEYS_PREVIOUS" in err
