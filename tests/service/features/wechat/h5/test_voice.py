"""Spoken prompts: every prompt key of the pinned list has audio (espeak-ng's, generated on first request into
var_dir), a bureau's own recording replaces a key's, and every key the page speaks is on the list."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import av
import pytest

from pipelines.liveness.challenge import PROMPTS_ZH
from pipelines.reasons import MESSAGES_ZH
from service.certification import attempts
from service.certification.models import Beneficiary, Certification, Channel, utcnow
from service.certification.sessions import create_session
from service.features.proxy.models import ProxySession, ProxySessionKind
from service.features.wechat.h5 import identity, voice
from service.features.wechat.h5.pages import HERE
from service.features.wechat.models import WeChatSessionLink
from tests.service import factories
from tests.service.features.wechat.h5.conftest import OPENID, App


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
    for key, text in voice.PROMPTS.items():  # real speech of a plausible length for its text
        path = voice.generated_path(app.ctx.settings, key)
        # espeak-ng says about two characters a second: a reason's full message (up to 35) takes longer than 12 s
        assert 0.5 < duration_s(path) < max(12, len(text) / 2), key


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


def test_every_prompt_a_result_heading_names_is_on_the_list() -> None:
    """h5.js speaks the key the result page's heading names (data-voice): every key of every branch is a prompt."""
    html = (HERE / "templates" / "result.html").read_text()
    named = re.findall(r'data-voice="([^"]+)"', html)
    # A plain key, or the quoted keys of an expression ({{ 'limit' if limit else 'failed' }}).
    keys = {k for attr in named for k in (re.findall(r"'([a-z_]+)'", attr) if "{{" in attr else [attr])}
    assert keys >= {"wait", "accept", "verified", "consented", "revoked", "review", "reject", "failed", "retry"}
    assert keys <= set(voice.PROMPTS), keys - set(voice.PROMPTS)
    js = (HERE / "static" / "h5.js").read_text()
    assert "dataset.voice" in js and "dataset.decision" not in js  # spoken from the heading, not the decision


def _result(app: App, openid: str = OPENID, **fields: Any) -> str:
    """A self session of the app's person, opened from `openid` as the H5 pages open one, then in `fields`."""
    with app.ctx.db() as db:
        b = db.get(Beneficiary, app.beneficiary_id)
        assert b is not None
        s = create_session(db, app.ctx, b, Channel.SELF, False, attempts.wechat_requester(app.ctx, openid)).session
        for name, value in {"state": "decided", "decided_at": utcnow(), **fields}.items():
            setattr(s, name, value)
        db.add(WeChatSessionLink(session_id=s.id, openid=openid))
        db.commit()
        return s.id


def _family_accept(app: App, kind: ProxySessionKind) -> str:
    """An accepted verification (no person) or consent session of a relative, linked to OPENID."""
    with app.ctx.db() as db:
        op, binding = factories.relative_binding(db, app.beneficiary_id, status="pending_consent")
        person = None if kind is ProxySessionKind.VERIFICATION else app.beneficiary_id
        s = factories.session_row(person, state="decided", decision="accept", decided_at=utcnow())
        db.add(s)
        db.flush()
        db.add(ProxySession(session_id=s.id, kind=kind.value, operator_id=op.id, binding_id=binding.id))
        db.add(WeChatSessionLink(session_id=s.id, openid=OPENID))
        db.commit()
        return s.id


def _revoked(app: App) -> str:
    sid = _result(app, decision="accept")
    with app.ctx.db() as db:
        day = dt.date(2026, 3, 1)
        db.add(
            Certification(
                beneficiary_id=app.beneficiary_id,
                session_id=sid,
                certified_on=day,
                valid_until=day + dt.timedelta(days=365),
                code="code-" + sid,
                revoked_at=utcnow(),
                revoked_by="staff:sup1",
                revoke_reason="wrong_accept",
            )
        )
        db.commit()
    return sid


def test_each_result_heading_speaks_what_it_shows(app: App) -> None:
    """The page spoke a prompt picked from the decision alone: 认证通过 over 认证已撤销, 可以再试一次 over a server
    failure, a timeout and the daily limit, nothing for a staff retake. Each branch now names its own prompt: the
    word that matters is in the page and in what is said."""
    retake = {"machine_decision": "review", "decision": "retry"}  # as the console's retake request writes it
    staff_retry: dict[str, Any] = {"decision": "retry", "result": {"review": retake}}
    cases = {
        "accept": (_result(app, decision="accept"), "accept", "认证通过"),
        "reject": (_result(app, decision="reject", reasons=["FACE_MISMATCH"]), "reject", "认证未通过"),
        "revoked": (_revoked(app), "revoked", "撤销"),
        "failed": (_result(app, state="failed"), "failed", "暂时无法完成核验"),
        "expired": (_result(app, state="expired"), "expired", "超时"),
        "retry": (_result(app, **staff_retry), "retry", "重新录制视频"),
        "verification": (_family_accept(app, ProxySessionKind.VERIFICATION), "verified", "实名核验通过"),
        "consent": (_family_accept(app, ProxySessionKind.CONSENT), "consented", "家人已确认"),
    }
    for case, (sid, key, word) in cases.items():
        page = app.client.get(f"/h5/result/{sid}")
        assert page.status_code == 200, (case, page.text)
        m = re.search(r"<h1[^>]*data-voice=\"([a-z_]+)\"", page.text)
        assert m is not None and m.group(1) == key, (case, m and m.group(1))
        assert word in page.text and word in voice.PROMPTS[key], (case, voice.PROMPTS[key])
    assert "通过" not in voice.PROMPTS["revoked"]
    # The daily limit (3 failures a day here): the last reject's page says 明天, and so does its prompt.
    other = "openid-limit"  # the failures above count against OPENID's tries
    last = [_result(app, other, decision="reject", reasons=["CAPTURE_TOO_DARK"]) for _ in range(3)][-1]
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, other))
    page = app.client.get(f"/h5/result/{last}").text
    m = re.search(r"<h1[^>]*data-voice=\"([a-z_]+)\"", page)
    assert m is not None and m.group(1) == "limit" and 'id="limit"' in page
    assert "明天" in voice.PROMPTS["limit"] and "再试一次" not in voice.PROMPTS["limit"]
    # Before: "明天再试" alone; the screen offers a home visit (help.html), and on the last valid day only a request
    # filed today shelters the person (Part DC). The voice names it too.
    assert "上门认证" in voice.PROMPTS["limit"] and 'href="/h5/apply/' in page
    # Then the reason on screen, spoken after the heading (before: never spoken).
    assert _spoken_reasons(page) == [("reason_capture_too_dark", "光线太暗,请到明亮处重拍")]
    assert _page_prompts(page)["reason_capture_too_dark"] == "光线太暗,请到明亮处重拍。"  # what h5-page.js says
    assert not [k for k in _page_prompts(app.client.get("/h5/").text) if k.startswith("reason_")]  # result page only
    app.client.cookies.set(identity.COOKIE, identity.mint(app.ctx, OPENID))
    reject = app.client.get(f"/h5/result/{cases['reject'][0]}").text
    assert _spoken_reasons(reject) == [("reason_face_mismatch", "人脸与证件照片不一致")]


def _page_prompts(page: str) -> dict[str, str]:
    """The prompts a page carries (body data-voice), key → text: the page speaks only these."""
    m = re.search(r"<body data-voice='([^']*)'", page)
    assert m is not None, "no prompts on the page"
    prompts: dict[str, str] = json.loads(html.unescape(m.group(1)))
    return prompts


def _spoken_reasons(page: str) -> list[tuple[str, str]]:
    """The reasons a result page lists, each with the prompt key its item names (h5.js speaks them after the
    heading, in order)."""
    m = re.search(r'<ul class="list" id="reasons">(.*?)</ul>', page, re.S)
    assert m is not None, "no reasons listed"
    items = re.findall(r"<li([^>]*)>([^<]*)</li>", m.group(1))
    return [("".join(re.findall(r'data-voice="([a-z_]+)"', attrs)), text) for attrs, text in items]


def test_every_citizen_reason_has_a_prompt_in_its_own_words() -> None:
    """Each reason of the one home of citizens' messages (pipelines/reasons.py) is on the pinned list, generated
    from its text (a changed message is a changed prompt, and a new file: generated_path hashes the text)."""
    for code, text in MESSAGES_ZH.items():
        key = voice.reason_key(code)
        assert key is not None and voice.PROMPTS[key].rstrip("。") == text, code
    assert voice.reason_key("RATE_LIMITED") is None  # a service code: shown, not spoken
    # That the page says them, heading first: test_h5_accessibility.py, test_a_failed_result_speaks_its_heading_…
