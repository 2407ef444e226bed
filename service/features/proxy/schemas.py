"""Response models of the proxy API (/api/v1/proxy); extra keys allowed and unset ones left out, as in
service.adapters.http.schemas (the body is the route's dict as built)."""

from __future__ import annotations

from typing import Any

from service.adapters.http.schemas import ApiModel


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
    entries: list[dict[str, Any]]


class ElderHistory(ApiModel):
    external_id: str
    entries: list[dict[str, Any]]
