"""Follow-ups of the insider review (docs/security.md, Part BG): a relative's session whose face only borderline
matches takes two people to accept. Real cases through the upload and worker path; the proxy decision over the
stored scores made by the project's own proxy policy (proxy_auth.decision.apply_proxy_policy)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from pipelines.decision.result import Decision, Outcome
from pipelines.reasons import ReasonCode
from proxy_auth.decision import NOTE_BELOW_PROXY_LINE, OperatorCheck, ProxyContext, apply_proxy_policy
from proxy_auth.policy import ProxyPolicy
from service.certification import proxy_face
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, Channel, SessionState, utcnow
from service.certification.proxy_face import face_below_accept
from service.certification.review import accept_needs_second
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console import access_log, audit_chain
from service.features.console.config import ConsoleConfig
from service.features.proxy import operators
from service.features.proxy.sessions import open_verification
from tests.service import factories
from tests.service.conftest import ADMIN
from tests.service.features.console.conftest import Sample, failed_case, login


def _as_proxy_case(
    ctx: ServiceContext, sid: str, face: str, first: bool, reasons: list[ReasonCode] | None = None
) -> dict[str, Any]:
    """Make the real case `sid` a relative's session whose decision the proxy policy made over the case's own recorded
    thresholds, its card similarity placed in the face's review band ("review"), between the accept line and the
    stricter proxy line ("proxy_band") or above the proxy line ("accept"); `reasons`: the machine's other doubts."""
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None and s.result is not None
        th = dict(s.result["thresholds"])
        accept, review = float(th["face_accept"]), float(th["face_review"])
        margin = ProxyPolicy().accept_margin
        similarity = {"review": (accept + review) / 2, "proxy_band": accept + margin / 2}.get(
            face, accept + margin + 0.01
        )
        clear = face != "review" and not reasons
        machine = Decision(
            outcome=Outcome.ACCEPT if clear else Outcome.REVIEW,
            reasons=list(reasons or []),
            scores={**s.result["scores"], "card_similarity": similarity, "passive_liveness": 0.99},
            thresholds=th,
            model_versions={},
            references=["card"] if face != "review" else [],
        )
        proxy = apply_proxy_policy(machine, ProxyContext(False, first, OperatorCheck(0.05, 0.5, 0.3)), ProxyPolicy())
        result = proxy.to_dict()
        assert result["decision"] == "review" and result["reasons"] == [str(r) for r in reasons or []], result
        s.channel, s.reasons, s.result = "proxy", list(result["reasons"]), {**s.result, **result}
        return result


def _proxy_result(card: float | None, template: float | None, reasons: list[ReasonCode], first: bool) -> dict[str, Any]:
    """The stored result of a relative's session: the pipeline's face rule (pipelines.decision.rules._face: the
    template first, else the card) over these scores at the lines 0.5 (accept) and 0.3 (review), then the real proxy
    policy (its line: 0.5 plus the policy's margin, over the best of card and template)."""
    th = {"face_accept": 0.5, "face_review": 0.3}
    trusted = template if template is not None else card
    face_ok = trusted is not None and trusted >= 0.5
    outcome = Outcome.ACCEPT if face_ok and not reasons else Outcome.REVIEW
    scores = {"card_similarity": card, "template_similarity": template, "passive_liveness": 0.99}
    machine = Decision(outcome, list(reasons), scores, th, {}, references=["card"] if face_ok else [])
    context = ProxyContext(False, first, OperatorCheck(0.05, 0.5, 0.3))
    return apply_proxy_policy(machine, context, ProxyPolicy()).to_dict()


def _second_for(ctx: ServiceContext, result: dict[str, Any] | None, state: str = "decided") -> list[str]:
    """`accept_needs_second` of a relative's review case whose stored result is `result`."""
    reasons = list((result or {}).get("reasons") or [])
    s = factories.session_row(None, channel="proxy", state=state, decision="review", reasons=reasons, result=result)
    with ctx.db() as db:
        return accept_needs_second(db, s)


def _accept(client: TestClient, sid: str, csrf: str) -> str:
    assert client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code in (200, 303)
    r = client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": "accept", "reason": "核对无误"})
    return str(r.text)


def test_a_relatives_session_whose_face_only_borderline_matches_takes_two_to_accept(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """A relative presenting a dead parent's face that only borderline-matches (the face score in the review band,
    no reason code, no note) was accepted on one reviewer's word."""
    sid, _bid = case
    result = _as_proxy_case(ctx, sid, "review", first=False)
    assert result["notes"] == [] and face_below_accept(result)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page and "人脸相似度处于复核区" in page[page.index('id="four-eyes"') :]
    assert "等待主管复核" in _accept(app_client, sid, csrf)
    assert factories.update(ctx, CertSession, sid).decision == "review"
    r = app_client.post(f"/api/v1/sessions/{sid}/review", json={"decision": "accept", "reviewer": "x"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CASE_HELD"


def test_a_relatives_first_session_with_a_clear_face_match_is_still_one_reviewers(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """Guard: a first proxy certification whose face clears the proxy line goes to staff by policy only: one reviewer
    settles it."""
    sid, _bid = case
    result = _as_proxy_case(ctx, sid, "accept", first=True)
    assert not face_below_accept(result)
    assert "已完成审核" in _accept(app_client, sid, login(app_client, "rev1"))
    assert factories.update(ctx, CertSession, sid).decision == "accept"


def test_a_relatives_face_in_the_proxy_band_takes_two_when_another_doubt_sent_it_to_staff(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """A face between the accept line and the stricter proxy line is noted (and takes two) only when the decision was
    still an accept: with a low-quality frame also sending the case to staff there was no note and no band, and one
    reviewer accepted it."""
    sid, _bid = case
    result = _as_proxy_case(ctx, sid, "proxy_band", first=False, reasons=[ReasonCode.FACE_LOW_QUALITY])
    assert result["notes"] == [] and not face_below_accept(result)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page and "人脸相似度未达代办认证的更高通过线" in page[page.index('id="four-eyes"') :]
    assert "等待主管复核" in _accept(app_client, sid, csrf)
    r = app_client.post(f"/api/v1/sessions/{sid}/review", json={"decision": "accept", "reviewer": "x"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CASE_HELD"


def test_a_relatives_face_is_read_as_the_pipeline_and_the_proxy_policy_read_it(ctx: ServiceContext) -> None:
    """The face lines of a relative's case: the accept line against the reference the pipeline trusts (the template,
    else the card), the proxy line against the best of the two (as apply_proxy_policy). The proxy-band cases failed
    before (no note when another doubt sent the case to staff); the others are guards."""
    # Template below the accept line, card above: the template is the trusted reference: two.
    assert proxy_face.FACE_REVIEW_BAND in _second_for(ctx, _proxy_result(0.7, 0.45, [], first=False))
    # Template above the proxy line, card below the accept line: the template carries the accept: one.
    clear = _proxy_result(0.45, 0.7, [], first=True)
    assert clear["decision"] == "review" and _second_for(ctx, clear) == []
    # In the proxy band, another doubt also sending the case to staff: no note, still two.
    for reasons in ([ReasonCode.FACE_LOW_QUALITY], [ReasonCode.ID_FIELDS_INCONSISTENT]):
        for card, template in ((0.52, None), (0.45, 0.52)):
            result = _proxy_result(card, template, reasons, first=False)
            assert result["decision"] == "review" and NOTE_BELOW_PROXY_LINE not in result["notes"]
            assert _second_for(ctx, result) == [NOTE_BELOW_PROXY_LINE], (card, template, reasons)
    # The note and the band are one reason, not two.
    noted = _proxy_result(0.52, None, [], first=False)
    assert noted["notes"] == [NOTE_BELOW_PROXY_LINE] and _second_for(ctx, noted) == [NOTE_BELOW_PROXY_LINE]
    # The best of card and template clears the proxy line: one.
    assert _second_for(ctx, _proxy_result(0.6, 0.52, [ReasonCode.FACE_LOW_QUALITY], first=False)) == []
    # A decision with no face score is no machine face check.
    unscored = {"decision": "review", "reasons": [], "scores": {}, "thresholds": {"face_accept": 0.5}}
    assert _second_for(ctx, unscored) == [proxy_face.MACHINE_UNCHECKED]


def test_a_relatives_session_whose_job_failed_takes_two_to_accept(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], sample: Sample
) -> None:
    """A relative's session whose job failed (an input that crashes the worker every time) went to staff with no face
    score, and one reviewer's accept certified it: no machine face check at all, and one person."""
    sid, _bid = failed_case(ctx, sample, Channel.PROXY)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page and "代办认证未经机器人脸比对" in page[page.index('id="four-eyes"') :]
    assert "等待主管复核" in _accept(app_client, sid, csrf)
    assert factories.update(ctx, CertSession, sid).state == SessionState.FAILED
    r = app_client.post(f"/api/v1/sessions/{sid}/review", json={"decision": "accept", "reviewer": "x"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CASE_HELD"


def test_the_alerts_page_says_when_someone_viewed_more_than_the_days_line(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The heavy-viewer signal (查阅量) was seen only by a supervisor who opened that page: the alerts page, which
    supervisors open every day, now says when a member of staff in their scope is over the day's line today."""
    app_client.app.state.console_config = ConsoleConfig(views_alert_per_day=2)  # type: ignore[attr-defined]
    login(app_client, "sup1")
    assert 'id="heavy-viewers"' not in app_client.get("/console/alerts").text
    with ctx.db() as db:
        for i in range(3):
            audit_chain.record(db, "staff:rev1", "case.view", f"session-{i}", {})
        audit_chain.record(db, "staff:rev2", "case.view", "session-0", {})  # under the line
    page = app_client.get("/console/alerts").text
    line = page[page.index('id="heavy-viewers"') :].split("</p>")[0]
    assert "1 名工作人员" in line and 'href="/console/access/volume"' in line
    # It counts distinct records (access_log.heavy_viewers), not views: the text says so.
    assert "查阅超过 2 份档案或查询名册超过 2 次" in line
    # Yesterday's (the bureau's) entries are not today's.
    with ctx.db() as db:
        db.execute(update(ConsoleAuditEntry).values(at=utcnow() - dt.timedelta(days=2)))
    assert 'id="heavy-viewers"' not in app_client.get("/console/alerts").text


def test_a_relatives_verification_claiming_the_person_is_on_their_access_log(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A relative's own verification session carries no beneficiary id: when the number it claims is a pensioner's,
    the staff who opened that case (with the card and face of the number's holder) were missing from the pensioner's
    查阅记录. Another person's claim stays off it."""
    number = factories.id_number(region="420106")
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=number, external_id="EXT-CLAIMED", region="420106")
        bid = b.id
        op = operators.login(db, ctx, "wechat", f"openid-{uuid.uuid4().hex[:8]}", "test").operator
        mine = open_verification(db, ctx, op, number, "李建国", consent=False).session.id
        other_op = operators.login(db, ctx, "wechat", f"openid-{uuid.uuid4().hex[:8]}", "test").operator
        other = factories.id_number(region="420106", birth=dt.date(1961, 5, 2))
        theirs = open_verification(db, ctx, other_op, other, "王某", consent=False).session.id
    with ctx.db() as db:
        audit_chain.record(db, "staff:rev1", "case.view", mine, {})
        audit_chain.record(db, "staff:rev2", "case.view", theirs, {})
    with ctx.db() as db:
        person = db.get(Beneficiary, bid)
        assert person is not None
        listed = [(a.actor, a.action) for a in access_log.person_entries(db, person)]
    assert listed == [("staff:rev1", "case.view")]
