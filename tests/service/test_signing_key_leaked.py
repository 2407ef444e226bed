"""A signing key that leaked (docs/operations.md, "Rotating the signing key"; docs/security.md Part AP): listed in
PENSION_CERT_SIGNING_KEYS_LEAKED, it still finds what it hashed (the ID-number look-up hashes, the relatives'
account ids) and lets `pension-cert rekey` move those hashes to the current key, but it never verifies anything a
client presents: an H5 cookie, an assistance or 我的信息 form token, a certificate code. Before, the only way to
keep the stored hashes findable was SIGNING_KEYS_PREVIOUS, which also accepted cookies, tokens and codes the key
signed: whoever had it could log in as any WeChat user for as long as it stayed listed. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import service.schema
from service.certification.certificates import issue_code, issued_claims, verify_code
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.certification.models import Beneficiary, one_of_hashes
from service.certification.roster import import_roster
from service.certification.sessions import find_beneficiary
from service.features.proxy import operators
from service.features.proxy.models import ProxyOperator
from service.features.wechat.h5 import identity
from service.infra.config import DEV_SIGNING_KEY, SECRET_SETTINGS, settings_from_flat
from service.infra.security import Keyring
from tests.service import factories
from tests.service.adapters.http.test_certificate_check import VERIFY, certify, check
from tests.service.test_roster import TERMS, to_csv
from tests.service.test_signing_key_rotation import (
    ROOT,
    all_current,
    cookie_request,
    hashed_deployment,
    rehash,
    rotate,
)


def leak(ctx: ServiceContext) -> tuple[str, str]:
    """The deployment restarted with a new SIGNING_KEY, the old one (leaked) in SIGNING_KEYS_LEAKED only."""
    old, new = ctx.settings.security.signing_key, "new-signing-key-" + os.urandom(16).hex()
    ctx.keyring = Keyring(ctx.settings.media_key_bytes, new, leaked_signing_keys=[old])
    return old, new


# -- what a client presents: never verified by a leaked key ------------------------------------------------------


def test_an_h5_cookie_signed_with_a_leaked_key_is_refused(ctx: ServiceContext) -> None:
    cookie = identity.mint(ctx, "openid-1")  # or one the holder of the leaked key made for any openid
    rotate(ctx)
    assert identity.openid_from(ctx, cookie_request(cookie)) == "openid-1"  # a previous key: still accepted
    leak(ctx)
    assert identity.openid_from(ctx, cookie_request(cookie)) is None
    assert identity.openid_from(ctx, cookie_request(identity.mint(ctx, "openid-1"))) == "openid-1"


def test_an_assistance_form_token_of_a_leaked_key_is_refused(ctx: ServiceContext) -> None:
    from service.features.wechat.h5 import requests  # the package first (its routes import this module)

    token = requests._form_token(ctx, "openid-2")
    leak(ctx)
    assert not requests._form_token_ok(ctx, "openid-2", token)
    assert requests._form_token_ok(ctx, "openid-2", requests._form_token(ctx, "openid-2"))


def test_a_my_data_form_token_of_a_leaked_key_is_refused(ctx: ServiceContext) -> None:
    from service.features.wechat.h5 import my_data  # the package first, as above

    token = my_data.form_token(ctx, "openid-3")
    leak(ctx)
    request = cookie_request(identity.mint(ctx, "openid-3"))  # a good cookie: only the form token is the leak's
    refused = my_data._form_openid(ctx, request, token)
    assert not isinstance(refused, str) and refused.status_code == 403
    assert my_data._form_openid(ctx, request, my_data.form_token(ctx, "openid-3")) == "openid-3"


def test_a_certificate_code_forged_with_a_leaked_key_is_refused_and_a_genuine_one_still_checks(
    client: TestClient, ctx: ServiceContext
) -> None:
    """The public check compares a code with the one stored for its certification: a genuine paper issued under
    the leaked key stays genuine (not "forged"), while the leaked key's MAC alone proves nothing any more."""
    issued = certify(ctx)
    old_keyring = ctx.keyring
    leak(ctx)
    with pytest.raises(ServiceError, match="signature"):  # its MAC is no longer trusted
        verify_code(ctx.keyring, issued.code)
    assert check(client, issued.code)["valid"] is True  # the stored code: issued by us
    claims = issued_claims(issued.code)
    later = claims.valid_until.replace(year=claims.valid_until.year + 5)
    for forged in (
        issue_code(old_keyring, claims.certification_id, claims.id_masked, claims.certified_on, later),
        issue_code(old_keyring, 2**31 - 2, claims.id_masked, claims.certified_on, later),  # no such certification
    ):
        r = TestClient(client.app).get(VERIFY, params={"code": forged})
        assert r.status_code != 200 and "CERTIFICATE_INVALID" in r.text


# -- what is stored: still found, and moved by the rekey ------------------------------------------------------------


def test_a_leaked_key_still_finds_the_hashes_it_made(ctx: ServiceContext) -> None:
    number = factories.id_number()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=number, name="张秀英")
        bid, ext = b.id, b.external_id
        op_id = operators.login(db, ctx, "wechat", "openid-7", "test").operator.id
    leak(ctx)
    with ctx.db() as db:
        assert find_beneficiary(db, ctx, None, number).id == bid
        row = [ext, number, "张秀兰", "", "enterprise_pension", "", "2026-06-30"]
        report = import_roster(db, ctx.keyring, "roster.csv", to_csv([row]), "test", TERMS)
        assert (report.updated, report.identity_changed, report.rejected) == (1, [], []), report.to_dict()
        same = select(func.count()).where(one_of_hashes(Beneficiary.id_hash, ctx.keyring.id_hashes(number)))
        assert db.scalar(same) == 1
        again = operators.login(db, ctx, "wechat", "openid-7", "test")  # the relative's account, not a new one
        assert not again.created and again.operator.id == op_id
        assert again.operator.channel_hash == ctx.keyring.macs("proxy-operator:wechat:openid-7")[0]
        assert db.scalar(select(func.count()).select_from(ProxyOperator)) == 1


def test_rekey_moves_the_hashes_a_leaked_key_made(ctx: ServiceContext) -> None:
    made = hashed_deployment(ctx, people=3)
    _old, new = leak(ctx)
    assert rehash(ctx, write=False)["beneficiaries.id_hash"]["rehashed"] == 3  # --check counts them
    counts = rehash(ctx)
    assert counts["beneficiaries.id_hash"]["rehashed"] == 3 and counts["beneficiaries.id_hash"]["unreadable"] == 0
    assert all(c["rehashed"] == 0 and c["unreadable"] == 0 for c in rehash(ctx, write=False).values())
    all_current(ctx, new, made)


def test_the_rekey_command_takes_the_leaked_keys_setting(tmp_path: Path) -> None:
    media = base64.b64encode(os.urandom(32)).decode()
    old, new = "old-signing-key-" + os.urandom(8).hex(), "new-signing-key-" + os.urandom(8).hex()
    ctx = ServiceContext(
        settings_from_flat(var_dir=tmp_path, media_key=media, signing_key=old), schema=service.schema.metadata
    )
    made = hashed_deployment(ctx, people=2)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PENSION_CERT_")},
        "PENSION_CERT_VAR_DIR": str(tmp_path), "PENSION_CERT_MEDIA_KEY": media,
        "PENSION_CERT_SIGNING_KEY": new, "PENSION_CERT_SIGNING_KEYS_LEAKED": json.dumps([old]),
    }  # fmt: skip
    cmd = [sys.executable, "-m", "service.adapters.cli", "rekey", "--skip-media"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["hashes"]["beneficiaries.id_hash"]["rehashed"] == 2 and report["leaked_signing_keys"] == 1
    check_run = subprocess.run([*cmd, "--check"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert check_run.returncode == 0, check_run.stdout
    all_current(ctx, new, made)
    # The service built from the same settings: the leaked key finds, never verifies.
    served = ServiceContext(
        settings_from_flat(var_dir=tmp_path, media_key=media, signing_key=new, signing_keys_leaked=[old]),
        schema=None,
    )
    leaked = Keyring(ctx.settings.media_key_bytes, old)
    assert leaked.mac("x") in served.keyring.macs("x") and not served.keyring.verify_mac("x", leaked.mac("x"))


# -- the setting ----------------------------------------------------------------------------------------------------


def test_the_leaked_signing_keys_setting() -> None:
    assert "PENSION_CERT_SIGNING_KEYS_LEAKED" in SECRET_SETTINGS  # never shown in an error or the CLI
    current, old = "c" * 40, "o" * 40
    with pytest.raises(ValueError, match="entry 2 is empty"):
        settings_from_flat(signing_key=current, signing_keys_leaked=[old, " "])
    with pytest.raises(ValueError, match="entry 1 is PENSION_CERT_SIGNING_KEY itself"):
        settings_from_flat(signing_key=current, signing_keys_leaked=[current])
    with pytest.raises(ValueError, match="entry 1 is also in PENSION_CERT_SIGNING_KEYS_PREVIOUS"):
        settings_from_flat(signing_key=current, signing_keys_previous=[old], signing_keys_leaked=[old])
    # Never trusted, so never weak: a short leaked key (or the public one) only finds what it hashed.
    values = {
        "env": "production", "media_key": base64.b64encode(os.urandom(32)).decode(), "signing_key": current,
        "api_keys": ["k" * 40], "admin_api_keys": ["a" * 40],
    }  # fmt: skip
    prod = settings_from_flat(**values, signing_keys_leaked=["short", DEV_SIGNING_KEY])
    assert prod.dev_default_secrets() == [] and not any("SIGNING" in w for w in prod.production_weaknesses())


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"PENSION_CERT_SIGNING_KEYS_LEAKED": '["CURRENT"]'}, "PENSION_CERT_SIGNING_KEY itself"),
        (
            {"PENSION_CERT_SIGNING_KEYS_PREVIOUS": '["OLD"]', "PENSION_CERT_SIGNING_KEYS_LEAKED": '["OLD"]'},
            "also in PENSION_CERT_SIGNING_KEYS_PREVIOUS",
        ),
        ({"PENSION_CERT_SIGNING_KEYS_LEAKED": '["OLD", ""]'}, "entry 2 is empty"),
    ],
)
def test_a_mistaken_leaked_keys_setting_is_one_line_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], problem: str
) -> None:
    from service.adapters.cli.common import settings_problems

    current, old = "current-" + os.urandom(16).hex(), "old-" + os.urandom(16).hex()
    for k in [k for k in os.environ if k.startswith("PENSION_CERT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PENSION_CERT_SIGNING_KEY", current)
    for variable, value in extra.items():
        monkeypatch.setenv(variable, value.replace("CURRENT", current).replace("OLD", old))
    settings, lines = settings_problems()
    assert settings is None and len(lines) == 1, lines
    assert lines[0].startswith("PENSION_CERT_SIGNING_KEYS_LEAKED: ") and problem in lines[0], lines
    assert current[8:16] not in lines[0] and old[4:12] not in lines[0]
