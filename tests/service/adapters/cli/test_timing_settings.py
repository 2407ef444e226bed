"""Timing settings that contradict each other (docs/security.md Part AX): refused at start in one line, exit 4,
where the contradiction fails citizens; the others are documented (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.adapters.cli.common import EXIT_CONFIG
from service.infra.config import CertificationSettings
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.test_cli_config_mistakes import refused


def test_a_session_shorter_than_the_challenge_and_its_grace_is_refused() -> None:
    """An upload begun before the challenge ended is taken up to CHALLENGE_TTL_S past its end (Part AU): a session
    that ends sooner (SESSION_TTL_S under twice CHALLENGE_TTL_S) refuses it as SESSION_EXPIRED, and under
    CHALLENGE_TTL_S itself a citizen within the time the page shows is refused."""
    for session in (200, 300, 599):
        with pytest.raises(ValidationError, match="at least twice PENSION_CERT_CHALLENGE_TTL_S"):
            CertificationSettings(challenge_ttl_s=300, session_ttl_s=session)
    assert CertificationSettings(challenge_ttl_s=300, session_ttl_s=600).session_ttl_s == 600
    assert CertificationSettings(challenge_ttl_s=60, session_ttl_s=120).challenge_ttl_s == 60
    with pytest.raises(ValidationError):
        CertificationSettings(challenge_ttl_s=0)  # every video would arrive after its challenge


def test_the_start_check_names_the_session_ttl_in_one_line(cli: CliRunner, tmp_path: Path) -> None:
    env = {"PENSION_CERT_SESSION_TTL_S": "400", "PENSION_CERT_VAR_DIR": str(tmp_path)}
    proc = cli("console", "verify-audit", env=env, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    line = refused(proc.stderr, "PENSION_CERT_SESSION_TTL_S")
    assert "at least twice PENSION_CERT_CHALLENGE_TTL_S (300 s): set it to 600 or more" in line, line


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"PENSION_CERT_WORKER_HEARTBEAT_S": "20"}, "PENSION_CERT_WORKER_STALE_S", "at least twice"),
        ({"PENSION_CERT_TASK_SOFT_TIME_LIMIT_S": "300"}, "PENSION_CERT_TASK_TIME_LIMIT_S", "SOFT_TIME_LIMIT_S"),
    ],
)
def test_the_worker_timing_pairs_name_their_variable(
    cli: CliRunner, tmp_path: Path, env: dict[str, str], variable: str, says: str
) -> None:
    """Refused before as a line titled `PENSION_CERT_:` (the group's check named no setting): the line names one."""
    proc = cli("console", "verify-audit", env={**env, "PENSION_CERT_VAR_DIR": str(tmp_path)}, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "PENSION_CERT_:" not in proc.stderr, proc.stderr
    assert says in refused(proc.stderr, variable)
