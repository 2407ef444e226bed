"""A production start refuses every insecure setting, not only the public development defaults: short keys,
an open /metrics, a WeChat channel whose callback signature anyone could compute (issue #22)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.infra.config import MIN_SECRET_CHARS, InsecureSettingsError, Settings, settings_from_flat

# An official account's EncodingAESKey: base64 of 32 bytes without the trailing "=" (43 characters).
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "media_key": base64.b64encode(os.urandom(32)).decode(),
        "signing_key": os.urandom(24).hex(),
        "api_keys": [os.urandom(24).hex()],
        "admin_api_keys": [os.urandom(24).hex()],
        "metrics_token": os.urandom(24).hex(),
        "public_base_url": "https://h5.pension.example.gov.cn",
    }
    values.update(overrides)
    return settings_from_flat(**values)


def refused(settings: Settings, *names: str) -> None:
    with pytest.raises(InsecureSettingsError) as info:
        settings.validate_secrets()
    for name in names:
        assert name in str(info.value), info.value


def test_a_well_configured_production_starts() -> None:
    production().validate_secrets()
    production(metrics_enabled=False, metrics_token="").validate_secrets()  # no /metrics at all: no token needed
    production(
        wechat_app_id="wx123", wechat_app_secret="s" * 32, wechat_token="t" * 32, wechat_encoding_aes_key=AES_KEY
    ).validate_secrets()


def test_short_keys_are_refused_in_production() -> None:
    refused(production(signing_key="x"), "PENSION_CERT_SIGNING_KEY")
    refused(production(signing_key="k" * (MIN_SECRET_CHARS - 1)), "PENSION_CERT_SIGNING_KEY")
    refused(production(api_keys=["x"]), "PENSION_CERT_API_KEYS")
    refused(production(api_keys=[os.urandom(24).hex(), "short-key"]), "PENSION_CERT_API_KEYS")
    refused(production(admin_api_keys=["dev-admin-api-key"]), "PENSION_CERT_ADMIN_API_KEYS")
    refused(production(media_key=base64.b64encode(b"short").decode()), "PENSION_CERT_MEDIA_KEY")
    # Every finding is named at once, so one failed start shows everything to fix.
    refused(production(signing_key="x", api_keys=["y"], metrics_token=""), "SIGNING_KEY", "API_KEYS", "METRICS_TOKEN")


def test_open_metrics_are_refused_in_production() -> None:
    refused(production(metrics_token=""), "PENSION_CERT_METRICS_TOKEN")
    refused(production(metrics_token="secret"), "PENSION_CERT_METRICS_TOKEN")


def test_wechat_channel_without_a_real_token_is_refused_in_production() -> None:
    wechat = {"wechat_app_id": "wx123", "wechat_app_secret": "s" * 32, "wechat_encoding_aes_key": AES_KEY}
    refused(production(**wechat, wechat_token=""), "PENSION_CERT_WECHAT_TOKEN")
    refused(production(**wechat, wechat_token="token"), "PENSION_CERT_WECHAT_TOKEN")
    refused(production(wechat_app_id="wx123", wechat_token="t" * 32), "PENSION_CERT_WECHAT_APP_SECRET")
    production(wechat_token="").validate_secrets()  # channel off (no app id): no token needed


def test_wechat_plain_text_mode_is_refused_in_production_and_a_misshapen_key_everywhere() -> None:
    """Plain-text mode's signature does not cover the message body: production asks for safe mode's key. A key
    that is not base64 of 32 bytes is a settings error in every environment (every push would fail)."""
    wechat = {"wechat_app_id": "wx123", "wechat_app_secret": "s" * 32, "wechat_token": "t" * 32}
    refused(production(**wechat), "PENSION_CERT_WECHAT_ENCODING_AES_KEY", "安全模式")
    for bad in (AES_KEY[:-1], AES_KEY[:-1] + "!", "A" * 44):
        with pytest.raises(ValidationError, match="EncodingAESKey"):
            production(**wechat, wechat_encoding_aes_key=bad)


def test_a_public_address_certificates_cannot_point_to_is_refused_in_production() -> None:
    """Certificates print PUBLIC_BASE_URL (QR code, 核验网址): unset, plain http or this machine's address were
    accepted, and every paper printed pointed at a site a bank's phone cannot open or anyone on the way answers."""
    keys = production().security
    unset = settings_from_flat(
        env="production", media_key=keys.media_key, signing_key=keys.signing_key, api_keys=keys.api_keys,
        admin_api_keys=keys.admin_api_keys, metrics_token=os.urandom(24).hex(),
    )  # fmt: skip
    refused(unset, "PENSION_CERT_PUBLIC_BASE_URL is not set")
    assert unset.production_weaknesses() == [w for w in unset.production_weaknesses() if "PUBLIC_BASE_URL" in w]
    for url in ("http://cert.example.gov.cn", "http://127.0.0.1:8000", "https://127.0.0.1", "https://localhost:8443"):
        refused(production(public_base_url=url), "PENSION_CERT_PUBLIC_BASE_URL")
    refused(production(public_base_url="https://[::1]/"), "PENSION_CERT_PUBLIC_BASE_URL")
    refused(production(public_base_url="https://0.0.0.0:8000"), "PENSION_CERT_PUBLIC_BASE_URL")
    production(public_base_url="https://h5.example.gov.cn").validate_secrets()
    # Development and test keep the loopback default (scripts/start.sh, the test servers).
    key = base64.b64encode(os.urandom(32)).decode()
    settings_from_flat(env="test", media_key=key, signing_key="x", api_keys=["y"]).validate_secrets()
    Settings().validate_secrets()


def test_development_and_test_keep_working_with_short_values() -> None:
    """The development defaults still start `pension-cert serve` out of the box; the test settings use short
    API keys. Only production is strict."""
    settings_from_flat(env="development", signing_key="x", api_keys=["y"]).validate_secrets()
    key = base64.b64encode(os.urandom(32)).decode()
    settings_from_flat(
        env="test", media_key=key, signing_key="x", api_keys=["y"], wechat_app_id="wx"
    ).validate_secrets()


def test_the_start_up_path_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_settings() (what `pension-cert serve`, the workers and Celery call) raises for SIGNING_KEY=x."""
    from service.infra.config import get_settings

    for key, value in {
        "PENSION_CERT_ENV": "production",
        "PENSION_CERT_MEDIA_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PENSION_CERT_SIGNING_KEY": "x",
        "PENSION_CERT_API_KEYS": f'["{os.urandom(24).hex()}"]',
        "PENSION_CERT_ADMIN_API_KEYS": f'["{os.urandom(24).hex()}"]',
        "PENSION_CERT_METRICS_TOKEN": os.urandom(24).hex(),
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(InsecureSettingsError, match="PENSION_CERT_SIGNING_KEY"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_a_fixed_action_challenge_is_refused_in_production_and_logged_elsewhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused(production(challenge_actions=["blink", "turn_left"]), "PENSION_CERT_CHALLENGE_ACTIONS")
    with caplog.at_level("WARNING", logger="service.infra.config"):
        settings_from_flat(env="development", challenge_actions=["blink"]).validate_secrets()
    assert any("fixed action challenge" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("pack", ["insightface", "liveness_eval"])
def test_a_non_commercial_model_pack_is_refused_in_production(pack: str) -> None:
    """Research-only weights (InsightFace) and the evaluation-only anti-spoofing model have no place in a live
    service; development and tests may use them."""
    refused(production(model_pack=pack), "PENSION_CERT_MODEL_PACK", pack)
    assert settings_from_flat(env="development", model_pack=pack).non_commercial_pack() == pack
    production(model_pack="default").validate_secrets()


def test_the_pack_named_only_in_the_environment_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENSION_CERT_MODEL_PACK", "insightface")
    refused(production(), "PENSION_CERT_MODEL_PACK")


def test_a_production_console_without_its_own_host_name_is_warned_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without PENSION_CERT_CONSOLE_HOSTS the console shares the H5 pages' origin (docs/security.md, Part M): a
    production start says so, but still starts (deployments made before the setting keep running)."""
    import service.schema
    from service.adapters.http.app import create_app
    from service.certification.context import ServiceContext

    ctx = ServiceContext(production(var_dir=tmp_path), schema=service.schema.metadata)
    monkeypatch.delenv("PENSION_CERT_CONSOLE_HOSTS", raising=False)
    with caplog.at_level("WARNING", logger="service.features.console.install"):
        create_app(ctx=ctx)
    assert any("PENSION_CERT_CONSOLE_HOSTS is empty" in r.getMessage() for r in caplog.records), caplog.records
    caplog.clear()
    monkeypatch.setenv("PENSION_CERT_CONSOLE_HOSTS", "console.example.gov.cn")
    with caplog.at_level("WARNING", logger="service.features.console.install"):
        create_app(ctx=ctx)
    assert not any("CONSOLE_HOSTS" in r.getMessage() for r in caplog.records)
