"""The demo kit: a matching ID card + selfie video pair made from the development data, and `serve --demo`.

No shipped ID card shows the person of any shipped video, so nothing could be certified end to end on the
development material. The kit renders a card (with the ID-card stage's own generator) around the face of a real
selfie video, and puts beside it that video and a one-row roster: `pension-cert certify` accepts the pair
offline, and `serve --demo` (fixed challenge: the actions the video performs) imports the roster so that the
curl walk-through of docs/service.md (scripts/demo_walkthrough.sh) certifies it over HTTP.
"""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from service.infra.config import Settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

DEMO_VIDEO = "spoof/videos/apfol_real2.webm"  # real webcam video with blinks and head turns
DEMO_ACTIONS = ["turn_left", "turn_right", "nod"]
DEMO_EXTERNAL_ID = "DEMO-0001"
KIT_VERSION = 1  # bump when the kit's content changes: an older kit on disk is then rebuilt


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


@dataclass(frozen=True)
class DemoKit:
    """Where the kit's files are and what they contain (kit.json beside them says the same)."""

    dir: str
    card: str
    video: str
    roster: str
    external_id: str
    id_number: str
    name: str
    actions: list[str]
    version: int = KIT_VERSION


def data_dir_or_none() -> Path | None:
    """The development data (PENSION_CERT_DATA_DIR, else ../shared/data), or None outside that layout."""
    env = os.environ.get("PENSION_CERT_DATA_DIR")  # env: development data, not a service setting
    path = Path(env) if env else Path("../shared/data")
    return path if (path / DEMO_VIDEO).is_file() else None


def write_kit(data_dir: Path, out_dir: Path) -> DemoKit:
    """Render the kit into `out_dir` (card.jpg, selfie.webm, roster.csv, kit.json); a current kit is kept."""
    manifest = out_dir / "kit.json"
    if manifest.is_file():
        kit = DemoKit(**json.loads(manifest.read_text(encoding="utf-8")))
        if kit.version == KIT_VERSION and all(Path(p).is_file() for p in (kit.card, kit.video, kit.roster)):
            return kit
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir.resolve()  # kit.json names its files wherever it is read from
    card, fields = sample_card(data_dir)
    video = out_dir / ("selfie" + Path(DEMO_VIDEO).suffix)
    shutil.copyfile(data_dir / DEMO_VIDEO, video)
    (out_dir / "card.jpg").write_bytes(card)
    roster = out_dir / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(
            [
                ["external_id", "id_number", "name", "benefit_types"],
                [DEMO_EXTERNAL_ID, fields.id_number, fields.name, "enterprise_pension"],
            ]
        )
    kit = DemoKit(
        dir=str(out_dir),
        card=str(out_dir / "card.jpg"),
        video=str(video),
        roster=str(roster),
        external_id=DEMO_EXTERNAL_ID,
        id_number=fields.id_number,
        name=fields.name,
        actions=list(DEMO_ACTIONS),
    )
    manifest.write_text(json.dumps(asdict(kit), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log.info("demo kit written to %s", out_dir)
    return kit


def import_roster(base: str, admin_key: str, kit: DemoKit) -> dict[str, Any]:
    """Import the kit's one-row roster (an operator action; idempotent: an unchanged row counts as unchanged)."""
    import httpx

    with Path(kit.roster).open("rb") as fh:
        r = httpx.post(
            base + "/api/v1/roster", files={"file": ("roster.csv", fh, "text/csv")}, headers={"X-API-Key": admin_key}
        )
    r.raise_for_status()
    report: dict[str, Any] = r.json()
    return report


def prepare_when_up(base: str, settings: Settings, kit: DemoKit, ready: Callable[[DemoKit], None]) -> None:
    """Once the API answers: import the kit's beneficiary, then say what to try. Runs in a daemon thread of
    `serve --demo`; a failure is logged and never takes the server down."""
    import httpx

    for _ in range(600):
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        admin = (
            settings.security.admin_api_keys[0] if settings.security.admin_api_keys else settings.security.api_keys[0]
        )
        import_roster(base, admin, kit)
    except (httpx.HTTPError, OSError) as exc:
        log.error("demo: importing %s failed: %s", kit.roster, exc)
        return
    ready(kit)
