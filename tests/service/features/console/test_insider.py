"""An insider in the staff console (docs/security.md, Part BC): a reviewer or supervisor helping a relative keep
collecting a dead parent's pension. Each test failed on the code before its fix, except the guards, which passed
before and keep the fixes from over-reaching (a reject, a retry or a plain self-session borderline accept stays one
person's; a second decision that agrees with the first, or a retry, settles): they say so in their docstrings.

- Accepting, alone, a case whose own evidence or whose person's history says "someone else": a person whose earlier
  certification was revoked as 冒领, or a case the machine flagged as another person's face (a relative filming
  themselves, a face that changed in the video, a recording seen before, a photo held up) certified the pension on
  one reviewer's word. Such an accept is now a first decision; a supervisor other than its first decider settles it.
- Releasing an evidence hold alone: one supervisor's release let the next purge delete the video of a 冒领 under
  investigation. A release now needs two supervisors: one asks, another confirms.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.evidence_hold import RELEASE_ASK_DAYS
from service.certification.models import AuditEntry, Beneficiary, Certification, CertSession, EvidenceHold, utcnow
from service.certification.revocation import revoke_certification
from service.certification.staff_audit import ConsoleAuditEntry
from service.features.console.alt_cert import certify_alternative
from service.features.console.models import ConsoleAlert
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import api_settle, csrf_of, login, new_client


def _decide(client: TestClient, sid: str, csrf: str, decision: str, reason: str = "核对无误") -> str:
    r = client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": decision, "reason": reason})
    return str(r.text)


def _claim(client: TestClient, sid: str, csrf: str) -> int:
    return int(client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code)


def _session(ctx: ServiceContext, sid: str) -> CertSession:
    return factories.update(ctx, CertSession, sid)


def _claim_and_decide(client: TestClient, user: str, sid: str, decision: str, reason: str = "核对无误") -> str:
    """`user` logs in on `client`, claims the case and decides it: the answer page's text."""
    csrf = login(client, user)
    _claim(client, sid, csrf)
    return _decide(client, sid, csrf, decision, reason)


def _revoked_as_impersonation_before(ctx: ServiceContext, bid: int) -> None:
    """The person's earlier (counter) certification, found to be a relative's 冒领 and revoked."""
    with ctx.db() as db:
        b = db.get(Beneficiary, bid)
        assert b is not None
        day = local_today(ctx.settings) - dt.timedelta(days=40)
        alt = certify_alternative(db, ctx, b, "counter", day, None, {})
        cid = db.scalars(select(Certification.id).where(Certification.session_id == alt.session_id)).one()
        revoke_certification(db, ctx.rules, cid, "impersonation", "家属冒领，老人已去世", "staff:sup2", hold_days=180)


def test_a_reviewer_alone_cannot_accept_the_next_case_of_a_person_whose_certification_was_revoked_as_fraud(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    sid, bid = case
    _revoked_as_impersonation_before(ctx, bid)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page and "因冒领或错误受理被撤销" in page
    assert _claim(app_client, sid, csrf) == 200
    assert "等待主管复核" in _decide(app_client, sid, csrf, "accept")
    s = _session(ctx, sid)
    assert s.decision == "review"  # nothing certified on one person's word
    with ctx.db() as db:
        assert db.scalar(select(Certification).where(Certification.session_id == sid)) is None
        first = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "case.decide.first")).one()
        assert first.actor == "staff:rev1" and first.detail["decision"] == "accept"
        assert first.detail["second_needed"] == ["revoked"]
    # The first decider cannot give the second; another reviewer cannot either; a supervisor can.
    again = app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    assert again.status_code == 409 and "该案件等待主管复核" in again.text
    assert "您已提交过决定，等待另一位主管复核" in _decide(app_client, sid, csrf, "accept")
    sup = new_client(app_client)
    sup_csrf = login(sup, "sup1")
    assert "初审意见" in sup.get(f"/console/cases/{sid}").text
    _claim(sup, sid, sup_csrf)
    assert "已完成审核" in _decide(sup, sid, sup_csrf, "accept", "已电话回访并上门核实本人健在")
    assert _session(ctx, sid).decision == "accept"


def test_a_supervisor_who_gave_the_first_accept_cannot_give_the_second(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    sid, _bid = case
    with ctx.db() as db:  # the machine's own flag: the face in the video is closer to the relative's (proxy)
        s = db.get(CertSession, sid)
        assert s is not None
        s.reasons = [*(s.reasons or []), "FACE_CLOSER_TO_RELATIVE"]
    csrf = login(app_client, "sup1")
    _claim(app_client, sid, csrf)
    assert "等待主管复核" in _decide(app_client, sid, csrf, "accept")
    assert _session(ctx, sid).decision == "review"
    again = app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf})
    assert again.status_code == 409 and "复核必须由另一位主管完成" in again.text
    assert "您已提交过决定，等待另一位主管复核" in _decide(app_client, sid, csrf, "accept")
    assert _session(ctx, sid).decision == "review"


@pytest.mark.parametrize("decision", ["reject", "retry"])
def test_a_reject_or_a_retry_of_a_flagged_case_needs_no_second_person(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], decision: str
) -> None:
    """Guard (passed before the fix): the four eyes are for an accept; a reject or a retry certifies nobody."""
    sid, bid = case
    _revoked_as_impersonation_before(ctx, bid)
    assert "已完成审核" in _claim_and_decide(app_client, "rev1", sid, decision, "视频中非本人")
    assert _session(ctx, sid).decision == decision


def test_a_plain_borderline_case_is_still_one_reviewers(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """Guard (passed before the fix): a self session's borderline liveness score (SPOOF_SUSPECTED, the common case),
    with no other doubt and no fraud revocation, is one reviewer's (docs/security.md, Part BC)."""
    sid, _bid = case
    assert _session(ctx, sid).reasons == ["SPOOF_SUSPECTED"]
    csrf = login(app_client, "rev1")
    assert 'id="four-eyes"' not in app_client.get(f"/console/cases/{sid}").text
    _claim(app_client, sid, csrf)
    assert "已完成审核" in _decide(app_client, sid, csrf, "accept")
    assert _session(ctx, sid).decision == "accept"


def _held(ctx: ServiceContext) -> tuple[int, int, str]:
    """A person certified by video whose media a supervisor (sup1) holds: (person, hold, session)."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = factories.session_row(b.id, state="decided", decision="accept")
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        db.add(s)
        db.flush()
        ends = dt.datetime(2099, 1, 1)
        hold = EvidenceHold(session_id=s.id, reason="investigation", note="举报", placed_by="staff:sup1", ends_at=ends)
        db.add(hold)
        db.flush()
        return b.id, hold.id, s.id


def test_one_supervisor_alone_cannot_release_an_evidence_hold(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    bid, hid, _sid = _held(ctx)
    csrf = login(app_client, "sup1")
    action = f"/console/beneficiaries/{bid}/holds/{hid}/release"
    r = app_client.post(action, data={"csrf": csrf, "note": "亲戚说老人还健在"})
    assert r.status_code == 200 and "待另一位主管确认" in r.text and "亲戚说老人还健在" in r.text
    assert factories.update(ctx, EvidenceHold, hid).released_at is None
    again = app_client.post(action, data={"csrf": csrf, "note": "再次提交"})
    assert again.status_code == 409 and "须由另一位主管确认" in again.text
    assert factories.update(ctx, EvidenceHold, hid).released_at is None
    with ctx.db() as db:
        asked = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "evidence.release.ask")).one()
        assert asked.actor == "staff:sup1" and asked.detail["hold"] == hid
        trail = db.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.hold.release_asked")).one()
        assert trail.actor == "staff:sup1"
    # Another supervisor confirms: released, both named.
    sup2 = new_client(app_client)
    csrf2 = login(sup2, "sup2")
    page = sup2.get(f"/console/beneficiaries/{bid}").text
    assert "待另一位主管确认" in page and csrf_of(page) == csrf2
    done = sup2.post(action, data={"csrf": csrf2, "note": "核实为本人认证，同意解除"})
    assert done.status_code == 200 and "待另一位主管确认" not in done.text
    hold = factories.update(ctx, EvidenceHold, hid)
    assert hold.released_by == "staff:sup2" and hold.released_at is not None
    with ctx.db() as db:
        released = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "evidence.release")).one()
        assert released.actor == "staff:sup2" and released.detail["asked_by"] == "staff:sup1"


def _alt_form(page: str) -> dict[str, str]:
    form = page[page.index('id="alt-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def _alerts(ctx: ServiceContext, kind: str) -> list[ConsoleAlert]:
    with ctx.db() as db:
        return list(db.scalars(select(ConsoleAlert).where(ConsoleAlert.kind == kind)).all())


def test_a_counter_certification_after_a_fraud_revocation_is_checked_by_another_supervisor(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The relative's 冒领 was revoked; a colleague at the counter then certified the dead parent without any face,
    alone, and the pension ran again. Now it raises an alert the recorder cannot mark handled."""
    with ctx.db() as db:
        bid = factories.beneficiary(db, ctx.keyring).id
    _revoked_as_impersonation_before(ctx, bid)
    sup1 = new_client(app_client)
    login(sup1, "sup1")
    form = _alt_form(sup1.get(f"/console/beneficiaries/{bid}").text)
    data = form | {"kind": "home_visit", "on_date": local_today(ctx.settings).isoformat(), "evidence": "入户见到本人"}
    assert sup1.post(f"/console/beneficiaries/{bid}/certify", data=data).status_code == 200
    (alert,) = _alerts(ctx, "recertified_after_fraud")
    assert alert.beneficiary_id == bid and alert.detail["actor"] == "staff:sup1"
    page = sup1.get("/console/alerts").text
    assert "撤销后又由工作人员认证" in page and "入户见到本人" in page
    csrf1 = csrf_of(page)
    mine = sup1.post(f"/console/alerts/{alert.id}/resolve", data={"csrf": csrf1, "note": "本人认证，无误"})
    assert "须由另一位主管核实" in mine.text
    assert not factories.update(ctx, ConsoleAlert, alert.id).resolved
    csrf2 = login(app_client, "sup2")
    empty = app_client.post(f"/console/alerts/{alert.id}/resolve", data={"csrf": csrf2, "note": " "})
    assert "请填写处理情况" in empty.text and not factories.update(ctx, ConsoleAlert, alert.id).resolved
    done = app_client.post(f"/console/alerts/{alert.id}/resolve", data={"csrf": csrf2, "note": "电话回访，老人健在"})
    assert "已处理（sup2：电话回访，老人健在）" in done.text  # the status cell names who handled it and how
    assert factories.update(ctx, ConsoleAlert, alert.id).resolved
    with ctx.db() as db:
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "alert.resolve")).one()
        assert entry.actor == "staff:sup2" and entry.detail["note"] == "电话回访，老人健在"
        assert entry.detail["kind"] == "recertified_after_fraud"


def test_a_death_alert_is_not_marked_handled_without_saying_how(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A certification accepted after the recorded death (the 冒领 signal) was dismissed with one click, no word of
    what was done: a supervisor could bury it."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        alert = ConsoleAlert(kind="certified_after_death", beneficiary_id=b.id, detail={"date_of_death": "2026-01-02"})
        db.add(alert)
        db.flush()
        aid = alert.id
    csrf = login(app_client, "sup1")
    app_client.post(f"/console/alerts/{aid}/resolve", data={"csrf": csrf})
    assert not factories.update(ctx, ConsoleAlert, aid).resolved
    app_client.post(f"/console/alerts/{aid}/resolve", data={"csrf": csrf, "note": "已撤销该认证并追回待遇"})
    assert factories.update(ctx, ConsoleAlert, aid).resolved


def test_the_operator_api_cannot_accept_alone_what_the_console_gives_two_people(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """The console's rule was walked round through the operator API's review endpoint: one call with the key
    accepted a case flagged as another person's face."""
    sids = []
    for reasons in (["FACE_CHANGED_IN_VIDEO"], ["SPOOF_SUSPECTED"], ["FACE_CHANGED_IN_VIDEO"]):
        with ctx.db() as db:
            b = factories.beneficiary(db, ctx.keyring)
            s = factories.review_session(b.id)
            s.reasons = reasons
            db.add(s)
            sids.append(s.id)
    flagged, plain, rejected = sids
    assert api_settle(app_client, flagged, "accept") == (409, "CASE_HELD")
    assert _session(ctx, flagged).decision == "review"
    assert api_settle(app_client, plain, "accept") == (200, "")
    assert api_settle(app_client, rejected, "reject") == (200, "")


def _proxy_case_doubted(ctx: ServiceContext, case: tuple[str, int]) -> str:
    """A relative's (proxy) case the machine flagged as the relative's face: a reject and an accept both take two."""
    sid, _bid = case
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        s.channel, s.reasons = "proxy", [*(s.reasons or []), "FACE_CLOSER_TO_RELATIVE"]
    return sid


def test_a_supervisor_cannot_turn_a_first_reject_into_an_accept_alone(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """The reviewer rejected a doubted proxy case (a first decision); the supervisor asked for the second decision
    accepted it instead, and the case was certified on that one supervisor's word."""
    sid = _proxy_case_doubted(ctx, case)
    assert "等待主管复核" in _claim_and_decide(app_client, "rev1", sid, "reject", "视频中非本人")
    sup1 = new_client(app_client)
    c1 = login(sup1, "sup1")
    page = sup1.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page  # an accept here would not settle the case: the page says so
    _claim(sup1, sid, c1)
    assert "须由另一位主管复核" in _decide(sup1, sid, c1, "accept", "我认为是本人")
    assert _session(ctx, sid).decision == "review"  # nobody agreed with the supervisor's accept yet
    with ctx.db() as db:
        assert db.scalar(select(Certification).where(Certification.session_id == sid)) is None
        firsts = db.scalars(
            select(ConsoleAuditEntry)
            .where(ConsoleAuditEntry.action == "case.decide.first")
            .order_by(ConsoleAuditEntry.seq)
        ).all()
        assert [(e.actor, e.detail["decision"]) for e in firsts] == [("staff:rev1", "reject"), ("staff:sup1", "accept")]
    # The supervisor's accept is now the first decision: not theirs to confirm; another supervisor's to settle.
    assert "复核必须由另一位主管完成" in sup1.post(f"/console/cases/{sid}/claim", data={"csrf": c1}).text
    sup2 = new_client(app_client)
    c2 = login(sup2, "sup2")
    assert 'id="four-eyes"' not in sup2.get(f"/console/cases/{sid}").text  # sup2's accept settles it
    _claim(sup2, sid, c2)
    assert "已完成审核" in _decide(sup2, sid, c2, "accept", "已上门核实本人健在")
    assert _session(ctx, sid).decision == "accept"
    with ctx.db() as db:
        seconds = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "case.decide.second")).all()
        assert [(e.actor, e.detail["decision"]) for e in seconds] == [("staff:sup2", "accept")]


@pytest.mark.parametrize("decision", ["reject", "retry"])
def test_a_second_decision_that_agrees_or_needs_nobody_else_settles(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int], decision: str
) -> None:
    """Guard (passed before the fix, kept so the fix does not over-reach): a second reject agreeing with the first,
    or a retry (never two people's), settles at once."""
    sid = _proxy_case_doubted(ctx, case)
    assert "等待主管复核" in _claim_and_decide(app_client, "rev1", sid, "reject", "视频中非本人")
    assert "已完成审核" in _claim_and_decide(new_client(app_client), "sup1", sid, decision, "同意")
    assert _session(ctx, sid).decision == decision


def test_the_second_supervisor_is_not_told_their_accept_needs_another(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    sid, bid = case
    _revoked_as_impersonation_before(ctx, bid)
    assert "等待主管复核" in _claim_and_decide(app_client, "rev1", sid, "accept")
    sup = new_client(app_client)
    login(sup, "sup2")
    page = sup.get(f"/console/cases/{sid}").text
    assert 'id="pending"' in page and 'id="four-eyes"' not in page


@pytest.mark.parametrize(
    ("reasons", "note", "shown"),
    [
        (None, None, "疑似非真人"),  # the sample's own SPOOF_SUSPECTED: a replayed photo or video of the elder
        ([], "operator template unavailable", "无法排除代办人本人出镜"),
        ([], "face similarity below the stricter proxy threshold", "代办认证的更高通过线"),
    ],
    ids=["spoof-suspected", "no-operator-template", "below-proxy-line"],
)
def test_a_relatives_session_doubted_as_not_the_living_elder_takes_two_to_accept(
    app_client: TestClient,
    ctx: ServiceContext,
    case: tuple[str, int],
    reasons: list[str] | None,
    note: str | None,
    shown: str,
) -> None:
    """A relative's (proxy) session sent to staff because the machine doubted a live elder was filmed (a photo or a
    recording of a dead parent: only liveness in doubt), or could not rule out the relative's own face, was
    accepted on one reviewer's word: none of these signals asked for a second person."""
    sid, _bid = case
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        s.channel = "proxy"
        if reasons is not None:
            s.reasons = reasons
        if note is not None:
            s.result = {**(s.result or {}), "notes": [note]}
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page and shown in page[page.index('id="four-eyes"') :]
    _claim(app_client, sid, csrf)
    assert "等待主管复核" in _decide(app_client, sid, csrf, "accept")
    assert _session(ctx, sid).decision == "review"
    assert api_settle(app_client, sid, "accept") == (409, "CASE_HELD")  # nor the operator API alone


def test_an_old_release_request_of_an_evidence_hold_is_not_confirmed(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A supervisor's request to release a hold never lapsed: months later any other supervisor's click released
    the evidence on a request its asker had long forgotten (or given up). A request now counts for
    RELEASE_ASK_DAYS; after that the next supervisor's click is a new request."""
    bid, hid, _sid = _held(ctx)
    with ctx.db() as db:
        hold = db.get(EvidenceHold, hid)
        assert hold is not None
        hold.placed_at = utcnow() - dt.timedelta(days=60)
    csrf = login(app_client, "sup1")
    action = f"/console/beneficiaries/{bid}/holds/{hid}/release"
    assert app_client.post(action, data={"csrf": csrf, "note": "亲戚说老人还健在"}).status_code == 200
    with ctx.db() as db:
        asked = db.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.hold.release_asked")).one()
        asked.at = utcnow() - dt.timedelta(days=RELEASE_ASK_DAYS, hours=1)
    sup2 = new_client(app_client)
    csrf2 = login(sup2, "sup2")
    assert "待另一位主管确认" not in sup2.get(f"/console/beneficiaries/{bid}").text
    r = sup2.post(action, data={"csrf": csrf2, "note": "同意解除"})
    assert r.status_code == 200 and "待另一位主管确认" in r.text  # sup2's own request now, sup1's lapsed
    assert factories.update(ctx, EvidenceHold, hid).released_at is None
    done = app_client.post(action, data={"csrf": csrf, "note": "再次核实，同意解除"})  # sup1 confirms sup2's
    assert done.status_code == 200 and factories.update(ctx, EvidenceHold, hid).released_by == "staff:sup1"


def test_a_supervisor_refused_for_acting_alone_leaves_a_trace(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """Confirming one's own release request, or marking handled the alert on one's own counter certification,
    was refused without a word in any trail: a supervisor trying again and again to act alone went unseen."""
    bid, hid, _sid = _held(ctx)
    csrf = login(app_client, "sup1")
    action = f"/console/beneficiaries/{bid}/holds/{hid}/release"
    app_client.post(action, data={"csrf": csrf, "note": "亲戚说老人还健在"})
    assert app_client.post(action, data={"csrf": csrf, "note": "再次提交"}).status_code == 409
    with ctx.db() as db:
        refused = db.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.hold.release_refused")).one()
        assert refused.actor == "staff:sup1" and refused.detail["hold"] == hid
        assert refused.detail["reason"] == "EVIDENCE_RELEASE_SELF"
        b = db.get(Beneficiary, bid)
        assert b is not None
        alert = ConsoleAlert(kind="recertified_after_fraud", beneficiary_id=bid, detail={"actor": "staff:sup1"})
        db.add(alert)
        db.flush()
        aid = alert.id
    app_client.post(f"/console/alerts/{aid}/resolve", data={"csrf": csrf, "note": "本人认证，无误"})
    assert not factories.update(ctx, ConsoleAlert, aid).resolved
    with ctx.db() as db:
        entry = db.scalars(select(ConsoleAuditEntry).where(ConsoleAuditEntry.action == "alert.resolve.refused")).one()
        assert entry.actor == "staff:sup1" and entry.target == str(aid)
        assert entry.detail["reason"] == "ALERT_REVIEW_SELF"
