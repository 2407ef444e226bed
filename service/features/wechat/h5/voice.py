"""Spoken prompts of the H5 pages: every prompt and result is also spoken in Mandarin.

The page speaks with the Web Speech API where the browser has a zh-CN voice; otherwise it plays
`/h5/audio/{key}`: the bureau's own recording `{key}.mp3` (or `.wav`) from the folder `h5_audio_dir` when
there is one, else a file generated from the text below by espeak-ng (Debian's free TTS) into
var_dir/h5-audio (on first request, or all at once with `python scripts/h5_audio.py`). The generated name
carries a hash of the text, so a changed prompt is spoken anew and never from a stale file."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import av
from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from pipelines.liveness.challenge import PROMPTS_ZH
from pipelines.reasons import MESSAGES_ZH
from service.adapters.http.deps import Ctx
from service.features.wechat.h5.vendor import HINTS
from service.infra.config import Settings

log = logging.getLogger(__name__)
router = APIRouter()

REASON = "reason_"  # the prefix of a reason code's prompt key

# The pinned prompt list: key → what is said (short: the text on screen stays longer).
PROMPTS: dict[str, str] = {
    "consent": "请阅读认证须知,同意后点下面的按钮。",
    "card": "请拍身份证人像面,四个角都拍进去。",
    "card_reading": "正在识别,请稍候。",
    "card_retake": "照片没拍好,请重新拍身份证。",
    "confirm": "是您本人吗?请核对姓名和身份证号。",
    "video": "请把脸放进框里,点开始录制。",
    # Said after "video" when the session carries a screen-light sequence (h5-capture.js): the colours only light a
    # face that is close to a bright screen (docs/wechat.md, "The screen-light challenge"). Also the page's text.
    "light": "录像时屏幕会变换颜色,请调亮屏幕,脸对准屏幕。",
    "uploading": "正在上传,请稍候。",
    # The capture page's wait and the result page's "正在核验": the essentials of their text (espeak-ng: ~10 s).
    "wait": "视频已保存,正在排队。不用重拍,结果会发微信消息。",
    # The result page: each heading of templates/result.html names its prompt (data-voice), so both say one thing.
    "accept": "认证通过。",
    "verified": "实名核验通过。",
    "consented": "家人已确认,绑定已生效。",
    "revoked": "认证已撤销,请重新认证。",
    "review": "已转人工审核,请等待通知。",
    "reject": "认证未通过,可以再试一次。",
    "reject_final": "认证未通过。",  # no try offered (the page offers none)
    "verify_reject": "实名核验未通过,可以再试一次。",
    "failed": "暂时无法完成核验,可以重新认证。",
    "retry": "工作人员请您重新录制视频。",
    "expired": "认证已超时,可以重新认证。",
    "timeout": "认证已超时,点继续认证。",
    # The daily limit names the way on that needs no video (the page's help.html link): on the last valid day a
    # request filed today shelters the person, a try tomorrow does not (docs/security.md Part DC).
    "limit": "今天的次数用完了。明天再试,或申请上门认证。",
    "verify_limit": "今天的核验次数用完了,明天再试。",  # a relative's own real-name check: no visit for that
    **{f"action_{key}": text for key, text in PROMPTS_ZH.items()},
    # The live face guidance's hints (service/features/wechat/h5/vendor.py).
    **{f"guide_{key}": text for key, text in HINTS.items()},
    # Each reason a citizen may read, in the words of its one home (pipelines/reasons.py MESSAGES_ZH): the result
    # page speaks its heading, then its reasons (templates/result.html), so the reason on screen is heard too.
    **{f"{REASON}{code.value.lower()}": f"{text}。" for code, text in MESSAGES_ZH.items()},
}

# What every page carries (body data-voice): the reasons' prompts only on the result page, the one page that lists
# reasons (result_view.result_context), which they would otherwise triple the size of on every page.
PAGE_PROMPTS: dict[str, str] = {key: text for key, text in PROMPTS.items() if not key.startswith(REASON)}


def reason_key(code: str) -> str | None:
    """The prompt key that speaks reason `code` (a citizen message of pipelines/reasons.py); None for a code with
    none (the service's own codes: the page shows their text, unspoken)."""
    key = f"{REASON}{code.lower()}"
    return key if key in PROMPTS else None


MEDIA_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav"}
ESPEAK = "espeak-ng"
VOICE = "cmn"  # espeak-ng's Mandarin


def cache_dir(settings: Settings) -> Path:
    return settings.var_dir / "h5-audio"


def generated_path(settings: Settings, key: str) -> Path:
    digest = hashlib.sha256(PROMPTS[key].encode()).hexdigest()[:10]
    return cache_dir(settings) / f"{key}-{digest}.mp3"


def _to_mp3(wav: Path, out: Path) -> None:
    """Mono MP3 at 24 kbit/s (speech): a few KB a prompt, and every phone browser plays it."""
    with av.open(str(wav)) as src, av.open(str(out), "w", format="mp3") as dst:
        stream = dst.add_stream("libmp3lame", rate=22050, layout="mono")
        stream.bit_rate = 24_000
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)


def generate(settings: Settings, key: str) -> Path | None:
    """The generated file of `key`, made now if missing; None where espeak-ng is not installed."""
    out = generated_path(settings, key)
    if out.exists():
        return out
    if shutil.which(ESPEAK) is None:
        log.warning("h5 voice: %s is not installed; no audio for %s", ESPEAK, key)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        wav, mp3 = Path(tmp) / "p.wav", Path(tmp) / "p.mp3"
        subprocess.run([ESPEAK, "-v", VOICE, "-s", "140", "-w", str(wav), PROMPTS[key]], check=True, timeout=30)
        _to_mp3(wav, mp3)
        os.replace(mp3, out)  # atomic: a concurrent request sees the whole file or none
    return out


def bureau_file(settings: Settings, key: str) -> Path | None:
    folder = settings.h5.audio_dir
    if folder is None:
        return None
    for suffix in MEDIA_TYPES:
        path = folder / f"{key}{suffix}"
        if path.is_file():
            return path
    return None


def audio_file(settings: Settings, key: str) -> Path | None:
    """The bureau's recording of `key` if it has one, else the generated one."""
    return bureau_file(settings, key) or generate(settings, key)


@router.get("/audio/{key}")
def audio(ctx: Ctx, key: str) -> Response:
    if key not in PROMPTS:
        return Response(status_code=404)
    path = audio_file(ctx.settings, key)
    if path is None:
        return Response(status_code=404)
    # Public, the same for everyone: phones may keep it for a day.
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)
