"""The one Settings object, grouped by concern (issue 20): the groups read the same flat environment variables as
before (an operator's deployment keeps working), a child process rebuilt from ``as_environment`` gets the same
settings, and a bad value is named by its variable even when it belongs to a group."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from service.adapters.cli.common import settings_problems
from service.infra.config import (
    CycleSettings,
    Settings,
    WeChatSettings,
    as_environment,
    setting_groups,
    settings_from_flat,
    settings_variables,
    variable_name,
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("PENSION_CERT_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_flat_environment_names_fill_the_groups(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PENSION_CERT_WECHAT_APP_ID", "wx-env")
    clean_env.setenv("PENSION_CERT_WECHAT_TEMPLATES", json.dumps({"result": "t-1"}))
    clean_env.setenv("PENSION_CERT_JOB_LEASE_S", "77")
    clean_env.setenv("PENSION_CERT_RATE_LIMIT_IP", "5/minute")
    clean_env.setenv("PENSION_CERT_H5_CARD_CHECK", "false")
    clean_env.setenv("PENSION_CERT_FAILURES_PER_DAY", "4")
    clean_env.setenv("PENSION_CERT_TIME_ZONE", "UTC")
    s = Settings()
    assert s.wechat.app_id == "wx-env" and s.wechat.templates == {"result": "t-1"}
    assert s.workers.job_lease_s == 77
    assert s.rate_limit.ip == "5/minute"
    assert s.h5.card_check is False
    assert s.certification.failures_per_day == 4
    assert s.time_zone == "UTC"
    assert s.cycle.validity_months == CycleSettings().validity_months == 12  # untouched: the default


def test_every_variable_is_named_once_and_prefixed() -> None:
    variables = settings_variables()
    assert all(name.startswith("PENSION_CERT_") for name in variables)
    assert variable_name(WeChatSettings, "app_id") == "PENSION_CERT_WECHAT_APP_ID"
    # Every field of every group has its own variable: no two fields share a name.
    fields = sum(len(g.model_fields) for g in setting_groups().values()) + len(Settings.model_fields)
    assert len(variables) == fields - len(setting_groups())


def test_as_environment_rebuilds_the_same_settings_in_a_child_process() -> None:
    original = settings_from_flat(
        env="test",
        job_lease_s=42,
        wechat_app_id="wx-child",
        wechat_templates={"result": "t-r", "overdue": "t-o"},
        rate_limit_ip="9/minute",
        challenge_actions=["blink", "nod"],
        api_keys=["k-1", "k-2"],
        time_zone="UTC",
    )
    code = "from service.infra.config import Settings; print(Settings().model_dump_json())"
    env = {"PATH": "/usr/bin:/bin", **as_environment(original)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == json.loads(original.model_dump_json())


def test_flat_names_are_checked() -> None:
    with pytest.raises(TypeError, match="wechat_appid"):
        settings_from_flat(wechat_appid="typo")
    s = settings_from_flat(wechat_app_id="wx", worker_mode="thread", retention_days=7)
    assert (s.wechat.app_id, s.workers.worker_mode, s.storage.retention_days) == ("wx", "thread", 7)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PENSION_CERT_WORKER_THREADS", "many"),
        ("PENSION_CERT_RATE_LIMIT_REDIS_TIMEOUT_S", "soon"),
        ("PENSION_CERT_WECHAT_TEMPLATES", "not json"),
        ("PENSION_CERT_TIME_ZONE", "Asia/Beijing"),
    ],
)
def test_a_bad_value_is_named_by_its_variable(clean_env: pytest.MonkeyPatch, variable: str, value: str) -> None:
    clean_env.setenv(variable, value)
    settings, problems = settings_problems()
    assert settings is None
    assert len(problems) == 1 and problems[0].startswith(variable), problems
