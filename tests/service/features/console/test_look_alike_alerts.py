"""A face under two pension accounts (found by `calibrate-faces --from-enrolled`) on the supervisors' alerts
page: both people named, the similarity against the accept line, handled once and never raised again."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.features.console.look_alikes import KIND, raise_look_alike_alerts
from service.features.console.models import ConsoleAlert
from tests.service import factories
from tests.service.features.console.conftest import csrf_of, login


def test_a_face_under_two_accounts_is_shown_with_both_people_and_handled_once(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        first = factories.beneficiary(db, ctx.keyring, external_id="LA-1", name="孙玉兰")
        second = factories.beneficiary(db, ctx.keyring, external_id="LA-2", name="孙玉芬")
        pairs = [
            {"a": "LA-2", "b": "LA-1", "similarity": 0.8123},
            {"a": "LA-1", "b": "GONE-FROM-ROSTER", "similarity": 0.75},  # no such account: skipped
        ]
        raised = raise_look_alike_alerts(db, pairs, 0.647, "2026-12-05")
        assert [(a.beneficiary_id, a.detail["other_id"]) for a in raised] == [(first.id, second.id)]
        ids = (first.id, second.id, first.id_masked, second.id_masked)

    login(app_client, "sup1")
    page = app_client.get("/console/alerts")
    assert page.status_code == 200
    text = html.unescape(page.text)
    row = text[text.index(f'href="/console/beneficiaries/{ids[0]}"') :]
    row = row[: row.index("</tr>")]
    assert "孙玉兰" in row and "孙玉芬" in row and ids[2] in row and ids[3] in row
    assert f'/console/beneficiaries/{ids[1]}"' in row
    assert "同一张脸在两个账户" in text and "0.812" in row and "0.647" in row and "双胞胎" in row

    with ctx.db() as db:
        (alert,) = db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == KIND)).all()
        alert_id = alert.id
    csrf = csrf_of(page.text)
    note = "核实为双胞胎，两人均健在"  # what was done: required (Part BC)
    app_client.post(f"/console/alerts/{alert_id}/resolve", data={"csrf": csrf, "note": note}, follow_redirects=False)
    with ctx.db() as db:
        assert db.get(ConsoleAlert, alert_id).resolved  # type: ignore[union-attr]
        # Found again next month (the pair in the other order): checked already (twins, say), not raised again.
        again = raise_look_alike_alerts(db, [{"a": "LA-1", "b": "LA-2", "similarity": 0.81}], 0.647, "2027-01-05")
        assert again == []


def test_reviewers_do_not_see_the_alerts(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    login(app_client, "rev1")
    assert app_client.get("/console/alerts").status_code == 403
