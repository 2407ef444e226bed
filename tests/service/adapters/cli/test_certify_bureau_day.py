"""`pension-cert certify` judges the ID card on the bureau's day (docs/security.md Part AT): the card's validity (read
when the photo shows the emblem side) and the number's "born after today" check take the date the service's
worker gives them, the bureau's calendar date (`PENSION_CERT_TIME_ZONE`, Asia/Shanghai) on the service's clock,
not the machine's own date. Each test failed on the code before, which gave the card reader no date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from pipelines.decision.result import Outcome
from pipelines.decision.runner import CertificationReport
from pipelines.id_card.result import IdCardResult
from service.adapters.cli import main
from service.infra import clock
from tests.service.adapters.cli.conftest import json_lines
from tests.service.certifiers import fixed_decision
from tests.service.media import LIVE_VIDEO

# 07:30 on 10 March in Beijing. Years from any day the suite runs on: a regression to the machine's own date (or
# to date.today()) cannot pass by chance, as it did with a clock held on the day the test was written.
EVENING_UTC = dt.datetime(2031, 3, 9, 23, 30, tzinfo=dt.UTC)


class _DatedCertifier:
    """Records the date each run was asked to judge the card on."""

    days: ClassVar[list[dt.date | None]] = []

    def __init__(self, _pack: object = None, **_kw: Any) -> None:  # light_mode: the real certifier's
        pass

    def run(self, card: np.ndarray, video: Path, *_args: Any, today: dt.date | None = None, **_kw: Any) -> Any:
        self.days.append(today)
        read = IdCardResult(side="portrait", name="张秀英", id_number="420106194107214690", id_number_valid=True)
        return CertificationReport(fixed_decision(Outcome.ACCEPT), read, None, None, None, None, {})


@pytest.fixture
def dated(monkeypatch: pytest.MonkeyPatch) -> list[dt.date | None]:
    import pipelines.decision.runner as runner

    monkeypatch.setattr(runner, "Certifier", _DatedCertifier)
    monkeypatch.setattr(clock, "now_utc", lambda: EVENING_UTC)
    monkeypatch.delenv("PENSION_CERT_TIME_ZONE", raising=False)
    monkeypatch.delenv("pension_cert_time_zone", raising=False)
    _DatedCertifier.days = []
    return _DatedCertifier.days


def test_certify_judges_the_card_on_the_bureaus_day(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], dated: list[dt.date | None]
) -> None:
    """At 23:30 UTC on 9 March, 07:30 on the 10th in Beijing, a card valid to the 9th was judged on the machine's
    date: on a server or a workstation set to UTC, still the 9th, the expired card passed, as it did in the
    service before Part AJ's follow-up. Single and batch now give the reader the bureau's 10 March."""
    card, video = data_dir / "idcard/synthetic/card_000.jpg", data_dir / LIVE_VIDEO
    assert main(["certify", "--id-card", str(card), "--video", str(video)]) == 0
    (tmp_path / "batch.csv").write_text(f"id_card,video\n{card},{video}\n{card},{video}\n", encoding="utf-8")
    assert main(["certify", "--batch", str(tmp_path / "batch.csv")]) == 0
    assert [line["decision"] for line in json_lines(capsys.readouterr().out)] == ["accept"] * 3
    assert dated == [dt.date(2031, 3, 10)] * 3


def test_certify_takes_the_bureaus_zone_and_refuses_an_unknown_one(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dated: list[dt.date | None]
) -> None:
    card, video = data_dir / "idcard/synthetic/card_000.jpg", data_dir / LIVE_VIDEO
    monkeypatch.setenv("PENSION_CERT_TIME_ZONE", "UTC")
    assert main(["certify", "--id-card", str(card), "--video", str(video)]) == 0
    assert dated == [dt.date(2031, 3, 9)]
    capsys.readouterr()
    monkeypatch.setenv("PENSION_CERT_TIME_ZONE", "Asia/Beijing")  # not an IANA name
    assert main(["certify", "--id-card", str(card), "--video", str(video)]) == 4
    out, err = capsys.readouterr()
    assert out == "" and "PENSION_CERT_TIME_ZONE" in err and "Asia/Shanghai" in err and "Traceback" not in err
    assert dated == [dt.date(2031, 3, 9)]  # refused before any certification


def test_certify_reads_the_zone_variable_as_the_service_does(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dated: list[dt.date | None]
) -> None:
    """The settings take their variables whatever their case (pydantic-settings): `pension_cert_time_zone=UTC` makes
    the service date everything in UTC. Before, the command read `PENSION_CERT_TIME_ZONE` itself, by that exact
    name, and judged the card in Asia/Shanghai: one run, with `--beneficiary-id`, loaded the service's settings in
    UTC and the bureau's day in another zone. Now it reads the zone through the settings (`TimeZoneSettings`)."""
    card, video = data_dir / "idcard/synthetic/card_000.jpg", data_dir / LIVE_VIDEO
    monkeypatch.setenv("pension_cert_time_zone", "UTC")
    assert main(["certify", "--id-card", str(card), "--video", str(video)]) == 0
    assert dated == [dt.date(2031, 3, 9)]
    capsys.readouterr()
    monkeypatch.setenv("pension_cert_time_zone", "Mars/Olympus")
    assert main(["certify", "--id-card", str(card), "--video", str(video)]) == 4
    out, err = capsys.readouterr()
    assert out == "" and "PENSION_CERT_TIME_ZONE" in err and "Mars/Olympus" in err and "Traceback" not in err
    assert dated == [dt.date(2031, 3, 9)]  # refused before any certification
