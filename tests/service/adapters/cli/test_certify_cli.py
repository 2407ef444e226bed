"""`pension-cert certify` (stable contract): one JSON object with decision, reasons and scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.adapters.cli import main
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object] | None, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.strip()]
    return code, (json.loads(lines[0]) if lines else None), err


def test_certify_matching_card_and_video(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    card_path = tmp_path / "card.jpg"
    card_path.write_bytes(card)
    video = str(data_dir / LIVE_VIDEO)
    args = ["certify", "--id-card", str(card_path), "--video", video, "--challenge", ",".join(LIVE_ACTIONS)]
    code, out, _ = run(capsys, *args, "--beneficiary-id", fields.id_number)
    assert code == 0 and out is not None
    assert out["decision"] == "accept" and out["reasons"] == []
    assert set(out) >= {"decision", "reasons", "scores", "thresholds", "model_versions"}

    code, out, _ = run(capsys, *args, "--beneficiary-id", "11010519491231002X")
    assert code == 0 and out is not None and out["decision"] == "reject" and out["reasons"] == ["ID_NUMBER_MISMATCH"]


def test_certify_bad_input_is_a_message_not_a_traceback(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = str(data_dir / "idcard/synthetic/card_000.jpg")
    code, out, err = run(capsys, "certify", "--id-card", card, "--video", card)  # an image as the video
    assert code == 2 and out is None and "MEDIA_UNSUPPORTED" in err and "Traceback" not in err
    code, out, err = run(
        capsys, "certify", "--id-card", card, "--video", str(data_dir / LIVE_VIDEO), "--challenge", "jump"
    )
    assert code == 2 and "unknown action" in err
    code, _, err = run(capsys, "certify", "--id-card", str(tmp_path / "none.jpg"), "--video", card)
    assert code == 2 and "no such file" in err


def test_certify_reports_the_light_response_and_enforces_it_when_asked(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--light`: the clip was filmed with no screen light. Observed, the decision is the one without it (the
    stage's `light` in --full); enforced, the liveness stage asks for a retake and the decision does not accept."""
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    card_path = tmp_path / "card.jpg"
    card_path.write_bytes(card)
    video = str(data_dir / LIVE_VIDEO)
    args = ["certify", "--id-card", str(card_path), "--video", video, "--challenge", ",".join(LIVE_ACTIONS)]
    args += ["--beneficiary-id", fields.id_number, "--light", "red,blue,green,white,red,green"]
    code, out, _ = run(capsys, *args, "--full")
    assert code == 0 and out is not None and (out["decision"], out["reasons"]) == ("accept", [])
    live = out["liveness"]
    assert isinstance(live, dict) and live["light"]["mode"] == "observe"
    assert live["light"]["status"] in ("not_seen", "too_short")
    code, out, _ = run(capsys, *args, "--light-mode", "enforce")
    assert code == 0 and out is not None and out["decision"] == "reject" and out["reasons"] == ["LIGHT_NOT_SEEN"]
