"""PENSION_CERT_PROXY_<FIELD> overrides of the proxy policy: each parsed to its field's type, a bad value refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy_auth import ProxyPolicy
from service.features.proxy.policy import proxy_policy


def test_no_override_is_the_library_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENSION_CERT_PROXY_NOT_A_FIELD", "7")  # not a field of the policy: ignored
    assert proxy_policy() == ProxyPolicy()


def test_each_override_takes_its_fields_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENSION_CERT_PROXY_MAX_ACTIVE_BINDINGS_PER_RELATIVE", "3")
    monkeypatch.setenv("PENSION_CERT_PROXY_ACCEPT_MARGIN", "0.08")
    monkeypatch.setenv("PENSION_CERT_PROXY_OPERATOR_REJECT_FAR", "1e-3")
    monkeypatch.setenv("PENSION_CERT_PROXY_FIRST_PROXY_CERTIFICATION_TO_REVIEW", "false")
    policy = proxy_policy()
    assert policy.max_active_bindings_per_relative == 3 and type(policy.max_active_bindings_per_relative) is int
    assert policy.accept_margin == 0.08 and type(policy.accept_margin) is float
    assert policy.operator_reject_far == "1e-3"  # a string field stays a string, not 0.001
    assert policy.first_proxy_certification_to_review is False
    assert policy.max_lifetime_bindings_per_relative == ProxyPolicy().max_lifetime_bindings_per_relative


@pytest.mark.parametrize(
    "name,value", [("MAX_RELATIVES_PER_ELDER", "two"), ("FIRST_PROXY_CERTIFICATION_TO_REVIEW", "maybe")]
)
def test_a_value_that_is_not_of_the_fields_type_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # Before, a bad boolean silently read as False (no review of a first proxy certification).
    monkeypatch.setenv(f"PENSION_CERT_PROXY_{name}", value)
    with pytest.raises(ValidationError):
        proxy_policy()
