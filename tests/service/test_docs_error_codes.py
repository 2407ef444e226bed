"""Every error code an /api/v1 route can answer is named in the integrators' docs (docs/service.md or docs/proxy.md):
an integrator builds its error handling from them. Before, docs/proxy.md promised a 429 `ATTEMPTS_EXCEEDED` the
server never sent (it answers 409 `PROXY_DECISION_PENDING`), and `PROXY_DECISION_PENDING`, `PROXY_RELATIONSHIP`,
`TOKEN_EXPIRED`, `SESSION_STATE` and `SESSION_EXPIRED`, answered every day, were in neither."""

from __future__ import annotations

import re
from pathlib import Path

from service.adapters.http.errors import HTTP_CODES, STATUS_BY_CODE, VALIDATION_CODES
from tests.service.adapters.http.test_error_status_map import raised_codes

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Where no /api/v1 route reaches: the staff console, the WeChat channel and its H5 pages, the CLI, the offline
# proxy rules of `pension-cert certify` (their codes are in docs/console.md, docs/wechat.md, docs/operations.md).
ELSEWHERE = (
    "service/features/console/",
    "service/features/wechat/",
    "service/adapters/cli/",
    "service/features/proxy/offline.py",
)
# Codes the shared domain raises for the console only, each with why no /api/v1 route answers it.
CONSOLE_ONLY = {
    "EVIDENCE_HOLD_ENDED": "evidence holds: console only (evidence_hold.py)",
    "EVIDENCE_HOLD_REASON": "evidence holds: console only",
    "EVIDENCE_NONE": "evidence holds: console only",
    "EVIDENCE_PURGED": "evidence holds: console only",
    "IDENTITY_CHANGE_SUPERSEDED": "a supervisor's identity-change finding: console only (identity_review.py)",
    "IDENTITY_CHANGE_UNKNOWN": "a supervisor's identity-change finding: console only",
    "IDENTITY_REVIEW_SELF": "a supervisor's identity-change finding: console only",
    "REVIEW_DECISION": "the API's review body takes accept or reject only (422 FIELD_INVALID before review.settle)",
}
# The HTTP layer's own answers (errors.py: by status, request validation, database and storage failures).
HTTP_LAYER = {*HTTP_CODES.values(), *VALIDATION_CODES.values(), "FIELD_INVALID", "INTERNAL_ERROR", "BUSY",
              "DB_UNAVAILABLE", "STORAGE", "STORAGE_FULL"}  # fmt: skip


def api_codes() -> set[str]:
    """The codes a domain error raised on an /api/v1 route's path may carry, and the HTTP layer's own."""
    raised = {code for where, _kind, code in raised_codes() if not where.startswith(ELSEWHERE)}
    return (raised - set(CONSOLE_ONLY)) | HTTP_LAYER


def test_every_code_an_api_route_answers_is_documented() -> None:
    text = "\n".join((DOCS / name).read_text(encoding="utf-8") for name in ("service.md", "proxy.md"))
    missing = sorted(code for code in api_codes() if not re.search(rf"`{code}`", text))
    assert missing == [], f"named in neither docs/service.md nor docs/proxy.md: {missing}"
    assert {"TOKEN_EXPIRED", "SESSION_STATE", "SESSION_EXPIRED", "PROXY_DECISION_PENDING"} <= api_codes()


def test_the_exceptions_are_still_raised_and_mapped() -> None:
    """An entry of CONSOLE_ONLY the code no longer raises would hide nothing: kept honest."""
    raised = {code for _where, _kind, code in raised_codes()}
    assert set(CONSOLE_ONLY) <= raised and set(STATUS_BY_CODE) >= HTTP_LAYER


def test_the_proxy_queue_guard_is_documented_with_the_status_it_answers() -> None:
    """docs/proxy.md said 429 `ATTEMPTS_EXCEEDED` for the upload queueing a proxy certification near the lock."""
    proxy = (DOCS / "proxy.md").read_text(encoding="utf-8")
    assert STATUS_BY_CODE["PROXY_DECISION_PENDING"] == 409
    assert "429 `ATTEMPTS_EXCEEDED`: retry once a decision is in" not in proxy
    assert proxy.count("409 `PROXY_DECISION_PENDING`") >= 2
