"""`pension-cert id-card read IMAGE [IMAGE ...]`: one JSON line per image, models loaded once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines.id_card import IdCardReader
from service.adapters.cli import main


def test_read_prints_one_json_line_per_image(
    idcard_dir: Path, reader: IdCardReader, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[int] = []
    original_init = IdCardReader.__init__

    def counting_init(self: IdCardReader, *args: object, **kwargs: object) -> None:
        created.append(1)
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(IdCardReader, "__init__", counting_init)
    images = [
        idcard_dir / "synthetic" / "card_002.jpg",
        idcard_dir / "samples" / "card-ocr_test1_fictional.jpg",
        idcard_dir / "samples" / "samples_labels.csv",
    ]
    code = main(["id-card", "read", "--show-number", *map(str, images)])  # masked without it (test_cli_outside_review)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(created) == 1
    assert [ln["image"] for ln in lines] == [str(p) for p in images]
    first, second, broken = lines
    for key in (
        "name",
        "sex",
        "ethnicity",
        "birth_date",
        "address",
        "id_number",
        "id_number_valid",
        "side",
        "confidence",
        "errors",
        "portrait",
    ):
        assert key in first
    assert first["name"] == "江振华" and first["birth_date"] == "1943-02-19"
    assert first["id_number"] == "21010219430219701X" and first["id_number_valid"] is True
    assert first["errors"] == [] and first["side"] == "portrait"
    x1, y1, x2, y2 = first["portrait"]
    assert 0 <= x1 < x2 and 0 <= y1 < y2
    assert set(first["confidence"]) >= {"name", "id_number"}
    assert second["name"] == "韦小宝" and "ID_CHECKSUM_FAILED" in second["errors"]
    assert broken["errors"] == ["MEDIA_UNSUPPORTED"]
    assert code == 2  # one input could not be decoded


def test_emblem_flag(idcard_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    page = cv2.imread(str(idcard_dir / "samples" / "idcard_generator_result_color.jpg"))
    assert page is not None
    path = tmp_path / "emblem.png"
    cv2.imwrite(str(path), page[page.shape[0] // 2 :])
    assert main(["id-card", "read", "--emblem", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["side"] == "emblem"
    assert out["issuing_authority"] == "四川省成都市锦江分局"
    assert out["valid_until"] == "2020-12-12" and out["expired"] is True
    assert out["errors"] == ["ID_EXPIRED"]


@pytest.mark.parametrize(
    ("instant", "expired"),
    [
        (dt.datetime(2020, 12, 11, 17, 30, tzinfo=dt.UTC), False),  # 2020-12-12 01:30 in Beijing: its last day
        (dt.datetime(2020, 12, 12, 15, 59, tzinfo=dt.UTC), False),  # 23:59 there
        (dt.datetime(2020, 12, 12, 16, 0, tzinfo=dt.UTC), True),  # 2020-12-13 00:00 there
    ],
)
def test_the_emblem_is_judged_on_the_bureaus_day(
    idcard_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    instant: dt.datetime,
    expired: bool,
) -> None:
    """A card valid to 2020-12-12 is valid on that day in Beijing and expired from its midnight there, whatever the
    machine's date (docs/security.md, Part DF): the command judged it on the machine's own date, the day
    before Beijing's from 16:00 to 24:00 UTC, so a card whose last day had ended in Beijing still read as valid
    until 08:00 there (and here, the machine's date being years later, every case read as expired)."""
    import cv2

    from service.infra import clock

    monkeypatch.setattr(clock, "now_utc", lambda: instant)
    page = cv2.imread(str(idcard_dir / "samples" / "idcard_generator_result_color.jpg"))
    assert page is not None
    path = tmp_path / "emblem.png"
    cv2.imwrite(str(path), page[page.shape[0] // 2 :])
    assert main(["id-card", "read", "--emblem", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid_until"] == "2020-12-12" and out["expired"] is expired
    assert out["errors"] == (["ID_EXPIRED"] if expired else [])
