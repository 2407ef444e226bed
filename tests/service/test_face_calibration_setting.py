"""The face-match calibration file named in the settings reaches the worker's matcher, whether the settings come
from the environment or are built in code (a deployment's own, stricter thresholds must decide its sessions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import service.adapters.workers.worker as worker
from pipelines.decision import Outcome
from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH, ENV_CALIBRATION
from service.adapters.workers.worker import shared_certifier
from tests.service.conftest import make_settings
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video

STRICT_ACCEPT = 0.99  # no genuine pair reaches it: a session that would be accepted goes to review


def strict_copy(tmp_path: Path) -> Path:
    data = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))
    for entry in data["recognizers"].values():
        entry["thresholds"]["1e-4"] = STRICT_ACCEPT
    data["version"] = "deployment-strict"
    path = tmp_path / "face_calibration.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_settings_built_in_code_bring_their_calibration_file_to_the_worker(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_CALIBRATION, raising=False)  # only the Settings object names the file
    monkeypatch.setattr(worker, "_CERTIFIER", None)  # a fresh worker process
    path = strict_copy(tmp_path)
    settings = make_settings(tmp_path, face_calibration=str(path))

    certifier = shared_certifier(settings.certification)

    thresholds = certifier.matcher.thresholds
    assert thresholds.accept == STRICT_ACCEPT and thresholds.calibration_version == "deployment-strict"
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    report = certifier.run(card, (data_dir / LIVE_VIDEO).read_bytes(), LIVE_ACTIONS, fields.id_number)
    decision = report.decision
    # The same genuine person the shipped thresholds accept (tests/pipelines/decision) is sent to staff here.
    assert decision.outcome is Outcome.REVIEW, decision.to_dict()
    assert decision.thresholds["face_accept"] == STRICT_ACCEPT


def test_without_a_calibration_setting_the_worker_uses_the_shipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_CALIBRATION, raising=False)
    monkeypatch.setattr(worker, "_CERTIFIER", None)
    certifier = shared_certifier(make_settings(tmp_path).certification)
    assert certifier.matcher.calibration.path == str(DEFAULT_CALIBRATION_PATH)
    assert certifier.matcher.thresholds.accept < STRICT_ACCEPT
