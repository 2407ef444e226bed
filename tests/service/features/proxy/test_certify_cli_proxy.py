"""`pension-cert certify --proxy-operator-video`: the offline proxy decision, on real dev media."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.adapters.cli import main
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, SPOOF_VIDEO, card_for_video

pytestmark = pytest.mark.slow

OTHER_VIDEO = "spoof/videos/lestari15_real.mp4"


def certify(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["certify", "--challenge", ",".join(LIVE_ACTIONS), *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    return out


def test_operator_filming_themselves_and_a_genuine_first_proxy(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The elder is OTHER_VIDEO's person; the operator (LIVE_VIDEO's person) films themselves.
    card, fields = card_for_video(data_dir, OTHER_VIDEO)
    (tmp_path / "elder.jpg").write_bytes(card)
    out = certify(
        capsys,
        "--id-card",
        str(tmp_path / "elder.jpg"),
        "--video",
        str(data_dir / LIVE_VIDEO),
        "--beneficiary-id",
        fields.id_number,
        "--proxy-operator-video",
        str(data_dir / SPOOF_VIDEO),
    )
    assert out["decision"] == "reject" and "PROXY_OPERATOR_FACE" in out["reasons"]
    assert out["operator_match"] >= out["thresholds"]["operator_reject"]
    assert out["scores"]["operator_match"] == pytest.approx(out["operator_match"], abs=1e-5)

    # The genuine elder in front of the camera, the operator someone else: first proxy → staff review.
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    (tmp_path / "elder2.jpg").write_bytes(card)
    args = [
        "--id-card",
        str(tmp_path / "elder2.jpg"),
        "--video",
        str(data_dir / LIVE_VIDEO),
        "--beneficiary-id",
        fields.id_number,
        "--proxy-operator-video",
        str(data_dir / OTHER_VIDEO),
    ]
    first = certify(capsys, *args, "--proxy-first")
    assert first["decision"] == "review" and first["operator_match"] < first["thresholds"]["operator_review"]
    assert first["scores"]["card_similarity"] >= first["thresholds"]["face_accept"]
    later = certify(capsys, *args)
    # Later proxy certifications accept only above the stricter proxy threshold.
    expected = "accept" if first["scores"]["card_similarity"] >= later["thresholds"]["proxy_face_accept"] else "review"
    assert later["decision"] == expected and "operator_match" in later


def test_proxy_first_needs_the_operator_video(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = str(data_dir / LIVE_VIDEO)
    code = main(["certify", "--id-card", video, "--video", video, "--proxy-first"])
    assert code != 0 and "--proxy-operator-video" in capsys.readouterr().err
