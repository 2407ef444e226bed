"""One reader of a session's stored screen-light sequence (sessions.light_of) for every answer, the worker and the
case page (docs/wechat.md, "The screen-light challenge"). Before, the API's answers handed the stored value to
pydantic raw: a value the worker read (the colours alone) or tolerated (anything else) made the session's status,
the card upload and the video upload answer 500 for ever, the video stored and queued meanwhile; and under
LIGHT_CHALLENGE enforce a session whose sequence could not be read was certified with no light check at all."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipelines.liveness import LightSequence
from service.adapters.http.schemas import session_created
from service.certification.context import ServiceContext
from service.certification.models import Certification, CertSession, Channel, UploadKind
from service.certification.sessions import NewSession, create_session, upload
from service.features.console.case_view import light_evidence
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session, put_card, put_video
from tests.service.certifiers import FixedCertifier, RememberingCertifier
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_session_light import _queued, _run, _status, _stored

COLOURS_ONLY = {"colours": ["red", "blue", "green"]}  # what LightSequence.from_dict reads: the default timing
UNREADABLE: list[object] = [
    {"colours": ["ultraviolet", "red"]},
    {"colours": ["red"]},
    {"rgb": [[1, 2, 3]]},
    ["red", "blue"],
    "red,blue",
]
UNREADABLE_IDS = ["unknown-colour", "one-colour", "no-colours", "a-list", "a-string"]


def _store(ctx: ServiceContext, sid: str, light: object) -> None:
    with ctx.db() as db:
        row = db.get(CertSession, sid)
        assert row is not None
        row.light = light  # type: ignore[assignment]  # any JSON the column may hold, malformed on purpose


@pytest.mark.parametrize("stored", [COLOURS_ONLY, *UNREADABLE], ids=["colours-only", *UNREADABLE_IDS])
def test_every_answer_of_the_session_reads_its_stored_light_as_the_worker_does(
    client: TestClient, ctx: ServiceContext, data_dir: Path, stored: object
) -> None:
    """The status, the card upload's and the video upload's answers: 200 whatever the column holds; the colours
    alone read as the worker reads them (the full form, default timing), anything else as none issued."""
    ctx.settings.certification.light_challenge = "observe"
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    s = open_session(client, beneficiary_with_number(ctx, fields.id_number, name=fields.name))
    _store(ctx, s["session_id"], stored)
    expected = None
    if stored is COLOURS_ONLY:
        expected = {**LightSequence.from_dict(COLOURS_ONLY).to_dict(), "record_after_ms": 1000, "enforced": False}
    assert _status(client, s)["challenge"]["light"] == expected
    answered = put_card(client, s, card)
    assert answered.status_code == 200, answered.text
    assert answered.json()["challenge"]["light"] == expected
    video = put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes(), "video/mp4")
    assert video.status_code == 200, video.text
    assert video.json()["challenge"]["light"] == expected and video.json()["state"] == "queued"


@pytest.mark.parametrize("stored", [COLOURS_ONLY, *UNREADABLE], ids=["colours-only", *UNREADABLE_IDS])
def test_the_answer_that_opens_a_session_reads_the_light_through_the_one_reader(
    ctx: ServiceContext, stored: object
) -> None:
    """schemas.session_created (the API, the proxy API, the H5 pages' bootstrap) reads as the status does."""
    ctx.settings.certification.light_challenge = "enforce"
    with ctx.db() as db:
        new = create_session(db, ctx, factories.beneficiary(db, ctx.keyring), Channel.SELF, False, "test")
        new.session.light = stored  # type: ignore[assignment]
        light = session_created(ctx, NewSession(new.session, new.token)).challenge.light
    if stored is COLOURS_ONLY:
        assert light is not None and light.model_dump() == {
            **LightSequence.from_dict(COLOURS_ONLY).to_dict(),
            "record_after_ms": 1000,
            "enforced": True,
        }
    else:
        assert light is None


@pytest.mark.parametrize("stored", UNREADABLE, ids=UNREADABLE_IDS)
def test_under_enforce_a_session_whose_sequence_cannot_be_read_goes_to_staff_not_certified_unchecked(
    ctx: ServiceContext, stored: object
) -> None:
    ctx.settings.certification.light_challenge = "enforce"
    sid = _queued(ctx, light=stored)
    certifier = FixedCertifier()  # the machine's own verdict: accept
    _run(ctx, certifier, sid)
    s = _stored(ctx, sid)
    assert certifier.lights == [None]  # analysed without it, as before, never a failed job
    assert (s.decision, s.reasons, s.job_attempts, s.last_error) == ("review", ["LIGHT_UNREADABLE"], 1, None)
    assert s.beneficiary_id is not None and not _certified(ctx, s.beneficiary_id)


def test_in_observe_mode_an_unreadable_sequence_keeps_the_verdict(ctx: ServiceContext) -> None:
    ctx.settings.certification.light_challenge = "observe"
    sid = _queued(ctx, light=["red", "blue"])
    _run(ctx, FixedCertifier(), sid)
    assert (_stored(ctx, sid).decision, _stored(ctx, sid).reasons) == ("accept", [])


def test_a_readable_colours_only_sequence_reaches_the_certifier_under_enforce(ctx: ServiceContext) -> None:
    ctx.settings.certification.light_challenge = "enforce"
    sid = _queued(ctx, light=COLOURS_ONLY)
    certifier = FixedCertifier()
    _run(ctx, certifier, sid)
    assert certifier.lights == [LightSequence.from_dict(COLOURS_ONLY)]
    assert (_stored(ctx, sid).decision, _stored(ctx, sid).reasons) == ("accept", [])


@pytest.mark.parametrize(
    ("stored", "code", "entry", "line"),
    [
        ("red,blue", "LIGHT_UNREADABLE", "unreadable", "已发出，无法读取（未做光线核验）"),
        (None, "LIGHT_NOT_ISSUED", "not_issued", "会话开启时未发出（未做光线核验）"),
    ],
    ids=["unreadable", "not-issued"],
)
def test_a_real_take_analysed_without_its_sequence_goes_to_staff_and_the_case_page_says_why(
    ctx: ServiceContext, real_certifier: RememberingCertifier, data_dir: Path, stored: object, code: str, entry: str,
    line: str,
) -> None:  # fmt: skip
    """The real pipeline on the dev set's genuine take: accepted by the machine without a sequence, so under enforce
    it goes to staff with LIGHT_UNREADABLE (a sequence issued and not read back) or LIGHT_NOT_ISSUED (none issued:
    opened while the challenge was off); the decision's liveness entry and the case page say which (before: 未发出,
    and certified)."""
    ctx.settings.certification.light_challenge = "enforce"
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=fields.id_number, name=fields.name)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", uuid.uuid4().hex)
        upload(db, ctx, s, UploadKind.VIDEO, (data_dir / LIVE_VIDEO).read_bytes(), "video/mp4", uuid.uuid4().hex,
               nonce=s.nonce)  # fmt: skip
        s.light = stored  # type: ignore[assignment]
        sid, bid = s.id, b.id
    _run(ctx, real_certifier, sid)
    row = _stored(ctx, sid)
    result: dict[str, Any] = row.result or {}
    assert (row.decision, row.reasons) == ("review", [code]), row.reasons
    assert result["decision"] == "review" and result["liveness"]["light"] == {"status": entry, "mode": "enforce"}
    assert light_evidence(result) == line
    assert not _certified(ctx, bid)


def _certified(ctx: ServiceContext, beneficiary_id: int) -> bool:
    with ctx.db() as db:
        return db.scalar(select(Certification.id).where(Certification.beneficiary_id == beneficiary_id)) is not None


def test_under_enforce_a_session_opened_while_the_challenge_was_off_goes_to_staff_not_certified_unchecked(
    ctx: ServiceContext,
) -> None:
    """The mode turned from off to enforce while a session was open: its page showed no colours, so the video
    carries no light check. Before, the machine's accept certified it; now staff look (LIGHT_NOT_ISSUED), and the
    decision's liveness entry and the case page say none was issued."""
    ctx.settings.certification.light_challenge = "off"
    sid = _queued(ctx)
    assert _stored(ctx, sid).light is None  # off issues none
    ctx.settings.certification.light_challenge = "enforce"
    certifier = FixedCertifier()
    _run(ctx, certifier, sid)
    s = _stored(ctx, sid)
    assert certifier.lights == [None]
    assert (s.decision, s.reasons, s.job_attempts, s.last_error) == ("review", ["LIGHT_NOT_ISSUED"], 1, None)
    result: dict[str, Any] = s.result or {}
    assert result["decision"] == "review" and result["reasons"] == ["LIGHT_NOT_ISSUED"]
    assert s.beneficiary_id is not None and not _certified(ctx, s.beneficiary_id)


@pytest.mark.parametrize("mode", ["off", "observe"])
def test_outside_enforce_a_session_issued_no_sequence_keeps_the_machines_verdict(
    ctx: ServiceContext, mode: str
) -> None:
    ctx.settings.certification.light_challenge = "off"
    sid = _queued(ctx)
    ctx.settings.certification.light_challenge = mode  # type: ignore[assignment]
    _run(ctx, FixedCertifier(), sid)
    assert (_stored(ctx, sid).decision, _stored(ctx, sid).reasons) == ("accept", [])


def test_the_case_page_says_a_session_was_issued_no_sequence_when_enforce_sent_it_to_staff() -> None:
    not_issued = {"liveness": {"light": {"status": "not_issued", "mode": "enforce"}}}
    assert light_evidence(not_issued) == "会话开启时未发出（未做光线核验）"
    assert light_evidence({"liveness": {"light": None}}) == "未发出"  # off or observe: as before
