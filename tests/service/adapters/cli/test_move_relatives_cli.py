"""`pension-cert move-relatives`: the relatives' accounts of a channel key replaced without
PENSION_CERT_API_KEYS_REPLACED (the old key lost) are moved to the key in force, each move audited with the actor;
an unknown client and the H5 pages' accounts are refused, exit 2, nothing moved. Before: no such command (the
accounts stayed refused to the integrator's new key, PROXY_ACCOUNT_ELSEWHERE)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from sqlalchemy import select

from service.adapters.cli.common import EXIT_INPUT, os_user
from service.certification.models import AuditEntry
from service.features.proxy import operators
from service.features.proxy.models import ProxyOperator
from service.infra.security import Keyring
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.sqlite_service import sqlite_service
from tests.service.adapters.cli.test_cli_contract import assert_clean

LOST = "api:0badc0de"  # the replaced key's name, as the audit entries show it


def test_a_lost_keys_accounts_move_to_the_key_in_force_and_nothing_else(cli: CliRunner, tmp_path: Path) -> None:
    env, ctx = sqlite_service(tmp_path, tmp_path / "relatives.db")
    in_force = ctx.keyring.key_names("api:", json.loads(env["PENSION_CERT_API_KEYS"])[0])[0]
    with ctx.db() as db:
        made = [operators.login(db, ctx, "phone", f"1380013800{i}", LOST).operator.id for i in range(2)]
        h5 = operators.login(db, ctx, "wechat", "openid-h5", operators.H5_CLIENT).operator.id
        db.commit()
    by = ("--actor", "张科长")

    for old, new in ((LOST, "api:00000000"), (operators.H5_CLIENT, in_force), ("api:11111111", in_force)):
        refused = cli("move-relatives", "--from", old, "--to", new, *by, env=env)
        assert refused.returncode == EXIT_INPUT and "PROXY_CLIENT_UNKNOWN" in refused.stderr, refused.stderr
        assert_clean(refused.stderr)
    done = cli("move-relatives", "--from", LOST, "--to", in_force, *by, env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"from": LOST, "to": in_force, "moved": 2}
    with ctx.db() as db:
        clients = {op.id: op.client for op in db.scalars(select(ProxyOperator))}
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action.like("proxy.operator.client%"))).all()
    assert clients == {made[0]: in_force, made[1]: in_force, h5: operators.H5_CLIENT}
    moved = sorted((e.target, e.actor, e.detail["from"], e.detail["to"]) for e in entries if e.target != in_force)
    assert moved == sorted((m, "cli:张科长", LOST, in_force) for m in made)
    (summary,) = [e for e in entries if e.action == operators.CLIENTS_MOVED]
    assert summary.detail == {"from": LOST, "to": in_force, "moved": 2, "via": "cli", "os_user": os_user()}
    ctx.engine.dispose()


def test_to_takes_the_keys_name_under_a_previous_signing_key_and_says_what_it_takes(
    cli: CliRunner, tmp_path: Path
) -> None:
    """What an operator reaches for: the key itself (they hold the new key), an operator key's name, the H5 pages,
    or the key's name from an audit entry written before the signing key's rotation. Before: every one was
    "<value> is not the name of a channel key in API_KEYS", the key itself repeated on stderr (the cron mail), and
    the key's older name refused though the docs send the operator to the audit entries for it. Now the older name
    is the key's (the accounts get its current name), and each refusal is one line saying what is taken, the key
    never repeated."""
    previous = secrets.token_hex(16)
    env, ctx = sqlite_service(tmp_path, tmp_path / "relatives.db")
    env["PENSION_CERT_SIGNING_KEYS_PREVIOUS"] = json.dumps([previous])
    key = json.loads(env["PENSION_CERT_API_KEYS"])[0]
    current = ctx.keyring.key_names("api:", key)[0]
    older = Keyring(secrets.token_bytes(32), previous).key_names("api:", key)[0]
    admin = ctx.keyring.key_names("admin:", json.loads(env["PENSION_CERT_ADMIN_API_KEYS"])[0])[0]
    with ctx.db() as db:
        made = operators.login(db, ctx, "phone", "13800138009", LOST).operator.id
        db.commit()
    by = ("--actor", "张科长")

    for to, says in ((key, "not the name"), (admin, "operator key"), (operators.H5_CLIENT, "never given")):
        refused = cli("move-relatives", "--from", LOST, "--to", to, *by, env=env)
        assert refused.returncode == EXIT_INPUT, refused.stderr
        [line] = refused.stderr.splitlines()
        assert line.startswith("pension-cert: PROXY_CLIENT_UNKNOWN: ") and says in line and "api:<8 hex>" in line
        assert key not in refused.stderr
        assert_clean(refused.stderr)
    done = cli("move-relatives", "--from", LOST, "--to", older, *by, env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"from": LOST, "to": current, "moved": 1}
    with ctx.db() as db:
        op = db.get(ProxyOperator, made)
        assert op is not None and op.client == current
    ctx.engine.dispose()
