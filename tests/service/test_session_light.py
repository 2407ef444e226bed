"""The screen-light challenge, the service's half (docs/wechat.md, "The screen-light challenge"): every new session is
issued a fresh random sequence of screen colours (PENSION_CERT_LIGHT_CHALLENGE observe or enforce; none when off),
stored on the session, given to the capture page with the challenge, and handed by the worker to the certifier
with the video. A stored sequence that cannot be read is analysed as none, never a failed job. The workers'
certifier takes the mode (enforce) from the setting."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from pipelines.decision.result import Outcome
from pipelines.liveness import LightSequence
from pipelines.liveness.light import COLOURS
from pipelines.liveness.light_response import LightRules
from service.adapters.workers import worker
from service.certification import processing
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import CertSession, Channel, SessionState, UploadKind
from service.certification.sessions import create_session, upload
from service.infra.clock import local_today
from service.infra.config import CertificationSettings
from tests.service import factories
from tests.service.adapters.http.helpers import beneficiary_with_number, open_session
from tests.service.certifiers import FixedCertifier, RememberingCertifier
from tests.service.media import LIVE_VIDEO, card_for_video


def _status(client: TestClient, s: dict[str, Any]) -> dict[str, Any]:
    r = client.get(f"/api/v1/sessions/{s['session_id']}", headers={"Authorization": f"Bearer {s['token']}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _stored(ctx: ServiceContext, sid: str) -> CertSession:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        db.expunge(s)
        return s


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_a_new_session_is_issued_a_light_sequence_the_api_gives_and_the_row_keeps(
    client: TestClient, ctx: ServiceContext, mode: str
) -> None:
    ctx.settings.certification.light_challenge = mode  # type: ignore[assignment]
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    light = s["challenge"]["light"]
    sequence = LightSequence.from_dict(light)  # the form the pipeline reads back
    assert light["colours"] == list(sequence.colours) and light["rgb"] == [list(COLOURS[c]) for c in light["colours"]]
    assert light["step_ms"] == 800 and light["start_ms"] == 500
    assert light["enforced"] is (mode == "enforce")  # the page offers no camera app under enforce (h5-capture.js)
    # the take goes on past the last colour as long as the analysis reads frames there (h5-capture.js)
    assert light["record_after_ms"] == round(LightRules.load().pad_s * 1000) == 1000
    stored = {k: v for k, v in light.items() if k not in ("enforced", "record_after_ms")}  # read when answering
    assert _stored(ctx, s["session_id"]).light == stored  # stored with the session: what the worker hands on
    assert _status(client, s)["challenge"]["light"] == light  # the session's status shows it again (a reload)


def test_no_light_sequence_when_the_challenge_is_off(client: TestClient, ctx: ServiceContext) -> None:
    ctx.settings.certification.light_challenge = "off"
    s = open_session(client, beneficiary_with_number(ctx, factories.id_number()))
    assert s["challenge"]["light"] is None and s["challenge"]["actions"]
    assert _stored(ctx, s["session_id"]).light is None
    assert _status(client, s)["challenge"]["light"] is None


def test_observe_is_the_default_and_every_mode_has_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PENSION_CERT_LIGHT_CHALLENGE", raising=False)
    assert CertificationSettings().light_challenge == "observe"
    monkeypatch.setenv("PENSION_CERT_LIGHT_CHALLENGE", "enforce")
    assert CertificationSettings().light_challenge == "enforce"
    monkeypatch.setenv("PENSION_CERT_LIGHT_CHALLENGE", "sometimes")
    with pytest.raises(ValueError, match="light_challenge"):
        CertificationSettings()


def test_each_session_gets_a_fresh_sequence_even_before_a_video_was_sent(ctx: ServiceContext) -> None:
    """Unlike the actions (kept until a video is sent: sessions.unused_challenge), the colours are drawn anew for
    every session: fishing for a sequence gains nothing, any needs a real face lit by the screen."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        drawn = [create_session(db, ctx, b, Channel.SELF, False, "test").session for _ in range(12)]
        assert len({tuple(s.actions) for s in drawn}) == 1  # the actions are reused, as before
        # 6 colours of 4, none twice in a row: 4 * 3**5 = 972 sequences; 12 draws all alike: about 972**-11.
        assert len({tuple(s.light["colours"]) for s in drawn if s.light}) > 1


def _queued(ctx: ServiceContext, light: object = "issued") -> str:
    """A session queued with stand-in media (the FixedCertifier reads none); `light` replaces the issued one."""
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        if light != "issued":
            s.light = cast("dict[str, Any] | None", light)  # any JSON the column may hold, malformed on purpose
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        s.state = SessionState.QUEUED
        return s.id


def _run(ctx: ServiceContext, certifier: object, sid: str) -> None:
    assert processing.claim(ctx, sid, "w-light") == sid
    assert processing.process(ctx, cast(Certifier, certifier), sid, "w-light")


def test_the_worker_hands_the_sessions_sequence_to_the_certifier(ctx: ServiceContext) -> None:
    certifier = FixedCertifier()
    sid = _queued(ctx)
    issued = _stored(ctx, sid).light
    assert issued is not None
    _run(ctx, certifier, sid)
    assert certifier.lights == [LightSequence.from_dict(issued)]
    assert _stored(ctx, sid).decision == "accept"


def test_a_session_without_a_sequence_is_certified_without_one(ctx: ServiceContext) -> None:
    certifier = FixedCertifier()
    sid = _queued(ctx, light=None)
    _run(ctx, certifier, sid)
    assert certifier.lights == [None] and _stored(ctx, sid).decision == "accept"


@pytest.mark.parametrize(
    "stored",
    [{"colours": ["ultraviolet", "red"]}, {"colours": ["red"]}, {"rgb": [[1, 2, 3]]}, ["red", "blue"], "red,blue"],
    ids=["unknown-colour", "one-colour", "no-colours", "a-list", "a-string"],
)
def test_a_stored_sequence_that_cannot_be_read_is_taken_as_none_not_a_failed_job(
    ctx: ServiceContext, caplog: pytest.LogCaptureFixture, stored: object
) -> None:
    certifier = FixedCertifier()
    sid = _queued(ctx, light=stored)
    with caplog.at_level(logging.WARNING, logger="service.certification.processing"):
        _run(ctx, certifier, sid)
    s = _stored(ctx, sid)
    assert certifier.lights == [None]
    assert s.state == SessionState.DECIDED and s.decision == "accept" and s.job_attempts == 1 and not s.last_error
    assert any("light sequence unreadable" in r.getMessage() and sid in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("setting", "mode"), [("observe", "observe"), ("enforce", "enforce"), ("off", "observe")])
def test_the_workers_certifier_takes_the_light_mode_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, setting: str, mode: str
) -> None:
    """shared_certifier builds the certifier of every worker (the embedded ones and Celery's tasks.py)."""
    import pipelines.decision.runner as runner

    built: list[dict[str, object]] = []

    class Recording:
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(kwargs)

        def warm_up(self) -> None:
            pass

    monkeypatch.setattr(runner, "Certifier", Recording)
    monkeypatch.setattr(worker, "_CERTIFIER", None)  # put back (the session's real certifier) after the test
    worker.shared_certifier(CertificationSettings(light_challenge=setting))  # type: ignore[arg-type]
    assert [b["light_mode"] for b in built] == [mode]


def test_a_real_video_in_observe_mode_keeps_its_verdict_and_the_decision_records_the_light(
    ctx: ServiceContext, real_certifier: RememberingCertifier, data_dir: Path
) -> None:
    """The real pipeline on a real take (recorded without any colours: a face that cannot follow the sequence) in
    observe mode: the same verdict and reasons as without the sequence; the stored decision carries the light
    entry of the liveness result."""
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    video = (data_dir / LIVE_VIDEO).read_bytes()
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring, id_number=fields.id_number, name=fields.name)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        upload(db, ctx, s, UploadKind.ID_CARD, card, "image/jpeg", uuid.uuid4().hex)
        upload(db, ctx, s, UploadKind.VIDEO, video, "video/mp4", uuid.uuid4().hex, nonce=s.nonce)
        sid, actions, light = s.id, list(s.actions), s.light
    assert light is not None
    _run(ctx, real_certifier, sid)
    stored = _stored(ctx, sid)
    without = real_certifier.run(card, video, actions, fields.id_number, None, None, local_today(ctx.settings))
    assert stored.decision == without.decision.outcome.value == Outcome.ACCEPT.value
    assert stored.reasons == [r.value for r in without.decision.reasons]
    # The liveness result's light entry, stored with the decision: the session's sequence, what was measured.
    measured = (stored.result or {})["liveness"]["light"]
    assert measured["sequence"] == light and measured["mode"] == "observe", measured
    assert measured["status"] in {"seen", "not_seen", "flat", "too_short"}, measured
