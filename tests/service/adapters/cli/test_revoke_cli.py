"""`pension-cert revoke`: an operator without the console revokes a certification found fraudulent, named by its
id, its session or the person and the day; the actor is given (`--actor`) and audited with the account that ran
the command. Exit 0 with the revocation as JSON; a refusal is one line with its code and exit 2, never a
traceback. Before: no such command (an operator without a console account could not revoke anything)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select

from service.adapters.cli.common import EXIT_INPUT, os_user
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, Certification, EvidenceHold
from service.certification.retention import purge_media
from service.certification.revocation import ACTION
from service.certification.revoke_request import REQUEST_ACTION
from service.features.install import install_features
from service.features.proxy.models import ProxyBinding
from service.infra.clock import local_today
from tests.service import factories
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.test_cli_contract import assert_clean
from tests.service.adapters.cli.test_cycle_run_cli import setup
from tests.service.adapters.http.test_revoke_api import proxy_certified
from tests.service.test_evidence_hold import _accepted, _past_retention
from tests.service.test_revocation import _certify

NOTE = "基金稽核发现:冒用已故人员照片认证"


def test_revoke_by_id_then_by_person_and_day_audited_with_the_actor(cli: CliRunner, tmp_path: Path) -> None:
    env, ctx = setup(tmp_path, overdue=0, current=1)
    today = local_today(ctx.settings)
    with ctx.db() as db:
        b = db.scalars(select(Beneficiary)).one()
        bid, external = b.id, b.external_id
    ctx = _with_features(ctx)
    first, _ = _certify(ctx, bid, today - dt.timedelta(days=30))
    second, _ = _certify(ctx, bid, today - dt.timedelta(days=4))
    by = ("--note", NOTE, "--actor", "张科长")
    proc = cli("revoke", "--certification", str(first), "--reason", "impersonation", *by, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["certification_id"] == first and out["external_id"] == external and out["replayed"] is False
    day = (today - dt.timedelta(days=4)).isoformat()
    proc = cli("revoke", "--person", external, "--date", day, "--reason", "wrong_accept", *by, env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["certification_id"] == second, proc.stderr
    with ctx.db() as db:
        cert = db.get(Certification, first)
        assert cert is not None and cert.revoked_by == "cli:张科长"
        core = db.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)).all()
        request = db.scalars(select(AuditEntry).where(AuditEntry.action == REQUEST_ACTION)).all()
    assert [e.actor for e in core] == ["cli:张科长", "cli:张科长"]
    assert [(e.detail["via"], e.detail["os_user"]) for e in request] == [("cli", os_user())] * 2
    ctx.engine.dispose()


def test_refusals_are_one_line_with_their_code(cli: CliRunner, tmp_path: Path) -> None:
    env, ctx = setup(tmp_path, overdue=0, current=1)
    today = local_today(ctx.settings)
    with ctx.db() as db:
        bid = db.scalars(select(Beneficiary.id)).one()
    ctx = _with_features(ctx)
    cid, _ = _certify(ctx, bid, today - dt.timedelta(days=3))
    base = ("revoke", "--reason", "other", "--note", NOTE, "--actor", "ops1")
    ok = cli(*base, "--certification", str(cid), env=env)
    assert ok.returncode == 0, ok.stderr
    cases = [
        ((*base, "--certification", str(cid)), "CERTIFICATION_REVOKED"),
        ((*base, "--certification", "987654"), "CERTIFICATION_UNKNOWN"),
        (
            ("revoke", "--reason", "fraud", "--note", NOTE, "--actor", "ops1", "--certification", str(cid)),
            "REVOKE_REASON",
        ),
        ((*base, "--person", "P-1"), "REVOKE_TARGET"),  # a person without a day names no certification
    ]
    for args, code in cases:
        proc = cli(*args, env=env)
        assert proc.returncode == EXIT_INPUT and proc.stdout == "", (args, proc.stderr)
        assert_clean(proc.stderr.strip())
        assert f"pension-cert: {code}:" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    no_actor = cli("revoke", "--reason", "other", "--note", NOTE, "--certification", str(cid), env=env)
    assert no_actor.returncode == EXIT_INPUT and "--actor" in no_actor.stderr
    ctx.engine.dispose()


def _with_features(ctx: ServiceContext) -> ServiceContext:
    """The same database with the features installed: accepting a session asks them (the test helpers accept)."""
    return install_features(ctx)


def test_an_id_no_row_can_hold_is_a_refusal_not_a_traceback(cli: CliRunner, tmp_path: Path) -> None:
    """Before: `--certification 99999999999999999999` reached the database (an integer column) and ended in a
    traceback, exit 1."""
    env, ctx = setup(tmp_path, overdue=0, current=1)
    base = ("revoke", "--reason", "other", "--note", NOTE, "--actor", "ops1", "--certification")
    for cid in ("99999999999999999999", str(2**31), "0", "-5"):
        proc = cli(*base, cid, env=env)
        assert proc.returncode == EXIT_INPUT and proc.stdout == "", (cid, proc.stderr)
        assert_clean(proc.stderr.strip())
        assert "pension-cert: REVOKE_TARGET:" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    ctx.engine.dispose()


def test_the_output_says_what_became_of_the_evidence(cli: CliRunner, tmp_path: Path) -> None:
    """Before: the JSON line did not say whether the session's card and video were held as evidence or deleted."""
    env, ctx = setup(tmp_path, overdue=0, current=1)
    ctx = _with_features(ctx)
    held_sid, held, _ = _accepted(ctx, 1)
    gone_sid, gone, _ = _accepted(ctx, _past_retention(ctx))
    purge_media(ctx)
    by = ("--note", NOTE, "--actor", "张科长")
    proc = cli("revoke", "--certification", str(held), "--reason", "impersonation", *by, env=env)
    assert proc.returncode == 0, proc.stderr
    with ctx.db() as db:
        hold = db.scalars(select(EvidenceHold).where(EvidenceHold.session_id == held_sid)).one()
    out = json.loads(proc.stdout)
    until = hold.ends_at.isoformat(timespec="seconds") + "Z"
    assert (out["evidence"], out["evidence_held_until"]) == ("held", until)
    proc = cli("revoke", "--session", gone_sid, "--reason", "wrong_accept", *by, env=env)
    out = json.loads(proc.stdout)
    assert (out["certification_id"], out["evidence"], out["evidence_held_until"]) == (gone, "purged", None)
    ctx.engine.dispose()


def test_a_relatives_proxy_certification_revoked_on_the_command_line_locks_their_binding(
    cli: CliRunner, tmp_path: Path
) -> None:
    """As through the API and the console: the console's RevokedHook runs for the command too (its context is built
    with the features installed), once; a second run is refused as revoked and locks nothing again."""
    env, ctx = setup(tmp_path, overdue=0, current=1)
    ctx = _with_features(ctx)
    session_id, binding_id = proxy_certified(ctx)
    by = ("--reason", "impersonation", "--note", NOTE, "--actor", "张科长")
    assert cli("revoke", "--session", session_id, *by, env=env).returncode == 0
    assert cli("revoke", "--session", session_id, *by, env=env).returncode == EXIT_INPUT
    assert factories.update(ctx, ProxyBinding, binding_id).locked
    with ctx.db() as db:
        locked = db.scalars(select(AuditEntry).where(AuditEntry.action == "proxy.binding.locked")).all()
    assert [e.actor for e in locked] == ["cli:张科长"]
    ctx.engine.dispose()
