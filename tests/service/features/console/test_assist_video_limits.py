"""What the request page's 视频审核通过 (service/features/console/assist_video.py) may not accept. Before: a soft card
note (glare, blur, cut off) was overrulable even when it hid the card's number, so the number was never compared
with the roster and one reviewer certified whoever held a card under glare; a passive-liveness spoof (a replay of a
deceased pensioner's video: the challenge not done and SPOOF_SUSPECTED) was one reviewer's to overrule; and a video
older than the person's latest certification, or a request a certification answered since, was accepted into a
second certification. SQLite and PostgreSQL (the `ctx` fixture's backends)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.decision import Evidence, decide
from pipelines.decision.runner import CertificationReport, Certifier
from pipelines.liveness.fusion import Verdict
from pipelines.reasons import ReasonCode
from service.certification import processing
from service.certification.context import ServiceContext
from service.certification.models import Certification, CertSession, utcnow
from service.features.console import assist
from service.features.console.assist_video import ANSWERED, BEFORE_CERTIFIED
from service.features.console.models import AssistRequest
from service.infra.clock import local_today
from tests.service import factories
from tests.service.features.console.conftest import Sample, login
from tests.service.features.console.test_assist_video_review import _accept, _nothing_done, _rejected
from tests.service.media import LIVE_ACTIONS


@pytest.fixture(scope="module")
def machine(strict_certifier: Certifier, sample: Sample) -> CertificationReport:
    """The real pipeline's stages on the real card and live video (their decision is taken again below)."""
    return strict_certifier.run(sample.card, sample.video, LIVE_ACTIONS, sample.fields.id_number)


def _stored(
    machine: CertificationReport, sample: Sample, card: dict[str, Any], challenge_failed: bool
) -> dict[str, Any]:
    """The result the worker stores (processing.redact of the decision and the card reader's result) for the real
    evidence with the card read as `card` says and, if `challenge_failed`, an action of the challenge not done."""
    assert machine.id_card is not None and machine.liveness is not None
    read = dataclasses.replace(machine.id_card, **card)
    live = machine.liveness
    if challenge_failed:
        missing = [ReasonCode.CHALLENGE_MISSING_ACTION]
        live = dataclasses.replace(live, passed=False, reasons=missing, verdict=Verdict.REJECT)
    ev = Evidence(read, live, machine.card_match, expected_id_number=sample.fields.id_number)
    d = decide(ev)
    assert d.outcome.value == "reject"
    return processing.redact({**d.to_dict(), "id_card": read.to_dict()})


def _certified_by(ctx: ServiceContext, bid: int) -> list[str]:
    """The sessions the person's certifications rest on."""
    with ctx.db() as db:
        return list(db.scalars(select(Certification.session_id).where(Certification.beneficiary_id == bid)).all())


def _rejected_with(ctx: ServiceContext, result: dict[str, Any]) -> tuple[int, str, int]:
    bid, sid, rid = _rejected(ctx, list(result["reasons"]))
    factories.update(ctx, CertSession, sid, result=result)
    return bid, sid, rid


@pytest.mark.parametrize(
    ("card", "challenge_failed", "reasons"),
    [
        ({"id_number": None, "errors": [ReasonCode.ID_GLARE]}, False, ["ID_GLARE"]),
        (
            {"id_number": None, "errors": [ReasonCode.ID_TOO_BLURRY]},
            True,
            ["ID_TOO_BLURRY", "CHALLENGE_MISSING_ACTION"],
        ),
    ],
    ids=["glare-alone", "blur-and-challenge"],
)
def test_a_card_note_that_hid_the_number_is_not_overruled(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    machine: CertificationReport,
    sample: Sample,
    card: dict[str, Any],
    challenge_failed: bool,
    reasons: list[str],
) -> None:
    """Glare or blur that kept the reader from the number is reported instead of ID_NUMBER_UNREADABLE: the number
    was never compared with the person's, so nobody may overrule the note from the request page."""
    result = _stored(machine, sample, card, challenge_failed)
    assert result["reasons"] == reasons  # the machine's own reject, the face compared and matching
    bid, sid, rid = _rejected_with(ctx, result)
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and "不能凭查看视频改判" in page
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and "不能凭查看视频改判" in answer
    _nothing_done(ctx, bid, sid, rid)


def test_a_card_note_beside_a_number_read_and_matched_is_overruled(
    app_client: TestClient,
    ctx: ServiceContext,
    staff_users: dict[str, int],
    machine: CertificationReport,
    sample: Sample,
) -> None:
    """Guard: the glare the machine itself lets pass when the number reads, beside a challenge action not done."""
    result = _stored(machine, sample, {"errors": [ReasonCode.ID_GLARE]}, challenge_failed=True)
    assert result["reasons"] == ["ID_GLARE", "CHALLENGE_MISSING_ACTION"]
    bid, sid, rid = _rejected_with(ctx, result)
    csrf = login(app_client, "rev1")
    assert 'id="video-form"' in app_client.get(f"/console/requests/{rid}").text
    assert _accept(app_client, csrf, rid, sid).startswith("200")
    assert _certified_by(ctx, bid) == [sid]


@pytest.mark.parametrize(
    "reasons",
    [["SPOOF_SUSPECTED"], ["CHALLENGE_MISSING_ACTION", "SPOOF_SUSPECTED"]],
    ids=["spoof", "replay-signature"],
)
def test_a_passive_liveness_spoof_is_not_overruled(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], reasons: list[str]
) -> None:
    """A photo, a screen or a recording replayed (with the challenge not done: a deceased pensioner's old video,
    whose face matches): the page sends staff to a home or counter visit, and a post is refused."""
    bid, sid, rid = _rejected(ctx, reasons)
    csrf = login(app_client, "sup1")
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and "不能凭查看视频改判" in page and "请安排上门或柜台认证" in page
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and "不能凭查看视频改判" in answer and "疑似非真人" in answer
    _nothing_done(ctx, bid, sid, rid)


@pytest.mark.parametrize("named", [True, False], ids=["named", "latest-reject"])
def test_a_video_older_than_the_latest_certification_is_not_accepted(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], named: bool
) -> None:
    """A reject three days ago, a certification two days ago, a request filed today (naming that video, or naming
    none: the page then finds the person's latest reject): accepted, it was a second certification from evidence
    the first had superseded."""
    today = local_today(ctx.settings)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, name="李四")
        result = factories.review_result(
            decision="reject", reasons=["CHALLENGE_MISSING_ACTION"], scores={"card_similarity": 0.81}
        )
        old = factories.review_session(b.id, decision="reject", reasons=["CHALLENGE_MISSING_ACTION"], result=result)
        old.created_at = utcnow() - dt.timedelta(days=3)
        certified = factories.session_row(b.id, state="decided", decision="accept")
        db.add_all([old, certified])
        db.flush()
        processing.accept_session(db, ctx, certified, b, today - dt.timedelta(days=2), None)
        db.flush()
        for cert in db.scalars(select(Certification).where(Certification.beneficiary_id == b.id)):
            cert.created_at = utcnow() - dt.timedelta(days=2)
        req = assist.submit(
            db, b, "manual_review", "13800138000", "", "openid-x", "wechat:x", old.id if named else None
        )
        db.flush()
        bid, sid, rid, certified_id = b.id, old.id, req.id, certified.id
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and BEFORE_CERTIFIED in page
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and BEFORE_CERTIFIED in answer
    assert _certified_by(ctx, bid) == [certified_id]
    with ctx.db() as db:
        req_row = db.get(AssistRequest, rid)
        assert req_row is not None and req_row.status == "open"


def test_a_request_a_later_certification_answered_is_not_accepted(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    """A request left open although a certification was recorded after it was filed (left open by the code before
    close_on_certification, or skipped by its SKIP LOCKED): the staleness rule (assist.answered_sql) reads it as
    answered, and the page accepts no video for it."""
    bid, sid, rid = _rejected(ctx, ["CHALLENGE_MISSING_ACTION"])
    hour_ago = utcnow() - dt.timedelta(hours=1)
    factories.update(ctx, AssistRequest, rid, created_at=hour_ago)
    factories.update(ctx, CertSession, sid, created_at=hour_ago)
    today = local_today(ctx.settings)
    with ctx.db() as db:
        later = factories.session_row(bid, state="decided", decision="accept")
        db.add(later)
        db.flush()
        # The certification recorded as any is, its own rule not run on the request (the hole being closed here).
        valid = today + dt.timedelta(days=365)
        db.add(Certification(beneficiary_id=bid, session_id=later.id, certified_on=today, valid_until=valid, code="c1"))
        later_id = later.id
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/requests/{rid}").text
    assert 'id="video-form"' not in page and ANSWERED in page
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and ANSWERED in answer
    assert _certified_by(ctx, bid) == [later_id]
