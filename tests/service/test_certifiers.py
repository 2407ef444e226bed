"""The service tests' RememberingCertifier (tests/service/certifiers.py) decides as the plain pipeline does: the
same report for the same media, from memory the second time, and a duplicate video still found through the run's
own store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pipelines.decision.runner import CertificationReport, Certifier
from pipelines.liveness.duplicates import InMemoryVideoFingerprintStore
from pipelines.reasons import ReasonCode
from tests.service.certifiers import RememberingCertifier
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video

DAY = dt.date(2026, 6, 1)


def _without_timings(report: CertificationReport) -> dict[str, Any]:
    out = report.to_dict(verbose=True)
    if out["liveness"] is not None:
        out["liveness"].pop("timings_ms", None)
    if out["id_card"] is not None:
        out["id_card"].pop("timings_ms", None)
    return out


def test_a_remembered_run_is_the_plain_pipelines_run(data_dir: Path, real_certifier: RememberingCertifier) -> None:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    video = (data_dir / LIVE_VIDEO).read_bytes()
    plain = Certifier(real_certifier.pack).run(card, video, LIVE_ACTIONS, fields.id_number, today=DAY)
    first = real_certifier.run(card, video, LIVE_ACTIONS, fields.id_number, today=DAY)
    again = real_certifier.run(card, video, LIVE_ACTIONS, fields.id_number, today=DAY)
    assert _without_timings(first) == _without_timings(plain) == _without_timings(again)
    assert again.timings["liveness"] < plain.timings["liveness"] / 10  # from memory, not analysed again
    assert again.liveness is not first.liveness  # a copy: a test changing its report changes no other's
    other_challenge = real_certifier.run(card, video, ["nod"], fields.id_number, today=DAY)
    assert other_challenge.liveness is not None and first.liveness is not None
    assert other_challenge.liveness.to_dict() != first.liveness.to_dict()  # another key: analysed for its own


def test_a_remembered_video_is_still_a_duplicate_in_the_runs_own_store(
    data_dir: Path, real_certifier: RememberingCertifier
) -> None:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    video = (data_dir / LIVE_VIDEO).read_bytes()
    store = InMemoryVideoFingerprintStore()
    first = real_certifier.run(card, video, LIVE_ACTIONS, fields.id_number, fingerprints=store, today=DAY)
    second = real_certifier.run(card, video, LIVE_ACTIONS, fields.id_number, fingerprints=store, today=DAY)
    assert ReasonCode.VIDEO_DUPLICATE not in first.decision.reasons
    assert ReasonCode.VIDEO_DUPLICATE in second.decision.reasons
