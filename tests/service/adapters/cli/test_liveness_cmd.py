"""`pension-cert liveness` on real dev videos: one JSON object, batch JSON lines, coded errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.adapters.cli import main


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_single_video_with_challenge(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = data_dir / "videos/liveportrait_driving_d13.mp4"
    assert main(["liveness", str(video), "--challenge", "blink"]) == 0
    (out,) = _lines(capsys)
    assert out["passed"] is True
    assert isinstance(out["passive_score"], float) and out["passive_score"] > 0.6
    actions = out["actions"]
    assert isinstance(actions, list) and actions[0]["name"] == "blink" and actions[0]["detected"] is True
    assert isinstance(actions[0]["t"], float)
    assert out["reasons"] == [] and isinstance(out["frames_analyzed"], int)
    # One name for the Chinese messages across outputs; the ~3 KB of frame hashes only with -v.
    assert out["messages"] == [] and "messages_zh" not in out
    assert "frame_hashes" not in out and len(json.dumps(out)) < 6000
    assert main(["-v", "liveness", str(video), "--challenge", "blink"]) == 0
    (verbose,) = _lines(capsys)
    hashes = verbose["frame_hashes"]
    assert isinstance(hashes, list) and len(hashes) >= 5
    assert all(isinstance(h, str) and len(h) == 64 and int(h, 16) >= 0 for h in hashes)
    assert {k: v for k, v in verbose.items() if k not in ("frame_hashes", "timings_ms")} == {
        k: v for k, v in out.items() if k != "timings_ms"
    }


def test_batch_loads_models_once_and_reports_each(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "batch.csv"
    root = tmp_path / "root"
    root.mkdir()
    # A still photo renamed .mp4.
    (root / "photo.mp4").write_bytes((data_dir / "spoof/images/frames/apfol_real2_f00_t0.73.jpg").read_bytes())
    (root / "fake.mp4").write_bytes((data_dir / "spoof/videos/lestari15_fake.mp4").read_bytes())
    (root / "real.mp4").write_bytes((data_dir / "spoof/videos/lestari15_real.mp4").read_bytes())
    csv_path.write_text(
        "path,challenge\nreal.mp4,\nfake.mp4,\nphoto.mp4,blink\nreal.mp4,open_mouth\n", encoding="utf-8"
    )
    assert main(["liveness", "--batch", str(csv_path), "--root", str(root)]) == 0
    real, fake, photo, real_again = _lines(capsys)
    assert real["passed"] is True
    assert fake["passed"] is False and "SPOOF_SUSPECTED" in fake["reasons"]  # type: ignore[operator]
    assert isinstance(fake["messages"], list) and len(fake["messages"]) == len(fake["reasons"])  # type: ignore[arg-type]
    assert photo["passed"] is False and photo["error"] == "MEDIA_UNSUPPORTED"
    # One checker for the batch: the second submission of the same file is a duplicate.
    assert "VIDEO_DUPLICATE" in real_again["reasons"]  # type: ignore[operator]
    assert "CHALLENGE_MISSING_ACTION" in real_again["reasons"]  # type: ignore[operator]


def test_corrupt_video_exits_with_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    assert main(["liveness", str(bad)]) == 2
    assert "MEDIA_CORRUPT" in capsys.readouterr().err


def test_unknown_action_is_rejected(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["liveness", str(data_dir / "videos/liveportrait_driving_d0.mp4"), "--challenge", "smile"]) == 2
    assert "smile" in capsys.readouterr().err


def test_light_flag_reports_the_response_and_enforce_asks_for_a_retake(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--light`: the colours the page showed. This real clip was filmed with no screen light: in observe mode the
    response is reported and the verdict is the one without `--light`; in enforce mode it asks for a retake."""
    video = str(data_dir / "videos/liveportrait_driving_d13.mp4")
    colours = "red,blue,green,white,red,green"
    assert main(["liveness", video]) == 0
    (plain,) = _lines(capsys)
    assert plain["light"] is None
    assert main(["liveness", video, "--light", colours]) == 0
    (observed,) = _lines(capsys)
    light = observed["light"]
    assert isinstance(light, dict) and light["status"] == "not_seen" and light["mode"] == "observe"
    assert light["sequence"]["colours"] == colours.split(",")
    assert (observed["verdict"], observed["reasons"]) == (plain["verdict"], plain["reasons"]) == ("pass", [])
    assert set(observed) == set(plain)  # every field of the contract kept
    assert main(["liveness", video, "--light", colours, "--light-mode", "enforce"]) == 0
    (enforced,) = _lines(capsys)
    assert (enforced["verdict"], enforced["driver"], enforced["reasons"]) == ("retake", "light", ["LIGHT_NOT_SEEN"])
    assert enforced["passed"] is False
    assert enforced["messages"] == ["未看到屏幕颜色照在脸上,请在室内、调亮手机屏幕、脸靠近屏幕后重拍"]


def test_a_bad_light_sequence_is_a_usage_error_before_any_model_loads(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = str(data_dir / "videos/liveportrait_driving_d13.mp4")
    card = str(data_dir / "idcard/synthetic/card_000.jpg")
    for args, text in (
        (["liveness", video, "--light", "purple,red"], "unknown light colour(s) ['purple']"),
        (["certify", "--id-card", card, "--video", video, "--light", "red"], "a light sequence has 2..12 colours"),
    ):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "BAD_LIGHT: " in err and text in err and "Traceback" not in err, err
