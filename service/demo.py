"""`pension-cert serve --demo`: once the API is up, certify a sample pensioner against it over HTTP.

The sample is built from the development data: an ID card rendered (by the ID-card stage's generator) around
the face of a real selfie video, and that video. The result is printed as one JSON line on stdout.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from service.config import Settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

DEMO_VIDEO = "spoof/videos/apfol_real2.webm"  # real webcam video with blinks and head turns
DEMO_ACTIONS = ["turn_left", "turn_right", "nod"]


def video_frame(path: Path, t: float) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= t:
                return np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
    raise ValueError(f"{path} has no frame at {t}s")


def sample_card(data_dir: Path, video_rel: str = DEMO_VIDEO, seed: int = 7, t: float = 0.5) -> tuple[bytes, Any]:
    """A photographed ID card whose portrait is the face in the video at `t`: (JPEG bytes, card fields)."""
    from pipelines.id_card.synthetic import PhotoConfig, photograph, portrait_from_face, random_fields, render_card

    frame = video_frame(data_dir / video_rel, t)
    h, w = frame.shape[:2]
    # The face sits in the middle of these selfie videos: a centred crop frames it like an ID photo.
    crop = frame[int(h * 0.05) : int(h * 0.95), int(w * 0.2) : int(w * 0.8)]
    rng = np.random.default_rng(seed)
    fields = random_fields(rng)
    flat = render_card(fields, portrait_from_face(crop), data_dir)
    mild = PhotoConfig(any_rotation=False, max_blur_sigma=0.5, glare_prob=0.0, shadow_prob=0.0)
    image, _, _ = photograph(flat, rng, mild, rotation=2.0)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes(), fields


def upload_media(
    c: httpx.Client,
    session: dict[str, Any],
    card: bytes,
    video: bytes,
    video_name: str = "selfie.webm",
    video_type: str = "video/webm",
) -> dict[str, str]:
    """Upload the card photo and the challenge video of a session just opened (the JSON of POST /sessions);
    returns the session's Authorization header for the status and result calls."""
    auth = {"Authorization": f"Bearer {session['token']}"}
    sid = session["session_id"]
    c.post(
        f"/api/v1/sessions/{sid}/id-card",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        files={"file": ("card.jpg", card, "image/jpeg")},
    ).raise_for_status()
    c.post(
        f"/api/v1/sessions/{sid}/video",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        files={"file": (video_name, video, video_type)},
        data={"nonce": session["challenge"]["nonce"]},
    ).raise_for_status()
    return auth


def run_demo(
    base: str, api_key: str, data_dir: Path, external_id: str = "DEMO-0001", admin_key: str | None = None
) -> dict[str, Any]:
    """Import the sample into the roster (an operator action: `admin_key`), then certify it as a channel
    (`api_key`) would."""
    import httpx

    card, fields = sample_card(data_dir)
    video = (data_dir / DEMO_VIDEO).read_bytes()
    with httpx.Client(base_url=base, headers={"X-API-Key": api_key}, timeout=60) as c:
        buf = io.StringIO()
        csv.writer(buf).writerows(
            [
                ["external_id", "id_number", "name", "benefit_types"],
                [external_id, fields.id_number, fields.name, "enterprise_pension"],
            ]
        )
        c.post(
            "/api/v1/roster",
            files={"file": ("demo.csv", buf.getvalue().encode(), "text/csv")},
            headers={"X-API-Key": admin_key or api_key},
        ).raise_for_status()
        s = c.post("/api/v1/sessions", json={"external_id": external_id, "template_consent": True})
        s.raise_for_status()
        session = s.json()
        sid = session["session_id"]
        auth = upload_media(c, session, card, video)
        t0 = time.monotonic()
        while True:
            res = c.get(f"/api/v1/sessions/{sid}/result", headers=auth).json()
            if res["state"] in ("decided", "failed") or time.monotonic() - t0 > 300:
                break
            time.sleep(0.5)
        out: dict[str, Any] = {
            "session_id": sid,
            "state": res["state"],
            "decision": res["decision"],
            "reasons": res["reasons"],
            "scores": (res.get("result") or {}).get("scores"),
            "seconds": round(time.monotonic() - t0, 2),
        }
        if res["decision"] == "accept":
            cert = c.get(f"/api/v1/sessions/{sid}/certificate", headers=auth).json()
            out["certificate"] = {"valid_until": cert["valid_until"], "verify_url": cert["verify_url"]}
        return out


def run_demo_when_up(base: str, settings: Settings) -> None:
    import httpx

    data_dir = Path(os.environ.get("PENSION_CERT_DATA_DIR", "../shared/data"))
    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        admin = settings.admin_api_keys[0] if settings.admin_api_keys else None
        result = run_demo(base, settings.api_keys[0], data_dir, admin_key=admin)
    except httpx.HTTPStatusError as exc:
        # E.g. VIDEO_DUPLICATE when the demo already ran on this database: the refusal is the answer.
        result = {"demo": "refused", "status": exc.response.status_code, **exc.response.json()}
    except Exception as exc:  # the demo must never take the server down
        log.exception("demo certification failed")
        result = {"demo": "failed", "error": str(exc)}
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
