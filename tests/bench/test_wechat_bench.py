"""bench/wechat.py on a few reminders: it runs end to end (its context had no features installed, and since the
reminders ask which people an open request shelters, the notification run failed with FeaturesNotInstalled), every
reminder is sent once, the next run sends nothing, and the card check reads the dev card without a problem."""

from __future__ import annotations

import json
from pathlib import Path

from bench import wechat as bench_wechat


def test_the_bench_sends_each_reminder_once_and_reads_the_card(tmp_path: Path) -> None:
    out = tmp_path / "wechat.json"
    bench_wechat.main(["--reminders", "12", "--repeat", "1", "--out", str(out)])
    result = json.loads(out.read_text(encoding="utf-8"))
    notifications = result["notifications"]
    assert (notifications["first_run_sent"], notifications["second_run_sent"]) == (12, 0)
    assert notifications["fake_server_messages"] == 12
    assert result["card_check"]["problems"] == [] and result["card_check"]["median_s"] > 0
    assert result["jssdk_config"]["calls"] == 200 and result["jssdk_config"]["median_ms"] > 0
