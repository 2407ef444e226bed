"""Dashboard figures against a roster in known states and real review decisions; CSV and SVG exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from fastapi.testclient import TestClient

from pipelines.decision.runner import Certifier
from service.certification.context import ServiceContext
from service.features.proxy import operators
from service.features.proxy.sessions import open_verification
from tests.service import factories
from tests.service.features.console.conftest import Sample, login, make_case


def test_counts_by_region_backlog_and_exports(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    strict_certifier: Certifier,
    sample: Sample,
    data_dir: Path,
) -> None:
    today = dt.date.today()
    with ctx.db() as db:
        birth = dt.date(1948, 5, 1)
        for days in (200, 300):  # certified
            factories.beneficiary(
                db,
                ctx.keyring,
                id_number=factories.id_number("370102", birth=birth),
                valid_until=today + dt.timedelta(days=days),
            )
        factories.beneficiary(
            db,
            ctx.keyring,
            id_number=factories.id_number("370102", birth=birth),
            valid_until=today + dt.timedelta(days=5),
        )
        factories.beneficiary(
            db,
            ctx.keyring,
            id_number=factories.id_number("370203", birth=birth),
            valid_until=today - dt.timedelta(days=5),
        )
        factories.beneficiary(db, ctx.keyring, id_number=factories.id_number("370203", birth=birth), status="deceased")
        # A relative's verification (proxy certification) adds no beneficiary: never counted.
        op = operators.login(db, ctx, "wechat", "openid-relative", "test").operator
        open_verification(db, ctx, op, factories.id_number("370102", birth=birth), "李建国", consent=False)
    make_case(ctx, strict_certifier, sample)  # one real borderline case waits (region 6101, suspended)

    login(app_client, "rev1")
    page = app_client.get("/console/dashboard")
    assert page.status_code == 200 and 'id="backlog">1<' in page.text and "<svg" in page.text
    assert "山东省济南市" in page.text and "陕西省西安市" in page.text  # region names, not bare codes
    r = app_client.get("/console/dashboard.csv", params={"level": 4})
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = table[0]
    rows = {row[0]: dict(zip(header, row, strict=False)) for row in table[1:] if row and row[0] not in ("",)}
    assert rows["3701"]["region_name"] == "山东省济南市" and rows["6101"]["region_name"] == "陕西省西安市"
    assert rows["3701"]["certified"] == "2" and rows["3701"]["due_soon"] == "1" and rows["3702"]["overdue"] == "1"
    assert rows["3702"]["deceased"] == "1" and rows["6101"]["suspended"] == "1" and rows["total"]["total"] == "6"
    assert rows["review_backlog"]["region_name"] == "1"  # second column of the key/value block
    assert rows["machine_decisions"]["region_name"] == "1" and rows["auto_accept_rate"]["region_name"] == "0.0000"

    level2 = list(csv.reader(io.StringIO(app_client.get("/console/dashboard.csv", params={"level": 2}).text)))
    assert {row[0] for row in level2[1:4]} == {"37", "61", "total"}

    svg = app_client.get("/console/dashboard/regions.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "山东省济南市 已认证 2" in titles and "陕西省西安市 暂停发放 1" in titles  # names, not codes
    labels = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "山东省济南市" in labels and not any(label.isdigit() and len(label) == 4 for label in labels)
    assert app_client.get("/console/dashboard/nothing.svg").status_code == 404
