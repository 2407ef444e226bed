"""The case page's one line of evidence on the screen-light challenge (docs/wechat.md, "The screen-light
challenge"): whether the face followed the colours the capture page showed, in Chinese, beside the actions; 未发出
for a session issued none. Read from the decision's liveness entry `light` (its `status`)."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from service.features.console.case_view import light_evidence
from tests.service import factories
from tests.service.features.console.conftest import login

SEQUENCE = {
    "colours": ["red", "green", "blue"],
    "rgb": [[255, 72, 72], [72, 235, 72], [72, 96, 255]],
    "step_ms": 800,
    "start_ms": 500,
}


def _case(ctx: ServiceContext, liveness: dict[str, Any] | None) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        result = factories.review_result(liveness=liveness) if liveness is not None else factories.review_result()
        s = factories.review_session(b.id, result=result)
        db.add(s)
        return s.id


def _light_line(client: TestClient, sid: str) -> str | None:
    page = html.unescape(client.get(f"/console/cases/{sid}").text)
    if 'id="light"' not in page:
        return None
    start = page.index('id="light"')
    return page[start : page.index("</p>", start)]


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("seen", "脸部随屏幕颜色变化"),
        ("not_seen", "未见变化"),
        ("flat", "脸与背景同样变化（疑似翻拍）"),
        ("too_short", "录像太短"),
    ],
)
def test_the_case_page_says_how_the_face_answered_the_screen_light(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], status: str, words: str
) -> None:
    light = {"sequence": SEQUENCE, "status": status, "correlation": 0.1, "mode": "observe"}  # LightResponse's form
    sid = _case(ctx, {"passed": True, "actions": [], "light": light})
    login(app_client, "rev1")
    line = _light_line(app_client, sid)
    assert line is not None and "屏幕光线" in line and words in line, line
    assert status not in line  # the code is not shown to the reviewer


def test_a_session_issued_no_sequence_reads_not_issued(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _case(ctx, {"passed": True, "actions": []})  # a decision from before, or LIGHT_CHALLENGE off
    login(app_client, "rev1")
    line = _light_line(app_client, sid)
    assert line is not None and "未发出" in line


def test_no_light_line_without_a_liveness_analysis(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    sid = _case(ctx, None)  # no liveness entry (undecodable media, a failed job): nothing to say about the light
    login(app_client, "rev1")
    assert _light_line(app_client, sid) is None


def test_light_evidence_of_odd_entries() -> None:
    assert light_evidence({"liveness": {"light": None}}) == "未发出"
    assert light_evidence({"liveness": {"light": {"status": "new_status"}}}) == "new_status"  # shown as recorded
    assert light_evidence({"liveness": None}) is None and light_evidence({}) is None
