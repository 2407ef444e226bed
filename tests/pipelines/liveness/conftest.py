"""Fixtures of the liveness tests: models loaded once; composed videos written once per session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.packs import ModelPack, load_pack
from pipelines.face_match import FaceMatcher
from pipelines.liveness import LivenessChecker, LivenessConfig
from tests.pipelines.liveness.videos import fit, read_frames, side_by_side, write_video

LABELS_PATH = Path(__file__).with_name("data") / "action_labels.json"


@pytest.fixture(scope="session")
def pack(models_dir: Path) -> ModelPack:
    return load_pack("default")


@pytest.fixture(scope="session")
def matcher(pack: ModelPack) -> FaceMatcher:
    return FaceMatcher(pack)


@pytest.fixture
def checker(pack: ModelPack, matcher: FaceMatcher) -> LivenessChecker:
    """A fresh checker (a fresh in-memory video store) sharing the session's loaded models."""
    return LivenessChecker(pack, LivenessConfig(), matcher=matcher)


@pytest.fixture(scope="session")
def shared_checker(pack: ModelPack, matcher: FaceMatcher) -> LivenessChecker:
    """For tests that only read results: no duplicate-video memory across tests."""
    return LivenessChecker(pack, LivenessConfig(check_duplicates=False), matcher=matcher)


@pytest.fixture(scope="session")
def action_labels() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(LABELS_PATH.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


@pytest.fixture(scope="session")
def spoof_videos(data_dir: Path) -> Path:
    return data_dir / "spoof" / "videos"


@pytest.fixture(scope="session")
def composed(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """Videos made from the dev videos: rotated phone video, two faces, face swap, no face, short, image."""
    out = tmp_path_factory.mktemp("liveness_videos")
    real = read_frames(data_dir / "spoof/videos/lestari15_real.mp4", 0.0, 3.0)
    s18 = read_frames(data_dir / "videos/liveportrait_source_s18.mp4", 0.0, 3.0)
    d13 = read_frames(data_dir / "videos/liveportrait_driving_d13.mp4", 0.0, 3.0)
    d0 = read_frames(data_dir / "videos/liveportrait_driving_d0.mp4", 0.0, 3.0)
    h, w = real[0].shape[:2]
    videos = {
        # A phone records sideways and stores "rotate by 90°" in the display matrix.
        "rotated": write_video(out / "rotated.mp4", [np.rot90(f, k=-1) for f in real], rotation=90),
        "two_faces": write_video(out / "two_faces.mp4", side_by_side(s18, d13)),
        # First half one person, second half another: a swap mid-video.
        "swap": write_video(out / "swap.mp4", fit(d13[:45], 360, 640) + fit(d0[:45], 360, 640)),
        # The wall next to the person: a video with no face.
        "no_face": write_video(out / "no_face.mp4", [np.ascontiguousarray(f[:, : w // 4]) for f in real]),
        "short": write_video(out / "short.mp4", real[:24]),
        # The person walks out after 1.5 s: the rest shows only the wall.
        "face_leaves": write_video(
            out / "face_leaves.mp4", real[:45] + fit([np.ascontiguousarray(f[:, : w // 4]) for f in real[45:]], w, h)
        ),
    }
    image = data_dir / "spoof/images/frames/apfol_real2_f00_t0.73.jpg"
    renamed = out / "photo.mp4"
    renamed.write_bytes(image.read_bytes())
    videos["image_renamed"] = renamed
    return videos
