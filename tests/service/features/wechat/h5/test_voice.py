"""Spoken prompts: every prompt key of the pinned list has audio (espeak-ng's, generated on first request into
var_dir), a bureau's own recording replaces a key's, and every key the page speaks is on the list."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import av
import pytest

from pipelines.liveness.challenge import PROMPTS_ZH
from service.features.wechat.h5 import voice
from service.features.wechat.h5.pages import HERE
from tests.service.features.wechat.h5.conftest import App


def test_espeak_ng_is_installed() -> None:
    # Not a skip: without it no key has audio (scripts/setup.sh installs it).
    assert shutil.which(voice.ESPEAK) is not None, "espeak-ng is missing: run scripts/setup.sh"


def duration_s(path: Path) -> float:
    with av.open(str(path)) as c:
        return sum(float(f.samples) / f.sample_rate for f in c.decode(audio=0))


def test_every_prompt_key_has_audio(app: App) -> None:
    for key in voice.PROMPTS:
        r = app.client.get(f"/h5/audio/{key}")
        assert r.status_code == 200, key
        assert r.headers["content-type"] == "audio/mpeg", key
        assert 1_000 < len(r.content) < 60_000, (key, len(r.content))  # a few KB: speech, not silence
    for key in voice.PROMPTS:  # real speech of a plausible length for its text
        path = voice.generated_path(app.ctx.settings, key)
        assert 0.5 < duration_s(path) < 12, key


def test_the_challenge_actions_and_the_steps_of_the_page_are_all_on_the_list() -> None:
    """The page speaks `action_<a>` for each challenge action and one key per step (h5-page.js STEP_VOICE)."""
    assert {f"action_{a}" for a in PROMPTS_ZH} <= set(voice.PROMPTS)
    js = "".join(f.read_text() for f in sorted((HERE / "static").glob("h5*.js")))  # the script, all its parts
    spoken = set(re.findall(r'speak\("([a-z_]+)"\)', js))
    steps = re.search(r"STEP_VOICE = \{(.*?)\};", js, re.S)
    assert steps is not None
    spoken |= set(re.findall(r':\s*"([a-z_]+)"', steps.group(1)))
    assert {"card", "confirm", "video", "card_retake", "uploading"} <= spoken
    assert spoken <= set(voice.PROMPTS), spoken - set(voice.PROMPTS)
    for decision in ("accept", "review", "reject", "wait"):  # the result page speaks its decision
        assert decision in voice.PROMPTS


def test_a_bureau_recording_replaces_the_generated_prompt(app: App, tmp_path: Path) -> None:
    own = tmp_path / "recordings"
    own.mkdir()
    (own / "accept.wav").write_bytes(b"RIFF-bureau-recording")
    app.ctx.settings.h5.audio_dir = own
    r = app.client.get("/h5/audio/accept")
    assert r.status_code == 200 and r.content == b"RIFF-bureau-recording"
    assert r.headers["content-type"] == "audio/wav"
    assert app.client.get("/h5/audio/reject").headers["content-type"] == "audio/mpeg"  # others: generated


def test_an_unknown_key_is_not_found(app: App) -> None:
    assert app.client.get("/h5/audio/not_a_prompt").status_code == 404
    assert app.client.get("/h5/audio/..%2Fh5.db").status_code == 404


def test_a_changed_prompt_text_is_a_new_file(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    before = voice.generated_path(app.ctx.settings, "accept")
    monkeypatch.setitem(voice.PROMPTS, "accept", "认证通过了。")
    assert voice.generated_path(app.ctx.settings, "accept") != before
