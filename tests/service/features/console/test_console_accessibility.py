"""The console's markup for reviewers who use a screen reader or the keyboard (an outside review of a working day):
a refused decision is announced and comes first on the case page, the form refers to it, the decision buttons
form one named group, the 证件识别 table has header cells, the login's error is read with its fields, and the
queue's per-row link and button name the person, not only "查看" / "领取" on every row."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from tests.service import factories
from tests.service.features.console.conftest import PASSWORD, csrf_of, login
from tests.service.features.console.test_case_held import _review_case


def test_a_refused_decision_is_announced_first_and_tied_to_the_form(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Before: the refusal stood 69 % down the page after the pictures and four tables, with no role, no focus and
    nothing referring to it; the title and heading were those of any case page; the radios read only 通过 / 不通过
    with no group, and the 证件识别 table had no header cell."""
    sid = _review_case(ctx, channel="self")
    csrf = login(app_client, "rev1")
    assert app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code == 200
    login(app_client, "rev1")  # another tab logs in again: the first page's form has expired
    form = {"csrf": csrf, "decision": "accept", "reason": "核对无误"}
    page = app_client.post(f"/console/cases/{sid}/decide", data=form).text
    assert re.search(r"<title>未保存 · ", page)
    box = re.search(r'id="refusal-box" role="alert">\s*<p class="error" id="refusal"([^>]*)>', page)
    assert box is not None and "autofocus" in box.group(1) and 'tabindex="-1"' in box.group(1)
    assert page.index('id="refusal-box"') < page.index("<h2>")  # before the scores, the pictures, the tables
    assert re.search(r'id="decide-form" aria-describedby="refusal"', page)
    assert re.search(r'<textarea name="reason" id="reason"[^>]* aria-describedby="refusal"', page)
    group = re.search(r'<fieldset id="decision-choice"><legend>审核决定</legend>(.*?)</fieldset>', page, re.S)
    assert group is not None and len(re.findall(r'type="radio" name="decision"', group.group(1))) == 3
    ocr = re.search(r'<table class="grid" id="ocr">(.*?)</table>', page, re.S)
    assert ocr is not None and '<th scope="col">识别结果</th>' in ocr.group(1)
    assert '<th scope="row">公民身份号码</th>' in ocr.group(1)
    plain = app_client.get(f"/console/cases/{sid}").text  # no refusal: nothing announced, the usual title
    assert 'role="alert"' not in plain and "<title>未保存" not in plain and 'aria-describedby="refusal"' not in plain


def test_the_login_error_is_read_with_the_fields(app_client: TestClient, staff_users: dict[str, int]) -> None:
    page = app_client.get("/console/login").text
    assert "aria-invalid" not in page
    form = {"username": "rev1", "password": PASSWORD + "x", "csrf": csrf_of(page)}
    failed = app_client.post("/console/login", data=form).text
    assert re.search(r'role="alert" id="login-error">用户名或密码错误', failed)
    for field in ("username", "password"):
        tag = re.search(rf'<input name="{field}"[^>]*>', failed)
        assert tag is not None and 'aria-describedby="login-error"' in tag.group(0)
        assert 'aria-invalid="true"' in tag.group(0)


def test_the_queues_row_actions_name_the_person(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="张秀英")
        s = factories.session_row(b.id, channel="self", state="decided", decision="review")
        s.reasons = ["SPOOF_SUSPECTED"]
        db.add(s)
        masked = b.id_masked
    login(app_client, "rev1")
    page = app_client.get("/console/queue").text
    assert f'aria-label="查看 张秀英 {masked} 的案件">查看</a>' in page
    assert f'aria-label="领取 张秀英 {masked} 的案件">领取</button>' in page
