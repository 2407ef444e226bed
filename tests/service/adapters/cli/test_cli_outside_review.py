"""Part Q of docs/security.md: an outside review of the operator CLI. Each test is one finding: what an operator
(or someone reading what the command left behind) could see or do, and what the command now does instead."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.decision.result import Outcome
from pipelines.decision.runner import CertificationReport
from pipelines.id_card.result import IdCardResult
from service.adapters.cli import main
from tests.service.adapters.cli.conftest import CliRunner, json_lines
from tests.service.certifiers import fixed_decision
from tests.service.media import LIVE_VIDEO

NUMBER = "420106194107214690"
# Any run of 14+ digits is most of an ID number (the same rule as service.infra.security.DIGIT_RUN).
LONG_DIGITS = re.compile(r"[0-9]{14,}")


class _MisreadCertifier:
    """What the pipeline reports for a card whose number line was read with a digit too many first: the OCR
    diagnostics carry the raw reads of the number."""

    def __init__(self, _pack: object = None, **_kw: Any) -> None:  # light_mode: the real certifier's
        pass

    def run(self, card: np.ndarray, video: Path, *_args: Any, **_kwargs: Any) -> CertificationReport:
        read = IdCardResult(side="portrait", name="张秀英", id_number=NUMBER, id_number_valid=True)
        read.checks = {"number_raw": NUMBER + "7", "number_reread": NUMBER[:17], "number_extended": NUMBER}
        return CertificationReport(fixed_decision(Outcome.ACCEPT), read, None, None, None, None, {})


def test_certify_full_masks_the_number_in_the_ocr_diagnostics_too(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`certify --full` (single and batch) printed `id_card.checks.number_raw` etc. in clear: the whole number,
    on stdout that operators pipe into files and tickets. Masked now as the stored result is (processing.redact)."""
    import pipelines.decision.runner as runner

    monkeypatch.setattr(runner, "Certifier", _MisreadCertifier)
    card = data_dir / "idcard/synthetic/card_000.jpg"
    video = data_dir / LIVE_VIDEO
    assert main(["certify", "--full", "--id-card", str(card), "--video", str(video)]) == 0
    single = capsys.readouterr().out
    (tmp_path / "batch.csv").write_text(f"id_card,video\n{card},{video}\n", encoding="utf-8")
    assert main(["certify", "--full", "--batch", str(tmp_path / "batch.csv")]) == 0
    batch = capsys.readouterr().out
    for out in (single, batch):
        (line,) = json_lines(out)
        assert line["decision"] == "accept"
        assert line["id_card"]["id_number"] == "4201**********4690"
        assert line["id_card"]["checks"]["number_raw"].startswith("4201*")
        assert not LONG_DIGITS.search(out), out


def test_an_account_made_from_the_cli_for_someone_else_must_change_its_password(cli: CliRunner, tmp_path: Path) -> None:
    """`console create-user` after the first account: the operator typed the password and still knows it, and the
    account never had to change it, so the operator could log in as that reviewer or supervisor, e.g. as the
    second person of a four-eyes decision. The console's users page forces a change at the first login; the CLI
    now does the same for every account but the first (the operator's own), and the audit entry names the OS
    account that ran it (the actor was only "cli")."""
    import pwd

    from sqlalchemy import create_engine, text

    env = {"PENSION_CERT_VAR_DIR": str(tmp_path), "PENSION_CERT_CONSOLE_PASSWORD": "a-long-password"}
    for name, role in (("admin", "admin"), ("wh1", "supervisor")):
        made = cli("console", "create-user", "--username", name, "--role", role, env=env, timeout=120)
        assert made.returncode == 0, made.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'pension_cert.db'}")
    try:
        with engine.connect() as conn:
            flags: dict[str, int] = dict(
                conn.execute(text("SELECT username, must_change_password FROM staff_users")).all()
            )
            details = [json.loads(d) for (d,) in conn.execute(text("SELECT detail FROM console_audit ORDER BY seq"))]
    finally:
        engine.dispose()
    assert flags == {"admin": 0, "wh1": 1}
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert [d.get("os_user") for d in details] == [me, me]


def test_id_card_read_masks_the_number_unless_asked(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`id-card read` printed the number in clear, and its raw OCR reads in `checks`: an operator checking a
    citizen's card photo left the whole number in the terminal's scroll-back and in any file the output went to.
    Masked now like `certify`; `--show-number` (OCR development on the synthetic cards) prints it in clear."""
    card = str(data_dir / "idcard/synthetic/card_002.jpg")
    assert main(["id-card", "read", card]) == 0
    out = capsys.readouterr().out
    (line,) = json_lines(out)
    assert line["id_number"] == "2101**********701X" and line["id_number_valid"] is True
    assert not LONG_DIGITS.search(out), out
    assert main(["id-card", "read", "--show-number", card]) == 0
    (line,) = json_lines(capsys.readouterr().out)
    assert line["id_number"] == "21010219430219701X"


def test_a_batch_stops_with_the_settings_exit_code_not_a_row_error_each(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`certify --batch` with rows naming an external_id and broken settings (or a database that is down): every
    row got the same `CONFIG_INVALID` line and the command exited 0, so a cron job saw a day's batch "succeed"
    with nothing certified. A problem of the machine, not of a row, now stops the batch with its own exit code
    (4 settings, 5 unavailable); the batch is read-only, so it is simply run again."""
    import pipelines.decision.runner as runner

    monkeypatch.setattr(runner, "Certifier", _MisreadCertifier)
    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PENSION_CERT_MEDIA_KEY", "not-base64-of-32-bytes")
    card = data_dir / "idcard/synthetic/card_000.jpg"
    video = data_dir / LIVE_VIDEO
    rows = "".join(f"{card},{video},EXT-{n}\n" for n in range(2))
    (tmp_path / "batch.csv").write_text("id_card,video,beneficiary_id\n" + rows, encoding="utf-8")
    assert main(["certify", "--batch", str(tmp_path / "batch.csv")]) == 4
    out, err = capsys.readouterr()
    assert json_lines(out) == [] and "PENSION_CERT_MEDIA_KEY" in err


def test_serve_refuses_the_public_development_keys_off_loopback(tmp_path: Path) -> None:
    """`HOST=0.0.0.0 bash scripts/start.sh` (README) or `serve --host 0.0.0.0` on the embedded defaults put the API
    on the network with keys printed in the repository: anyone on the LAN could import a roster with
    `dev-admin-api-key`, and a copied media file opens with the public media key. Off loopback, `serve` now
    refuses the development defaults (exit 4, naming each variable) before anything starts."""
    from service.adapters.cli.common import EXIT_CONFIG

    env = {**os.environ, "PENSION_CERT_VAR_DIR": str(tmp_path / "var")}
    for name in ("MEDIA_KEY", "SIGNING_KEY", "API_KEYS", "ADMIN_API_KEYS", "ENV"):
        env.pop(f"PENSION_CERT_{name}", None)
    cmd = [sys.executable, "-m", "service.adapters.cli", "serve", "--host", "0.0.0.0", "--port", "0"]
    server = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _out, err = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # the old code: listening on every interface with the public keys
        server.terminate()
        _out, err = server.communicate(timeout=60)
        pytest.fail(f"serve --host 0.0.0.0 started on the development keys: {err}")
    assert server.returncode == EXIT_CONFIG, err
    assert "DEV_SECRETS_OFF_LOOPBACK" in err and "Traceback" not in err
    for variable in ("MEDIA_KEY", "SIGNING_KEY", "API_KEYS", "ADMIN_API_KEYS"):
        assert f"PENSION_CERT_{variable}" in err


@pytest.mark.parametrize(
    ("address", "own_keys", "refused"),
    [("127.0.0.1", False, False), ("::1", False, False), ("0.0.0.0", True, False), ("192.0.2.7", False, True)],
)
def test_the_exposure_rule(address: str, own_keys: bool, refused: bool) -> None:
    import base64

    from service.adapters.cli.serve_cmd import dev_secrets_off_loopback
    from service.infra.config import settings_from_flat

    keys = {
        "media_key": base64.b64encode(os.urandom(32)).decode(),
        "signing_key": os.urandom(16).hex(),
        "api_keys": [os.urandom(16).hex()],
        "admin_api_keys": [os.urandom(16).hex()],
    }
    settings = settings_from_flat(**(keys if own_keys else {}))
    assert bool(dev_secrets_off_loopback(settings, address)) is refused


def test_the_exposure_rule_sees_a_reverse_proxy_and_the_admin_key_only_where_it_works() -> None:
    """Found by the whole-diff review: nginx on the same host forwarding the network to 127.0.0.1 (trusted proxies
    set, a public base URL elsewhere) passed with the public development keys; and a `test` deployment with its
    own keys was refused for the development admin key, which outside development opens nothing (deps.admin_keys)."""
    import base64

    from service.adapters.cli.serve_cmd import dev_secrets_off_loopback
    from service.infra.config import settings_from_flat

    assert dev_secrets_off_loopback(settings_from_flat(trusted_proxies=["127.0.0.1"]), "127.0.0.1")
    behind = settings_from_flat(public_base_url="https://rz.example.gov.cn")
    assert "PENSION_CERT_API_KEYS" in dev_secrets_off_loopback(behind, "127.0.0.1")
    assert not dev_secrets_off_loopback(settings_from_flat(public_base_url="http://localhost:8000"), "127.0.0.1")
    own = {
        "media_key": base64.b64encode(os.urandom(32)).decode(),
        "signing_key": os.urandom(16).hex(),
        "api_keys": [os.urandom(16).hex()],
    }
    assert dev_secrets_off_loopback(settings_from_flat(env="development", **own), "0.0.0.0") == [
        "PENSION_CERT_ADMIN_API_KEYS"
    ]
    assert dev_secrets_off_loopback(settings_from_flat(env="test", **own), "0.0.0.0") == []


def test_verify_audit_says_unavailable_when_the_store_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly `console verify-audit` with the bucket down (connection refused, timeouts) answered exit 1 and
    "an anchor does not open (forged or edited)": a tampering alarm for an outage, which teaches the night shift to
    ignore the real one. An unavailable store is now exit 5 (EXIT_UNAVAILABLE), and the chain check's verdict
    stays for when the anchors could be read."""
    from service.certification import audit_anchor
    from service.infra.storage import StorageUnavailableError

    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PENSION_CERT_CONSOLE_PASSWORD", "a-long-password")
    assert main(["console", "create-user", "--username", "admin", "--role", "admin"]) == 0
    capsys.readouterr()

    def down(_storage: object, newest: bool = False) -> list[object]:
        raise StorageUnavailableError("s3: connection refused")

    monkeypatch.setattr(audit_anchor, "read_anchors", down)
    assert main(["console", "verify-audit"]) == 5
    out, err = capsys.readouterr()
    assert out == "" and "STORAGE_UNAVAILABLE" in err and "forged" not in err


@pytest.mark.parametrize(
    "command",
    [
        ("console", "verify-audit"),
        ("worker", "--once"),
        ("console", "create-user", "--username", "a", "--role", "admin"),
    ],
)
def test_a_database_that_does_not_answer_is_exit_5_not_a_traceback(cli: CliRunner, command: tuple[str, ...]) -> None:
    """Every command that opens the database, with the database down, ended in SQLAlchemy's traceback and exit 1,
    which for the nightly `verify-audit` is the tampering alarm. It is one line, `DB_UNAVAILABLE`, and exit 5 (the
    README's 'a needed resource is unavailable')."""
    from tests.service.servers import free_port

    env = {
        "PENSION_CERT_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere",
        "PENSION_CERT_CONSOLE_PASSWORD": "a-long-password",
    }
    done = cli(*command, env=env, timeout=120)
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr and "DB_UNAVAILABLE" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
