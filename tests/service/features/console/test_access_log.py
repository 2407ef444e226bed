"""Who looked at this person (docs/security.md, Part BE): the person page's "查阅记录" lists, from the staff audit
chain, every entry naming the person (their page, their cases, their alerts, a refused look-up), newest first, paged,
for supervisors in whose scope the person is; and a supervisor sees which staff opened unusually many people's
records today (PENSION_CERT_CONSOLE_VIEWS_ALERT_PER_DAY)."""

from __future__ import annotations

import ast
import datetime as dt
import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, update

from service.certification.context import ServiceContext
from service.certification.models import utcnow
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import access_log, audit_chain
from service.features.console.config import ConsoleConfig
from service.features.console.models import ConsoleAlert, StaffUser
from service.features.proxy.models import ProxyClaim, ProxySession
from tests.service import factories
from tests.service.features.console.conftest import login

ROW = re.compile(r'<tr class="access">(.*?)</tr>', re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
OLDER = re.compile(r'href="[^"]*/access\?before=(\d+)"')
SERVICE = Path(__file__).resolve().parents[4] / "service"


def rows_of(page: str) -> list[tuple[str, ...]]:
    """The table's rows as shown: (time, staff, action, …), tags dropped."""
    return [tuple(html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in CELL.findall(r)) for r in ROW.findall(page)]


def _person(ctx: ServiceContext, ext: str, region: str = "420106") -> tuple[int, str]:
    """A person (in 武昌区 unless told) with one certification session: (row id, session id)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, external_id=ext, region=region)
        s = factories.session_row(b.id)
        db.add(s)
        return b.id, s.id


def _sharing_a_mask(ctx: ServiceContext) -> tuple[int, str, int, str]:
    """Two people keyed by their ID numbers that share the first and last four digits (one mask): A's row id and
    number, B's."""
    a_num = factories.id_number(region="420106", seq=11)
    b_num = next(
        n
        for n in (factories.id_number("420111", dt.date(1950, 3, d), 11) for d in range(1, 29))
        if n[-4:] == a_num[-4:]
    )
    a, _ = _person(ctx, a_num)
    b, _ = _person(ctx, b_num, region="420111")
    return a, a_num, b, b_num


def _actions(ctx: ServiceContext, action: str) -> list[tuple[str, str]]:
    with ctx.db() as db:
        rows = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == action))
        return [(e.actor, e.target) for e in rows]


def test_the_access_log_lists_who_looked_at_the_person(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A pensioner (PIPL) or a supervisor investigating an insider asked "who looked at this person?": the chain held
    every view, but nothing answered by person. The page lists the entries naming them, and nobody else's."""
    bid, sid = _person(ctx, "EXT-A")
    other, other_sid = _person(ctx, "EXT-B")
    with ctx.db() as db:
        alert = ConsoleAlert(kind="certified_after_death", beneficiary_id=bid, detail={})
        db.add(alert)
        db.flush()
        audit_chain.record(db, "staff:rev2", "case.view", sid, {})
        audit_chain.record(db, "staff:sup2", "alert.resolve", str(alert.id), {"kind": alert.kind, "note": "核实"})
        # Other records whose target is spelt alike: a roster import's number, an account named like the person.
        audit_chain.record(db, "staff:sup2", "roster.import", str(alert.id), {})
        audit_chain.record(db, "staff:admin", "user.create", "EXT-A", {"role": "reviewer", "scope": []})
        audit_chain.record(db, "staff:rev2", "case.view", other_sid, {})
    rev = TestClient(app_client.app)
    login(rev, "rev1")
    person_page = rev.get(f"/console/beneficiaries/{bid}")
    assert person_page.status_code == 200 and 'id="access-log"' not in person_page.text  # the link: supervisors'
    assert rev.get(f"/console/beneficiaries/{other}").status_code == 200
    # A reviewer may not read who looked (the page names staff and what they did): refused, and that is audited.
    assert rev.get(f"/console/beneficiaries/{bid}/access").status_code == 403

    login(app_client, "sup1")
    assert (
        f'href="/console/beneficiaries/{bid}/access" id="access-log"'
        in app_client.get(f"/console/beneficiaries/{bid}").text
    )
    page = app_client.get(f"/console/beneficiaries/{bid}/access")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    rows = rows_of(page.text)
    assert [(r[1], r[2]) for r in rows] == [
        ("sup1-姓名（sup1）", "查看人员"),
        ("rev1-姓名（rev1）", "查看人员"),
        ("sup2-姓名（sup2）", "处理预警"),
        ("rev2-姓名（rev2）", "查看案件"),
    ]
    assert all(r[0].endswith("CST") for r in rows)  # the bureau's time, its zone named
    assert "列表页" in page.text  # what the page does not count is said on it
    # Reading who looked is itself a look at the person, and is recorded under them.
    assert ("staff:sup1", "EXT-A") in _actions(ctx, access_log.ACTION)
    again = rows_of(app_client.get(f"/console/beneficiaries/{bid}/access").text)
    assert again[0][1:3] == ("sup1-姓名（sup1）", "查阅记录")
    with ctx.db() as db:
        assert audit_chain.verify_chain(db).ok


def test_a_view_of_someone_sharing_the_mask_is_not_on_the_persons_log(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The auditor's review, F1: the external ids are ID numbers and two people's share their first and last four
    digits. Before: the chain named both `4201**********0011`, so rev1 opening only B's page was listed on A's
    查阅记录. Now entries name a person by the mask and row id (audit_chain.person_target), matched exactly; an entry
    from before (the bare mask) is still listed, marked as possibly another's."""
    a, a_num, b, b_num = _sharing_a_mask(ctx)
    login(app_client, "rev1")
    assert app_client.get(f"/console/beneficiaries/{b}").status_code == 200
    with ctx.db() as db:  # an entry written before targets carried the row id
        audit_chain.record(db, "staff:sup2", "beneficiary.view", a_num)
    login(app_client, "sup1")
    a_rows = rows_of(app_client.get(f"/console/beneficiaries/{a}/access").text)
    b_rows = rows_of(app_client.get(f"/console/beneficiaries/{b}/access").text)
    assert not any("rev1" in r[1] for r in a_rows), a_rows
    assert any("rev1" in r[1] and "同掩码" not in r[2] for r in b_rows), b_rows
    assert [r[2] for r in a_rows if "sup2" in r[1]] == ["查看人员 （旧记录只记了证件号码掩码，可能是同掩码的其他人）"]
    [(_, target)] = [t for t in _actions(ctx, "beneficiary.view") if t[0] == "staff:rev1"]
    assert target == f"{b_num[:4]}**********{b_num[-4:]}#{b}"


def test_the_relatives_face_on_the_elders_case_is_on_the_relatives_log(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The auditor's review, F3: spouses certify for each other, so the relative is often a pensioner too. The
    elder's proxy case shows the relative's face (a frame of their verification). Before: that view targeted the
    elder's session only and never reached the relative's 查阅记录. Now the view names the picture's source session
    and lists the person its claim names (`console_audit_shown`), as a list view's people are."""
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring, region="420106", name="王桂兰")
        number = factories.id_number(region="420106", birth=dt.date(1952, 4, 4))
        relative = factories.beneficiary(db, ctx.keyring, id_number=number, region="420106", name="李建国")
        op, binding = factories.relative_binding(db, elder.id)
        v = factories.session_row(None, channel="proxy", state="decided", decision="accept", decided_at=utcnow())
        v.video_key, v.id_card_key = "sessions/x/video", "sessions/x/card"
        db.add(v)
        db.flush()
        db.add(ProxySession(session_id=v.id, kind="verification", operator_id=op.id, binding_id=None))
        claim = ProxyClaim(session_id=v.id, operator_id=op.id, id_hash=ctx.keyring.id_hash(number), id_enc="-")
        claim.id_masked, claim.name, claim.region = number[:4] + "**", "李建国", "420106"
        db.add(claim)
        s = factories.review_session(elder.id, channel="proxy")
        db.add(s)
        db.flush()
        db.add(ProxySession(session_id=s.id, kind="certification", operator_id=op.id, binding_id=binding.id))
        sid, rid, vid = s.id, relative.id, v.id
    login(app_client, "rev1")
    assert "/img/operator/" in app_client.get(f"/console/cases/{sid}").text
    sup = TestClient(app_client.app)
    login(sup, "sup1")
    rows = rows_of(sup.get(f"/console/beneficiaries/{rid}/access").text)
    assert [(r[1], r[2]) for r in rows] == [("rev1-姓名（rev1）", "查看案件")], rows
    with ctx.db() as db:
        view = db.scalar(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "case.view"))
        assert view is not None and view.detail["operator_source"] == vid


def test_a_refused_look_up_of_the_person_is_listed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A scoped reviewer trying a person outside their district by URL left a `scope.denied` entry naming the row id
    (scope.py): it is part of who tried to look at this person."""
    bid, _ = _person(ctx, "EXT-GZ", region="440106")
    with ctx.db() as db:
        db.execute(update(StaffUser).where(StaffUser.username == "rev1").values(scope=["4201"]))
    rev = TestClient(app_client.app)
    login(rev, "rev1")
    assert rev.get(f"/console/beneficiaries/{bid}").status_code == 404
    login(app_client, "sup1")
    rows = rows_of(app_client.get(f"/console/beneficiaries/{bid}/access").text)
    assert [(r[1], r[2]) for r in rows] == [("rev1-姓名（rev1）", "查找辖区外人员被拒绝")]


def test_out_of_scope_the_access_log_reads_as_missing(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, _ = _person(ctx, "EXT-GZ2", region="440106")
    wuhan, _ = _person(ctx, "EXT-WH2", region="420106")
    with ctx.db() as db:
        db.execute(update(StaffUser).where(StaffUser.username == "sup1").values(scope=["4201"]))
    login(app_client, "sup1")
    assert app_client.get(f"/console/beneficiaries/{wuhan}/access").status_code == 200  # in scope: shown
    hidden = app_client.get(f"/console/beneficiaries/{bid}/access")
    missing = app_client.get("/console/beneficiaries/999999/access")
    assert hidden.status_code == missing.status_code == 404 and hidden.text == missing.text
    assert _actions(ctx, access_log.ACTION) == [("staff:sup1", "EXT-WH2")]  # the hidden one's was not read


def test_the_access_log_is_paged(app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]) -> None:
    bid, sid = _person(ctx, "EXT-MANY")
    with ctx.db() as db:
        for _ in range(access_log.PAGE + 5):
            audit_chain.record(db, "staff:rev2", "case.image", sid, {"kind": "frame", "index": 0})
    login(app_client, "sup1")
    first = app_client.get(f"/console/beneficiaries/{bid}/access")
    assert len(rows_of(first.text)) == access_log.PAGE
    older = OLDER.search(first.text)
    assert older is not None
    rest = rows_of(app_client.get(f"/console/beneficiaries/{bid}/access?before={older.group(1)}").text)
    assert len(rest) == 5


def test_unusual_volume_of_views_is_shown_to_supervisors(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A reviewer opening many people's records in a day (a neighbour's, a whole village's) left entries nobody
    counted. Staff over the day's limit of distinct people opened, or of searches, are listed."""
    people = [_person(ctx, f"EXT-V{i}") for i in range(3)]
    with ctx.db() as db:
        for _bid, sid in people:
            audit_chain.record(db, "staff:rev1", "case.view", sid, {})
            audit_chain.record(db, "staff:rev1", "case.view", sid, {})  # the same case twice: one person
        audit_chain.record(db, "staff:rev2", "case.view", people[0][1], {})
        for _ in range(3):
            audit_chain.record(db, "staff:rev2", "roster.search", "name", {"n": 0, "shown": []})
        audit_chain.record(db, "staff:sup2", "roster.search", "name", {"n": 0, "shown": []})
    app_client.app.state.console_config = ConsoleConfig(views_alert_per_day=2)  # type: ignore[attr-defined]
    login(app_client, "sup1")
    page = app_client.get("/console/access/volume")
    assert page.status_code == 200
    assert rows_of(page.text) == [
        ("rev1-姓名（rev1）", "3", "0", "0", "审计日志"),
        ("rev2-姓名（rev2）", "1", "3", "0", "审计日志"),
    ]
    assert ("staff:sup1", "-") in _actions(ctx, access_log.VOLUME_ACTION)
    # Yesterday's (the bureau's) entries are not today's.
    with ctx.db() as db:
        assert access_log.heavy_viewers(db, utcnow() + dt.timedelta(seconds=1), 2) == []

    rev = TestClient(app_client.app)
    login(rev, "rev1")
    assert rev.get("/console/access/volume").status_code == 403


def test_the_daily_line_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENSION_CERT_CONSOLE_VIEWS_ALERT_PER_DAY", "30")
    assert ConsoleConfig().views_alert_per_day == 30
    monkeypatch.setenv("PENSION_CERT_CONSOLE_VIEWS_ALERT_PER_DAY", "0")  # would list every member of staff
    with pytest.raises(ValidationError):
        ConsoleConfig()


def test_a_death_registration_is_on_that_persons_log_only(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The new-surfaces review, F3: 登记死亡 was audited under the bare mask of an ID-number external id, so it was
    listed on the 查阅记录 of everyone sharing that mask, and on the person's own as "possibly another's". Now under
    audit_chain.person_target, as every person-addressed entry."""
    a, _, b, b_num = _sharing_a_mask(ctx)
    csrf = login(app_client, "sup1")
    death = {"csrf": csrf, "date_of_death": "2025-01-01", "source": "民政部门"}
    assert app_client.post(f"/console/beneficiaries/{b}/deceased", data=death).status_code == 200
    assert _actions(ctx, "beneficiary.deceased") == [("staff:sup1", f"{b_num[:4]}**********{b_num[-4:]}#{b}")]
    a_rows = rows_of(app_client.get(f"/console/beneficiaries/{a}/access").text)
    b_rows = rows_of(app_client.get(f"/console/beneficiaries/{b}/access").text)
    assert not any("登记死亡" in r[2] for r in a_rows), a_rows
    assert [r[2] for r in b_rows if "登记死亡" in r[2]] == ["登记死亡"], b_rows


# The staff chain's writers: audit_chain.record(db, actor, action, target, …) and access_log.record_list (the same).
CHAIN_WRITERS = {"audit_chain.record", "access_log.record_list", "record_list"}


def _chain_writes() -> list[tuple[str, int, ast.expr]]:
    """Every call in service/ that writes a staff chain entry, with its target argument: (file, line, target)."""
    found = []
    for path in sorted(SERVICE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bare = _imports_record(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in CHAIN_WRITERS or (bare and name == "record"):
                keyword = [k.value for k in node.keywords if k.arg == "target"]
                target = node.args[3] if len(node.args) > 3 else keyword[0]
                found.append((str(path.relative_to(SERVICE.parent)), node.lineno, target))
    return found


def _imports_record(tree: ast.Module) -> bool:
    """Whether a module imports `record` itself from audit_chain (the CLI), so calls it bare."""
    return any(
        isinstance(n, ast.ImportFrom)
        and (n.module or "").endswith("audit_chain")
        and any(a.name == "record" for a in n.names)
        for n in ast.walk(tree)
    )


def test_every_person_addressed_chain_entry_names_the_person_by_person_target() -> None:
    """The new-surfaces review, F3: a chain entry written with a person's external id as its target (`b.external_id`)
    is stored under the bare mask when that id is an ID number, shared by thousands (access_log lists it on each of
    them). Every write whose target is a person's id goes through audit_chain.person_target."""
    writes = _chain_writes()
    assert len(writes) > 40  # the scan sees the writers (an import renamed would make it pass on nothing)
    by_person = [(f, line) for f, line, t in writes if "person_target(" in ast.unparse(t)]
    assert len(by_person) >= 10
    bare = [
        (f, line, ast.unparse(t))
        for f, line, t in writes
        if any(isinstance(n, ast.Attribute) and n.attr in ("external_id", "id_number") for n in ast.walk(t))
    ]
    assert bare == []
