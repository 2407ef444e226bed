"""The person's page as a supervisor reads the history: reason codes by their labels, a session without a decision
by its state (in progress, expired) instead of "—", and staff by their names instead of `staff:` actor strings
(labels.outcome_label, labels.reason_label, accounts.who_is)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from pipelines.reasons import ReasonCode
from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.features.console.labels import reason_label
from tests.service import factories
from tests.service.features.console.conftest import certified_at_counter, login, new_client, revoke_form


def _history(page: str) -> str:
    table = page[page.index('id="history"') :]
    return table[: table.index("</table>")]


def test_the_history_names_reasons_and_states_in_chinese(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    _sid, bid = case  # a real review case: SPOOF_SUSPECTED
    now = utcnow()
    with ctx.db() as db:
        db.add(factories.session_row(bid, state="open", expires_at=now + dt.timedelta(hours=1)))
        db.add(factories.session_row(bid, state="expired", created_at=now - dt.timedelta(days=3)))
    login(app_client, "sup1")
    table = _history(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert "进行中（未提交）" in table and "已过期（未完成）" in table and "待人工审核" in table
    assert reason_label(ReasonCode.SPOOF_SUSPECTED) in table and "SPOOF_SUSPECTED" not in table
    assert "<td>—</td><td></td>" not in table  # no row without a conclusion


def test_a_revocation_request_and_a_hold_name_the_supervisor(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """已申请撤销：staff:sup1 and 保全至 …（…，staff:sup1 于 …）: now the supervisor's display name and username."""
    sid, bid = case
    csrf = login(app_client, "sup1")
    hold = app_client.post(
        f"/console/beneficiaries/{bid}/sessions/{sid}/hold",
        data={"csrf": csrf, "reason": "investigation", "note": "群众举报：老人已去世"},
    )
    assert hold.status_code == 200 and "sup1-姓名（sup1）" in hold.text
    other, cid = certified_at_counter(ctx)
    page = app_client.post(f"/console/beneficiaries/{other}/certifications/{cid}/revoke", data=revoke_form(csrf))
    assert "已申请撤销：sup1-姓名（sup1）" in page.text
    sup2 = new_client(app_client)
    login(sup2, "sup2")
    for bid_ in (bid, other):  # as the second supervisor reads them
        text = re.sub(r"<[^>]+>", " ", sup2.get(f"/console/beneficiaries/{bid_}").text)
        assert "sup1-姓名（sup1）" in text and "staff:" not in text
