"""The deployment's proxy policy: `proxy_auth.ProxyPolicy` defaults, overridable by environment variables
PENSION_CERT_PROXY_<FIELD> (e.g. PENSION_CERT_PROXY_MAX_ACTIVE_BINDINGS_PER_RELATIVE=3)."""

from __future__ import annotations

import dataclasses
from typing import Any

from proxy_auth import ProxyPolicy
from service.infra.config import prefixed_environment


def proxy_policy() -> ProxyPolicy:
    # Any, not a TypedDict: the keys come from dataclasses.fields(ProxyPolicy), so a field added there is
    # overridable without a second list of fields here; each value is parsed to its default's type below.
    values: dict[str, Any] = {}
    overrides = prefixed_environment("PENSION_CERT_PROXY_")
    for f in dataclasses.fields(ProxyPolicy):
        raw = overrides.get(f.name)
        if raw is None:
            continue
        default = getattr(ProxyPolicy, f.name)
        if isinstance(default, bool):
            values[f.name] = raw.strip().lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            values[f.name] = int(raw)
        elif isinstance(default, float):
            values[f.name] = float(raw)
        else:
            values[f.name] = raw
    return ProxyPolicy(**values)
