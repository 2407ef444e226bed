"""Roster pages on real roster rows (the synthetic card labels of shared data): import with a row report
(CSV and XLSX), search by POST, the beneficiary page, marking a death and its alert."""

from __future__ import annotations

import datetime as dt
import html
import io
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from httpx import Response
from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs (as in service/certification/roster.py)
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.cycle import run_cycle
from service.certification.models import Beneficiary
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import roster_search
from service.features.console.models import ConsoleAlert
from service.features.proxy.models import ProxyBinding, ProxyOperator, ProxyOperatorIdentity
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import login
from tests.service.test_roster import HEADER, card_rows, to_csv


def import_file(client: TestClient, csrf: str, name: str, data: bytes) -> str:
    r: Response = client.post(
        "/console/roster/import", data={"csrf": csrf}, files={"file": (name, data, "application/octet-stream")}
    )
    return r.text


def beneficiary_by_ext(ctx: ServiceContext, ext: str) -> Beneficiary:
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == ext))
        assert b is not None
        return b


def test_import_reports_rejected_rows_then_search_and_view(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    rows = card_rows(data_dir, 4)
    bad_number = rows[3][1][:-1] + ("0" if rows[3][1][-1] != "0" else "1")  # checksum broken
    rows[3] = [rows[3][0], bad_number, rows[3][2], "", "enterprise_pension", "", ""]
    csrf = login(app_client, "sup1")
    page = import_file(app_client, csrf, "roster.csv", to_csv(rows))
    assert 'id="created">3<' in page and 'id="rejected">1<' in page
    assert rows[3][0] in page and bad_number not in page  # the rejected row's number is shown masked

    # Search by ID number: the form is a POST, the number never enters a URL.
    r = app_client.post("/console/roster/search", data={"q": rows[0][1], "csrf": csrf})
    assert r.status_code == 200 and rows[0][0] in r.text and rows[1][0] not in r.text
    assert rows[0][1] not in str(r.url)
    by_name = app_client.post("/console/roster/search", data={"q": rows[1][2], "csrf": csrf})
    assert rows[1][0] in by_name.text
    b = beneficiary_by_ext(ctx, rows[0][0])
    view = app_client.get(f"/console/beneficiaries/{b.id}")
    assert view.status_code == 200 and rows[0][2] in view.text and "正常" in view.text
    assert rows[0][1] not in view.text  # only the masked number is shown
    with ctx.db() as db:
        actions = [(e.action, e.target) for e in db.scalars(select(ConsoleAuditEntry).order_by(ConsoleAuditEntry.seq))]
    assert ("roster.search", "id_number") in actions and ("beneficiary.view", rows[0][0]) in actions
    assert not any(rows[0][1] in t for _, t in actions)


def test_xlsx_import_and_reviewer_cannot_import(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    for row in card_rows(data_dir, 2):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    rev = TestClient(app_client.app)
    csrf_rev = login(rev, "rev1")
    r = rev.post("/console/roster/import", data={"csrf": csrf_rev}, files={"file": ("r.xlsx", buf.getvalue(), "x")})
    assert r.status_code == 403
    csrf = login(app_client, "sup1")
    assert 'id="created">2<' in import_file(app_client, csrf, "r.xlsx", buf.getvalue())
    assert "导入失败" in import_file(app_client, csrf, "r.pdf", b"%PDF-1.4")


def test_mark_deceased_blocks_certification_and_alerts_on_later_certification(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    rows = card_rows(data_dir, 1)
    csrf = login(app_client, "sup1")
    import_file(app_client, csrf, "r.csv", to_csv(rows))
    b = beneficiary_by_ext(ctx, rows[0][0])
    # A counter certification ten days ago, then news that the pensioner died twenty days ago.
    ten_days_ago = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    r = app_client.post(
        f"/console/beneficiaries/{b.id}/certify",
        data={"csrf": csrf, "kind": "counter", "on_date": ten_days_ago, "evidence": "本人持证到柜台"},
    )
    assert "柜台认证" in r.text
    died = (dt.date.today() - dt.timedelta(days=20)).isoformat()
    rev = TestClient(app_client.app)
    csrf_rev = login(rev, "rev1")
    assert (
        rev.post(
            f"/console/beneficiaries/{b.id}/deceased", data={"csrf": csrf_rev, "date_of_death": died, "source": "x"}
        ).status_code
        == 403
    )
    r = app_client.post(
        f"/console/beneficiaries/{b.id}/deceased",
        data={"csrf": csrf, "date_of_death": died, "source": "民政部门火化信息"},
    )
    assert "已死亡" in r.text and "死亡日期后仍有认证通过" in r.text
    with ctx.db() as db:
        alerts = db.scalars(select(ConsoleAlert).where(ConsoleAlert.beneficiary_id == b.id)).all()
        # The counter certification's own check by a second supervisor (staff_certified, Part BN) aside.
        death = [(a.kind, a.detail["certified_on"]) for a in alerts if a.kind != "staff_certified"]
        assert death == [("certified_after_death", ten_days_ago)]
    assert "死亡后仍认证通过" in app_client.get("/console/alerts").text
    # No further certification for a deceased beneficiary.
    r = app_client.post(
        f"/console/beneficiaries/{b.id}/certify",
        data={"csrf": csrf, "kind": "home_visit", "on_date": dt.date.today().isoformat(), "evidence": "上门"},
        follow_redirects=False,
    )
    assert r.status_code == 409 and "该人员已登记死亡，不能认证" in r.text
    assert beneficiary_by_ext(ctx, rows[0][0]).status == "deceased"


def test_beneficiary_page_lists_proxy_bindings(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring, id_number=factories.id_number("370102"))
        relatives = [
            ProxyOperator(
                id=str(uuid.uuid4()),
                channel="wechat",
                channel_hash=f"h{i}",
                token_hash=f"t{i}",
                identity=ProxyOperatorIdentity(name=name, id_masked=f"3701**********000{i}", template_consent=False),
            )
            for i, name in enumerate(("王小明", "王小红"))
        ]
        db.add_all(relatives)
        db.flush()
        db.add_all(
            [
                ProxyBinding(
                    id=str(uuid.uuid4()),
                    operator_id=relatives[0].id,
                    beneficiary_id=elder.id,
                    relationship="child",
                    status="active",
                    consent_method="staff_approval",
                    consent_at=dt.datetime(2026, 3, 1, 9, 0),
                ),
                ProxyBinding(
                    id=str(uuid.uuid4()),
                    operator_id=relatives[1].id,
                    beneficiary_id=elder.id,
                    relationship="grandchild",
                    status="ended",
                    locked=True,
                    flagged=True,
                    failures=3,
                    ended_at=dt.datetime(2026, 4, 1, 9, 0),
                ),
            ]
        )
        elder_id = elder.id
    login(app_client, "rev1")
    page = app_client.get(f"/console/beneficiaries/{elder_id}")
    assert page.status_code == 200
    table = page.text.split('id="bindings"', 1)[1].split("</table>", 1)[0]
    assert "王小明" in table and "子女" in table and "有效" in table
    assert "王小红" in table and "孙子女" in table and "已解绑" in table
    assert "已锁定" in table and "代办人本人出镜" in table


def test_a_name_search_audits_every_person_shown_and_takes_percent_literally(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    surname = "欧阳" + uuid.uuid4().hex[:4]  # names no other test uses
    with ctx.db() as db:
        shown = [factories.beneficiary(db, ctx.keyring, name=f"{surname}{i:02d}").external_id for i in range(30)]
        factories.beneficiary(db, ctx.keyring, name=f"李{surname}")  # contains the text, does not start with it
    csrf = login(app_client, "rev1")
    page = app_client.post("/console/roster/search", data={"q": surname, "csrf": csrf}).text
    assert all(ext in page for ext in shown)
    wildcard = app_client.post("/console/roster/search", data={"q": f"%{surname}", "csrf": csrf}).text
    assert not any(ext in wildcard for ext in shown)  # "%" is a character of a name, not "anything"
    with ctx.db() as db:
        searches = db.scalars(
            select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "roster.search").order_by(ConsoleAuditEntry.seq)
        ).all()
    by_name, by_wildcard = searches[-2], searches[-1]
    assert sorted(by_name.detail["shown"]) == sorted(shown) and by_name.detail["n"] == 30
    assert by_wildcard.detail == {"n": 0, "shown": []}


def test_a_name_search_past_the_limit_says_more_exist_and_keeps_the_query(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """One more person than a search shows (LIMIT + 1 read): the page says the list is cut and asks for the full
    name or the ID number; exactly LIMIT people: no such sentence. The query stays in the box either way."""
    many, enough = "张" + uuid.uuid4().hex[:4], "王" + uuid.uuid4().hex[:4]  # names no other test uses
    with ctx.db() as db:
        for i in range(roster_search.LIMIT + 1):
            factories.beneficiary(db, ctx.keyring, name=f"{many}{i:03d}")
        for i in range(roster_search.LIMIT):
            factories.beneficiary(db, ctx.keyring, name=f"{enough}{i:03d}")
    csrf = login(app_client, "rev1")
    cut = app_client.post("/console/roster/search", data={"q": many, "csrf": csrf}).text
    assert cut.count('<tr><td><a href="/console/beneficiaries/') == roster_search.LIMIT
    assert 'id="more"' in cut and "请输入完整姓名，或改用身份证号" in cut
    assert f'id="q" required maxlength="64" value="{many}"' in cut
    whole = app_client.post("/console/roster/search", data={"q": enough, "csrf": csrf}).text
    assert whole.count('<tr><td><a href="/console/beneficiaries/') == roster_search.LIMIT
    assert 'id="more"' not in whole and f'value="{enough}"' in whole


def test_the_import_report_names_a_roster_suspension_and_a_lapsed_newcomer(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    """The records a roster `suspended` takes out of the cycle, and the new ones whose date had lapsed (given a
    short window), are named on 导入结果 in Chinese (docs/security.md, Part "moves")."""
    today = local_today(ctx.settings)
    rows = card_rows(data_dir, 2)
    rows[0][6] = (today + dt.timedelta(days=60)).isoformat()
    csrf = login(app_client, "sup1")
    assert 'id="created">1<' in import_file(app_client, csrf, "r.csv", to_csv(rows[:1]))
    rows[0][5] = "suspended"  # transferred out
    rows[1][6] = (today - dt.timedelta(days=400)).isoformat()  # transferred in with the previous bureau's date
    page = html.unescape(import_file(app_client, csrf, "r.csv", to_csv(rows)))
    stopped = page.split('id="suspension-not-applied">', 1)[1].split("</p>", 1)[0]
    lapsed = page.split('id="lapsed-on-import">', 1)[1].split("</p>", 1)[0]
    assert stopped.startswith("以下人员名册填写为暂停") and stopped.endswith(rows[0][0])
    assert lapsed.startswith("以下新增人员名册中的认证日期已过期") and lapsed.endswith(rows[1][0])


def test_the_import_report_names_a_suspension_kept_after_a_postponed_first_campaign(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    """A person never certified whom the daily run suspended on the first grace date, whose row then postpones the
    first campaign, stays suspended (a resume is a certification's decision) and is named on 导入结果 in Chinese
    (docs/security.md, Part "moves, second look")."""
    today = local_today(ctx.settings)
    header = [*HEADER[:5], "cycle_start"]
    row = [*card_rows(data_dir, 1)[0][:5], today.isoformat()]
    csrf = login(app_client, "sup1")
    assert 'id="created">1<' in import_file(app_client, csrf, "r.csv", to_csv([row], header))
    with ctx.db() as db:  # the grace date passed and the daily run suspended them
        b = db.scalars(select(Beneficiary).where(Beneficiary.external_id == row[0])).one()
        b.valid_until = today - dt.timedelta(days=1)
        db.flush()
        assert run_cycle(db, today, ctx.rules, cases=ctx.hooks.case_sources()) == [b.id]
    row[-1] = (today + dt.timedelta(days=30)).isoformat()  # the first campaign postponed
    page = html.unescape(import_file(app_client, csrf, "r.csv", to_csv([row], header)))
    kept = page.split('id="suspension-kept">', 1)[1].split("</p>", 1)[0]
    assert kept.startswith("以下人员从未完成认证") and kept.endswith(row[0])
    assert beneficiary_by_ext(ctx, row[0]).status == "suspended"
