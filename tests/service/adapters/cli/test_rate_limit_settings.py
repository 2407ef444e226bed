"""A rate-limit rule the limits cannot read (docs/security.md Part AS): refused when the settings are read, one
settings line naming the variable, exit 4. Before, `serve` announced it was listening, then the middleware, built on
the first request, raised: every request, /healthz and /readyz included, answered 500 with a traceback in the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.adapters.cli.common import EXIT_CONFIG
from service.infra.config import RATE_RULES as RULES
from service.infra.config import RateLimitSettings
from service.infra.ratelimit import parse_rate
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.test_cli_config_mistakes import refused


def test_the_rules_are_every_rate_setting_and_each_default_parses() -> None:
    texts = {name for name, f in RateLimitSettings.model_fields.items() if f.annotation is str} - {"redis_url"}
    assert texts == set(RULES)  # the validator's list (config.RATE_RULES) names every rule the settings have
    defaults = RateLimitSettings()
    for name in RULES:
        assert parse_rate(getattr(defaults, name)) is not None, name


@pytest.mark.parametrize("name", RULES)
def test_a_rule_the_limits_cannot_read_is_refused_by_the_settings(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RateLimitSettings(**{name: "6000/min"})  # type: ignore[arg-type]
    [error] = caught.value.errors()
    assert error["loc"] == (name,) and "N/minute" in error["msg"], error
    for good in ("", "5/10s", "1000/hours", " 30 / minute "):  # what the limits read: accepted as before
        assert getattr(RateLimitSettings(**{name: good}), name) == good  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PENSION_CERT_RATE_LIMIT_IP_ACCOUNTS", "6000/min"), ("PENSION_CERT_RATE_LIMIT_AUTH_FAILURES", "20 a minute")],
)
def test_serve_refuses_a_bad_rule_with_one_settings_line(
    cli: CliRunner, tmp_path: Path, variable: str, value: str
) -> None:
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), variable: value}
    proc = cli("serve", "--port", "0", env=env, timeout=30)
    assert proc.returncode == EXIT_CONFIG and "listening" not in proc.stdout + proc.stderr, proc.stderr
    line = refused(proc.stderr, variable)
    assert "N/minute" in line and repr(value) in line, line
