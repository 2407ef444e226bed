"""Who may certify for whom: bindings of relatives to elderly beneficiaries, limits, consent, operator checks,
and the kinship rule (a face closer to a relative than to the claimed person goes to review).

Pure rules over plain records; the service persists bindings and calls these functions.
"""

from proxy_auth.bindings import (
    Binding,
    Carried,
    Consent,
    ConsentMethod,
    Relationship,
    carried_over,
    check_new_binding,
    check_relative_slot,
    needs_consent,
    record_failure,
    require_usable,
    reusable_consent,
)
from proxy_auth.decision import OperatorCheck, ProxyContext, apply_proxy_policy, check_operator
from proxy_auth.errors import ProxyAuthError
from proxy_auth.policy import ProxyPolicy
from proxy_auth.relatives import RelativeMatch, RelativePolicy, RelativeTemplate, apply_relative_rule

__all__ = [
    "Binding",
    "Carried",
    "Consent",
    "ConsentMethod",
    "OperatorCheck",
    "ProxyAuthError",
    "ProxyContext",
    "ProxyPolicy",
    "Relationship",
    "RelativeMatch",
    "RelativePolicy",
    "RelativeTemplate",
    "apply_proxy_policy",
    "apply_relative_rule",
    "carried_over",
    "check_new_binding",
    "check_operator",
    "check_relative_slot",
    "needs_consent",
    "record_failure",
    "require_usable",
    "reusable_consent",
]
