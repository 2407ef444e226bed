"""ID numbers as people type and print them (grouped by spaces, hyphens or dashes, `+` or `%20` in a URL, full-width
digits and X, the X look-alikes a phone offers) and in the request and session ids every JSON log line carries:
masked like a plain number."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.infra.observability.middleware import LABELLED_METHODS
from service.infra.security import mask_text
from tests.service import factories
from tests.service.adapters.http.ops import ops_app
from tests.service.conftest import API_KEY

NUMBER = "11010519491231002X"
MASKED = "1101**********002X"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("110105 19491231 002X", MASKED),  # address, birth date, sequence and check digit: the printed grouping
        ("1101 0519 4912 3100 2X", MASKED),
        ("110105-19491231-002X", MASKED),
        ("110105\u300019491231\u3000002X", MASKED),  # a full-width space
        # Dashes, and the X a phone's Chinese IME offers (Ⅹ, ×, χ): numbers pipelines.idnumber.normalise reads.
        ("110105\u201419491231\uff0d002X", MASKED),
        ("11010519491231002\u2169", "1101**********002\u2169"),
        ("110105 19491231 002\u00d7", "1101**********002\u00d7"),
        ("11010519491231002\u03c7", "1101**********002\u03c7"),
        ("?id_number=110105%2019491231%20002X&today=2026", f"?id_number={MASKED}&today=2026"),
        ("?id_number=110105+19491231+002x", "?id_number=1101**********002x"),
        # Full-width digits and X: a Chinese input method in full-width mode.
        (
            "\uff11\uff11\uff10\uff11\uff10\uff15\uff11\uff19\uff14\uff19\uff11\uff12\uff13\uff11\uff10\uff10\uff12\uff38",
            "\uff11\uff11\uff10\uff11**********\uff10\uff10\uff12\uff38",
        ),
    ],
)
def test_a_number_written_in_groups_or_full_width_is_masked(written: str, masked: str) -> None:
    assert mask_text(f"looked up {written}.") == f"looked up {masked}."


@pytest.mark.parametrize(
    "text",
    [
        "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",  # a list of numbers, not a number in groups
        "2026-12-05 16:00:47,123 took 12 ms",
        "id 12345678-1234-1234-1234-123456789012",
        "1234567890123456789",  # 19 digits: not an ID number (the OCR masking has its own rule)
        "abc11010519491231002X",  # inside a token
    ],
)
def test_other_numbers_are_left_as_they_are(text: str) -> None:
    assert mask_text(text) == text


def test_the_request_and_session_ids_of_a_json_log_line_never_show_a_number(
    tmp_path: Path, json_log: io.StringIO
) -> None:
    """The session id is the path's `{session_id}` and the request id the client's X-Request-ID, both as sent:
    an integrator that puts the citizen's number in either had it written in clear on every line of the
    request, next to a masked message."""
    number = factories.id_number()
    app = ops_app(tmp_path)

    @app.get("/_ops_test/{session_id}")
    def noisy(session_id: str) -> dict[str, bool]:
        logging.getLogger("tests.ops").warning("looked up")
        return {"ok": True}

    with TestClient(app) as client:
        client.headers["X-API-Key"] = API_KEY
        r = client.get(f"/_ops_test/{number}", headers={"X-Request-ID": number})
    assert r.status_code == 200
    assert r.headers["x-request-id"] != number  # not kept as the request's id either (echoed, it names a person)
    mine = [json.loads(line) for line in json_log.getvalue().splitlines() if '"tests.ops"' in line]
    assert len(mine) == 1
    assert mine[0]["session_id"] == mask_text(number) and mine[0]["request_id"] == r.headers["x-request-id"]
    assert number not in json_log.getvalue()


def test_extra_context_fields_are_masked_in_json_lines(json_log: io.StringIO) -> None:
    number = factories.id_number()
    logging.getLogger("tests.ops").warning("deciding", extra={"session_id": number, "request_id": number})
    out = [json.loads(line) for line in json_log.getvalue().splitlines() if '"tests.ops"' in line]
    assert out[0]["session_id"] == mask_text(number) == out[0]["request_id"]
    assert number not in json_log.getvalue()


def test_a_made_up_http_method_never_becomes_a_metric_label(tmp_path: Path) -> None:
    """The latency histogram was labelled with the request's method as sent. uvicorn's h11 parser takes any token
    as a method: `curl -X 370102195003140017 …` put that number in /metrics, and a new method per request a new
    time series (14 buckets each) for ever. Methods outside HTTP's own are labelled `other`."""
    number = factories.id_number()
    with TestClient(ops_app(tmp_path)) as client:
        client.headers["X-API-Key"] = API_KEY
        for method in (number, "BREW", "get"):
            assert client.request(method, "/api/v1/sessions").status_code == 405
        assert client.get("/metrics").status_code == 200  # this request's own line is written after it
        text = client.get("/metrics").text
    methods = {
        s.labels["method"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "pension_cert_http_request_duration_seconds_count"
    }
    assert number not in text and "BREW" not in text and "other" in methods
    assert methods <= LABELLED_METHODS | {"other"}
