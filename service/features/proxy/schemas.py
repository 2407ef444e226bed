"""Response models of the proxy API (/api/v1/proxy): the routes build and return them. Extra keys allowed and
unset ones left out, as in service.adapters.http.schemas (the body has exactly the keys the route set)."""

from __future__ import annotations

from service.adapters.http.schemas import ApiModel
from service.features.proxy.history import HistoryEntry


class OperatorToken(ApiModel):
    operator_id: str
    token: str
    created: bool


class Consent(ApiModel):
    method: str | None
    at: str | None


class BindingView(ApiModel):
    binding_id: str
    status: str
    status_zh: str  # what the relative reads (bindings.STATUS_ZH)
    ended: bool  # no longer a binding (models.ENDED_STATUSES): nothing to certify, consent to or unbind
    relationship: str
    elder_name: str | None
    elder_id_masked: str | None
    elder_deceased: bool
    consent: Consent | None
    locked: bool
    flagged: bool
    failures: int
    created_at: str | None
    ended_at: str | None


class OperatorView(ApiModel):
    operator_id: str
    verified: bool
    name: str | None
    id_masked: str | None
    template_enrolled: bool
    bindings: list[BindingView]


class BindingHistory(ApiModel):
    binding_id: str
    entries: list[HistoryEntry]


class ElderHistory(ApiModel):
    external_id: str
    entries: list[HistoryEntry]
