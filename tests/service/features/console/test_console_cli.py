"""`pension-cert console create-user` and `verify-audit` in a real subprocess, on a fresh SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text


def run(var_dir: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PENSION_CERT_VAR_DIR": str(var_dir)}
    if password is not None:
        env["PENSION_CERT_CONSOLE_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "service.adapters.cli", "console", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_create_user_then_verify_and_detect_tampering(tmp_path: Path) -> None:
    ok = run(tmp_path, "create-user", "--username", "admin", "--role", "admin", password="a-long-password")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"id": 1, "username": "admin", "role": "admin", "scope": []}
    assert "a-long-password" not in ok.stdout + ok.stderr
    dup = run(tmp_path, "create-user", "--username", "admin", "--role", "reviewer", password="a-long-password")
    assert dup.returncode != 0 and "exists" in dup.stderr
    short = run(tmp_path, "create-user", "--username", "x", "--role", "reviewer", password="short")
    assert short.returncode != 0 and "10 characters" in short.stderr
    weak = run(tmp_path, "create-user", "--username", "x", "--role", "reviewer", password="1qaz2wsx3edc")
    assert weak.returncode != 0 and "too easy to guess" in weak.stderr and "1qaz2wsx3edc" not in weak.stderr

    check = run(tmp_path, "verify-audit")
    assert check.returncode == 0 and json.loads(check.stdout)["entries"] == 1
    engine = create_engine(f"sqlite:///{tmp_path / 'pension_cert.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE console_audit SET actor = 'cli:someone' WHERE seq = 1"))
    engine.dispose()
    broken = run(tmp_path, "verify-audit")
    assert broken.returncode == 1 and json.loads(broken.stdout)["first_bad_seq"] == 1


def test_verify_audit_checks_the_anchors_outside_the_database(tmp_path: Path) -> None:
    """A log rewritten whole (every hash recomputed) passes the chain but not the anchor the daily run wrote."""
    import service.schema
    from service.certification.audit_anchor import write_anchor
    from service.certification.context import ServiceContext
    from service.infra.config import Settings
    from tests.service.test_audit_anchor import rewrite_whole_chain

    made = run(tmp_path, "create-user", "--username", "admin", "--role", "admin", password="a-long-password")
    assert made.returncode == 0, made.stderr
    # The CLI's own (development) settings and media store.
    ctx = ServiceContext(Settings(var_dir=tmp_path), schema=service.schema.metadata)
    with ctx.db() as db:
        write_anchor(db, ctx.storage)
    check = run(tmp_path, "verify-audit")
    assert check.returncode == 0 and json.loads(check.stdout)["anchors"] == 1, check.stdout
    with ctx.db() as db:
        rewrite_whole_chain(db, 1, {"role": "reviewer"})
    ctx.engine.dispose()
    broken = run(tmp_path, "verify-audit")
    out = json.loads(broken.stdout)
    assert broken.returncode == 1 and out["first_bad_seq"] == 1 and "anchor" in out["problem"], out


STRONG = "river cabinet lantern 47"


def test_create_user_with_a_region_scope(tmp_path: Path) -> None:
    """--scope: checked division-code prefixes (a bad one refused in Chinese, nothing created), stored and audited."""
    reviewer = ("create-user", "--username", "wc", "--role", "reviewer", "--scope")
    bad = run(tmp_path, *reviewer, "42x", password=STRONG)
    assert bad.returncode != 0 and "地区范围无效" in bad.stderr
    ok = run(tmp_path, *reviewer, "420106,4201", password=STRONG)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"id": 1, "username": "wc", "role": "reviewer", "scope": ["4201", "420106"]}
    engine = create_engine(f"sqlite:///{tmp_path / 'pension_cert.db'}")
    with engine.connect() as conn:
        assert json.loads(conn.execute(text("SELECT scope FROM staff_users")).scalar_one()) == ["4201", "420106"]
        detail = conn.execute(text("SELECT detail FROM console_audit WHERE action = 'user.create'")).scalar_one()
    engine.dispose()
    assert json.loads(detail)["scope"] == ["4201", "420106"]
