"""The deployment's proxy policy: `proxy_auth.ProxyPolicy` defaults, overridable by environment variables
PENSION_CERT_PROXY_<FIELD> (e.g. PENSION_CERT_PROXY_MAX_ACTIVE_BINDINGS_PER_RELATIVE=3)."""

from __future__ import annotations

from pydantic import TypeAdapter

from proxy_auth import ProxyPolicy
from service.infra.config import prefixed_environment

# Pydantic reads the fields from the dataclass itself, so a field added to ProxyPolicy is overridable without a
# second list of fields here, and parses each value to its field's type as it parses the settings ("3", "0.9",
# "false"); a value that is not one ("three") is refused instead of silently becoming a default.
_POLICY = TypeAdapter(ProxyPolicy)


def proxy_policy() -> ProxyPolicy:
    return _POLICY.validate_python(prefixed_environment("PENSION_CERT_PROXY_"))
