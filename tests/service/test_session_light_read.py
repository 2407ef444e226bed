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
        expected = {**LightSequence.from_dict(COLOURS_ONLY).to_dict(), "enforced": False}
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


def test_a_real_take_whose_sequence_cannot_be_read_goes_to_staff_and_the_case_page_says_why(
    ctx: ServiceContext, real_certifier: RememberingCertifier, data_dir: Path
) -> None:
    """The real pipeline on the dev set's genuine take: accepted by the machine without a sequence, so under enforce
    it goes to staff with LIGHT_UNREADABLE; the decision's liveness entry and the case page say the sequence was
    issued and could not be read (before: 未发出, and certified)."""
    ctx.settings.certification.light_challenge = "enforce"
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=fields.id_number, name=fields.name)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", uuid.uuid4().hex)
        upload(db, ctx, s, UploadKind.VIDEO, (data_dir / LIVE_VIDEO).read_bytes(), "video/mp4", uuid.uuid4().hex,
               nonce=s.nonce)  # fmt: skip
        s.light = "red,blue"  # type: ignore[assignment]
        sid, bid = s.id, b.id
    _run(ctx, real_certifier, sid)
    stored = _stored(ctx, sid)
    result: dict[str, Any] = stored.result or {}
    assert (stored.decision, stored.reasons) == ("review", ["LIGHT_UNREADABLE"]), stored.reasons
    assert result["decision"] == "review" and result["liveness"]["light"] == {"status": "unreadable", "mode": "enforce"}
    assert light_evidence(result) == "已发出，无法读取（未做光线核验）"
    assert not _certified(ctx, bid)


def _certified(ctx: ServiceContext, beneficiary_id: int) -> bool:
    with ctx.db() as db:
        return db.scalar(select(Certification.id).where(Certification.beneficiary_id == beneficiary_id)) is not None
