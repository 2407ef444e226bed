"""What a reviewer reads on the queue and the case page, on cases decided by the real pipeline from real media:
the reason for review, scores in their bands, Chinese labels, region names, local times with their zone, the
relative's photo and score on proxy cases, "下一件", and readable audit details."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.decision.result import Decision, Outcome
from pipelines.decision.runner import Certifier
from pipelines.reasons import STAFF_LABELS_ZH, ReasonCode
from proxy_auth import OperatorCheck, ProxyContext, ProxyPolicy, apply_proxy_policy
from service.certification import processing, regions
from service.certification.catalog import message_zh
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, BenefitType, CertSession, Channel, SessionState, UploadKind
from service.certification.sessions import create_session, upload
from service.features.console.case_view import review_reasons, score_rows
from service.features.console.labels import roster_problem_zh
from service.features.proxy import operators
from service.features.proxy.models import ProxyOperator, ProxySession, ProxySessionKind
from service.features.proxy.sessions import open_verification
from tests.service import factories
from tests.service.features.console.conftest import Sample, csrf_of, login, make_case
from tests.service.media import card_for_video

OTHER_VIDEO = "spoof/videos/lestari15_real.mp4"  # another dev identity than the sample's: the relative
ZONE_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} CST")


def _process(ctx: ServiceContext, certifier: Certifier, sid: str) -> None:
    assert processing.claim(ctx, sid, "console-test") == sid
    assert processing.process(ctx, certifier, sid, "console-test")


def _upload(ctx: ServiceContext, sid: str, card: bytes, video: bytes) -> None:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", uuid.uuid4().hex)
        upload(db, ctx, s, UploadKind.VIDEO, video, "video/mp4", uuid.uuid4().hex, nonce=s.nonce)


def make_proxy_case(ctx: ServiceContext, certifier: Certifier, sample: Sample, data_dir: Path) -> tuple[str, str]:
    """A relative who verified themselves with their own real video (their photo and template come from it),
    then a proxy certification of the elder (the sample's person) through the real worker: (case, verification)."""
    card, fields = card_for_video(data_dir, OTHER_VIDEO, seed=11)  # another person than the sample card
    video = (data_dir / OTHER_VIDEO).read_bytes()
    with ctx.db() as db:
        op = operators.login(db, ctx, "wechat", f"openid-{uuid.uuid4().hex[:8]}", "test").operator
        verification = open_verification(db, ctx, op, fields.id_number, fields.name, consent=True).session.id
        op_id = op.id
    _upload(ctx, verification, card, video)
    _process(ctx, certifier, verification)
    live = certifier.liveness.check(data_dir / OTHER_VIDEO, None)
    pooled = np.mean([f.observation.embedding for f in live.best_frames if f.observation is not None], axis=0)
    with ctx.db() as db:
        s, relative = db.get(CertSession, verification), db.get(ProxyOperator, op_id)
        assert s is not None and relative is not None
        # Whatever the machine decided, staff accepted the relative's own verification (template enrolled).
        s.decision, s.state = "accept", SessionState.DECIDED
        model = str(certifier.matcher.recognizer.version)
        operators.store_template(ctx, relative, pooled / np.linalg.norm(pooled), model)
        elder = factories.beneficiary(db, ctx.keyring, id_number=sample.fields.id_number, name=sample.fields.name)
        sid = create_session(db, ctx, elder, Channel.PROXY, consent=False, actor="test").session.id
        db.add(ProxySession(session_id=sid, kind=ProxySessionKind.CERTIFICATION.value, operator_id=op_id))
    _upload(ctx, sid, sample.card, sample.video)
    _process(ctx, certifier, sid)
    return sid, verification


@pytest.fixture
def certifier(real_certifier: Certifier) -> Certifier:
    """The default policy (not the strict one of conftest): the live sample passes the machine, so only the
    first-proxy rule sends its proxy certification to a person."""
    return real_certifier


@pytest.fixture
def case(ctx: ServiceContext, strict_certifier: Certifier, sample: Sample) -> tuple[str, int]:
    return make_case(ctx, strict_certifier, sample)


def _row(page: str, sid: str) -> str:
    start = page.index(f'data-session="{sid}"')
    return page[start : page.index("</tr>", start)]


def test_queue_and_case_page_say_why_in_chinese_with_bands_regions_and_zone(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, bid = case
    with ctx.db() as db:
        s, b = db.get(CertSession, sid), db.get(Beneficiary, bid)
        assert s is not None and b is not None and s.result is not None and s.decided_at is not None
        assert s.reasons == ["SPOOF_SUSPECTED"]
        result, region, decided = s.result, b.region, s.decided_at
    login(app_client, "rev1")
    queue = app_client.get("/console/queue").text
    row = _row(queue, sid)
    assert ReasonCode.SPOOF_SUSPECTED.staff_zh in row
    full = regions.region_name(region)
    assert full is not None and full.startswith("陕西省") and full in row  # the sample card's own region
    local = (decided + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") + " CST"
    assert local in row

    page = html.unescape(app_client.get(f"/console/cases/{sid}").text)
    why = page[page.index('id="why"') : page.index("</p>", page.index('id="why"'))]
    assert ReasonCode.SPOOF_SUSPECTED.staff_zh in why
    assert full in page and local in page
    # The passive liveness score lies between the pass line and pass + margin: the review band, in colour.
    th, passive = result["thresholds"], result["scores"]["passive_liveness"]
    assert th["passive_pass"] <= passive < th["passive_pass"] + th["passive_review_margin"]
    score = page[page.index('id="score-passive_liveness"') :]
    score = score[: score.index("</tr>")]
    assert 'class="band-review"' in score and '<span class="band review">复核区</span>' in score
    assert f"{passive:.3f}" in score and f"{passive:.6f}" not in page
    assert f"通过 ≥ {th['passive_pass'] + th['passive_review_margin']:.3f}" in score
    # Action names in Chinese, none of the English codes left in the actions table.
    actions = page[page.index('id="actions"') : page.index("</table>", page.index('id="actions"'))]
    assert "向左转头" in actions and "turn_left" not in actions


def test_bands_follow_the_decisions_own_thresholds() -> None:
    result = {
        "scores": {
            "card_similarity": 0.52,
            "template_similarity": None,
            "passive_liveness": 0.2,
            "operator_match": 0.31,
        },
        "thresholds": {
            "face_accept": 0.45,
            "face_review": 0.30,
            "proxy_face_accept": 0.55,
            "passive_pass": 0.5,
            "passive_review_margin": 0.05,
            "operator_reject": 0.40,
            "operator_review": 0.30,
        },
    }
    bands = {r.key: r.band for r in score_rows(result)}
    # 0.52 passes a self session's 0.45 but not the stricter proxy line 0.55; a high likeness to the relative
    # is bad, so 0.31 (over the 0.30 review line) is in review.
    assert bands == {
        "card_similarity": "review",
        "template_similarity": None,
        "passive_liveness": "reject",
        "operator_match": "review",
    }


def test_proxy_case_shows_the_relatives_photo_and_score(
    app_client: TestClient,
    ctx: ServiceContext,
    certifier: Certifier,
    sample: Sample,
    data_dir: Path,
    staff_users: dict[str, int],
) -> None:
    sid, _ = make_proxy_case(ctx, certifier, sample, data_dir)
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "review" and s.result is not None and s.reasons == []
        result = s.result
    match, th = result["scores"]["operator_match"], result["thresholds"]
    assert match < th["operator_review"]  # the elder is not the relative
    login(app_client, "rev1")
    # Sent to a person by the first-proxy rule, which has no reason code: the queue says so in Chinese.
    assert "该老人首次代办认证，须人工审核" in _row(app_client.get("/console/queue").text, sid)
    page = html.unescape(app_client.get(f"/console/cases/{sid}").text)
    assert "该老人首次代办认证，须人工审核" in page
    row = page[page.index('id="score-operator_match"') :]
    row = row[: row.index("</tr>")]
    assert f"{match:.3f}" in row and "通过区" in row and f"拒绝 ≥ {th['operator_reject']:.3f}" in row
    # The relative's photo is a real face, and not the elder's.
    r = app_client.get(f"/console/cases/{sid}/img/operator/0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    faces = certifier.matcher.detect(img)
    assert len(faces) == 1
    elder = app_client.get(f"/console/cases/{sid}/img/card/0").content
    assert r.content != elder


def test_next_case_claims_the_oldest_open_case_and_skips_others_claims(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    second, _ = case
    with ctx.db() as db:  # an older case: a job that failed five hours ago
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, consent=False, actor="test").session
        s.state, s.queued_at = SessionState.FAILED, dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=5)
        first = s.id
    other = TestClient(app_client.app)
    csrf_other = login(other, "rev2")
    assert other.post(f"/console/cases/{first}/claim", data={"csrf": csrf_other}).status_code == 200
    csrf = login(app_client, "rev1")
    r = app_client.post("/console/cases/next", data={"csrf": csrf})
    assert r.status_code == 200 and str(r.url).endswith(f"/console/cases/{second}")  # first is rev2's
    assert 'id="decide-form"' in r.text and "Alt+A" in r.text and 'accesskey="a"' in r.text
    done = app_client.post(
        f"/console/cases/{second}/decide", data={"csrf": csrf, "decision": "accept", "reason": "同一人，动作完整"}
    )
    assert "已完成审核" in done.text and 'id="next-case"' in done.text
    # Nothing left that rev1 may take.
    r = app_client.post("/console/cases/next", data={"csrf": csrf_of(done.text)})
    assert "队列中暂无可处理的案件" in r.text
    assert app_client.post("/console/cases/next", data={"csrf": ""}).status_code == 403


def test_an_acceptance_the_core_refuses_reads_as_a_console_page(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    """The person was recorded deceased while the case waited: the acceptance is refused (409) with the reason on
    the console's own page, not the API's JSON; the case stays open for a rejection."""
    sid, bid = case
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        b.status = "deceased"
    csrf = login(app_client, "rev1")
    app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    r = app_client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": "accept", "reason": "核实"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html"), r.text[:200]
    assert message_zh("BENEFICIARY_DECEASED") in r.text
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decision == "review"


def test_audit_page_reads_in_chinese(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    sid, _ = case
    csrf = login(app_client, "sup1")
    app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    app_client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": "retry", "reason": "视频过暗"})
    page = app_client.get("/console/audit").text
    assert "视频过暗" in page and "\\u89c6" not in page
    assert "审核决定" in page and "领取案件" in page and ZONE_RE.search(page)


def test_time_zone_is_a_setting(
    monkeypatch: pytest.MonkeyPatch, ctx: ServiceContext, case: tuple[str, int], staff_users: dict[str, int]
) -> None:
    from service.adapters.http.app import create_app

    sid, _ = case
    monkeypatch.setenv("PENSION_CERT_CONSOLE_TIME_ZONE", "Europe/Berlin")
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.decided_at is not None
        s.decided_at = dt.datetime(2026, 1, 15, 12, 5)
    with TestClient(create_app(ctx=ctx)) as client:
        login(client, "rev1")
        assert "2026-01-15 13:05 CET" in client.get(f"/console/cases/{sid}").text


def test_every_roster_problem_and_code_has_a_chinese_label(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    # Every reason code has its own staff label next to the citizens' message (no fallback in use).
    assert set(STAFF_LABELS_ZH) == set(ReasonCode)
    good = factories.id_number()
    wrong_check = good[:-1] + ("1" if good[-1] != "1" else "2")
    rows = [
        "external_id,id_number,name,benefit_types,region,status,valid_until,household",
        f"R1,{good},王秀英,enterprise_pension,4201,active,2027-01-01,",
        f"R2,{wrong_check},,pension,42x,alive,01/02/2027,=A1",
        "R3,123,李四,resident_pension,4201,active,,",
        f"R1,{good},王秀英,enterprise_pension,4201,active,2027-01-01,",
    ]
    csrf = login(app_client, "sup1")
    files = {"file": ("roster.csv", ("\n".join(rows) + "\n").encode(), "text/csv")}
    page = app_client.post("/console/roster/import", data={"csrf": csrf}, files=files).text
    report = page[page.index('id="report"') :]
    problems = re.findall(r"<tr><td>\d+</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td></tr>", report)
    assert len(problems) == 3
    # English is left only where it is what the file must contain (the values of a column).
    file_values = [t.value for t in BenefitType] + ["active", "suspended", "deceased", "YYYY-MM-DD"]
    for text in problems:
        text = html.unescape(text)
        for v in file_values:
            text = text.replace(v, "")
        assert not re.search(r"[A-Za-z]{4,}", text), text
    assert "身份证号码校验位不正确" in report and "与本文件中前面的一行重复" in report
    assert roster_problem_zh("something new") == "该行数据不符合名册格式"
    # A refused file: the code's message and what is missing, no English sentence.
    bad = {"file": ("roster.csv", b"external_id,name\nR9,x\n", "text/csv")}
    page = html.unescape(app_client.post("/console/roster/import", data={"csrf": csrf}, files=bad).text)
    assert "导入失败：名册文件格式不正确（缺少列：id_number" in page and "ROSTER_FORMAT" not in page
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == "R1"))
        assert b is not None
        bid = b.id
    page = html.unescape(app_client.get(f"/console/beneficiaries/{bid}").text)
    assert "湖北省武汉市" in page and "企业职工基本养老保险" in page and "enterprise_pension" not in page


def test_region_names_come_from_the_division_table() -> None:
    assert regions.region_name("420106") == "湖北省武汉市武昌区"
    assert regions.region_name("4201") == "湖北省武汉市"
    assert regions.region_name("110101") == "北京市东城区"  # a municipality has no city level
    assert regions.region_name("429004") == "湖北省仙桃市"  # a county-level city directly under the province
    assert regions.region_name("420106001001") == "湖北省武汉市武昌区"  # a township code: its district
    assert regions.region_name("130521") == "河北省邢台市（130521）"  # retired 2020 (邢台县): never a wrong name
    assert regions.region_name("99") is None and regions.region_name("") is None
    assert regions.label("99") == "99"
    assert len(regions.table()) > 3000


def _proxy_result(operator: OperatorCheck | None, card_similarity: float) -> dict[str, Any]:
    """The result of a real proxy decision (proxy_auth) over an automatic accept of the ordinary stages."""
    machine = Decision(
        outcome=Outcome.ACCEPT,
        reasons=[],
        scores={"card_similarity": card_similarity},
        thresholds={"face_accept": 0.45, "face_review": 0.30},
        model_versions={},
    )
    return apply_proxy_policy(machine, ProxyContext(False, True, operator), ProxyPolicy()).to_dict()


def test_review_reasons_without_a_code() -> None:
    face_review = {"scores": {"card_similarity": 0.40}, "thresholds": {"face_accept": 0.45, "face_review": 0.30}}
    in_band = CertSession(state=SessionState.DECIDED, decision="review", reasons=[], result=face_review)
    assert review_reasons(in_band) == ["证件照比对相似度处于复核区"]
    # Each note the proxy policy writes when it sends a case to a person has a label.
    cases = {
        "缺少代办人人脸模板，无法排除代办人本人出镜": _proxy_result(None, 0.9),
        "该老人首次代办认证，须人工审核": _proxy_result(OperatorCheck(0.05, 0.5, 0.3), 0.9),
        "人脸相似度未达代办认证的更高通过线": _proxy_result(OperatorCheck(0.05, 0.5, 0.3), 0.47),
    }
    for label, result in cases.items():
        assert result["decision"] == "review" and result["reasons"] == [], result
        s = CertSession(state=SessionState.DECIDED, decision="review", reasons=[], result=result)
        assert label in review_reasons(s), result["notes"]
    machine_accept = CertSession(state=SessionState.DECIDED, decision="accept", reasons=[], result={})
    assert review_reasons(machine_accept) == []
    assert review_reasons(CertSession(state=SessionState.FAILED, reasons=[])) == ["处理失败（系统未能完成自动判定）"]
