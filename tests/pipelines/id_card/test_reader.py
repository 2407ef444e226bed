"""The reader on real inputs: the shared synthetic cards, the specimen samples, generated cards in every
orientation, and cards made to fail in each documented way."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from stdnum.cn import ric

from pipelines.id_card import IdCardReader, IdCardResult
from pipelines.id_card import layout as L
from pipelines.id_card.synthetic import CardGenerator, PhotoConfig, photograph, render_card
from pipelines.media import load_image
from pipelines.reasons import ReasonCode

GOLDEN = Path(__file__).parent / "golden"
PLAIN = PhotoConfig(
    any_rotation=False,
    max_tilt_deg=0.0,
    card_fill=(0.8, 0.8),
    max_blur_sigma=0.0,
    max_noise=1.0,
    jpeg_quality=(92, 92),
    glare_prob=0.0,
    shadow_prob=0.0,
)
TODAY = dt.date(2026, 6, 1)


def _fields(res: IdCardResult) -> dict[str, str | None]:
    return {
        "name": res.name,
        "sex": res.sex,
        "ethnicity": res.ethnicity,
        "birth_date": res.birth_date.isoformat() if res.birth_date else None,
        "address": res.address,
        "id_number": res.id_number,
    }


def _plain_photo(generator: CardGenerator, index: int, card: np.ndarray | None = None) -> np.ndarray:
    flat = card if card is not None else generator.flat(index)[0]
    image, _, _ = photograph(flat, np.random.default_rng(index), PLAIN, rotation=0.0)
    return image


@pytest.mark.parametrize("card", ["card_000.jpg", "card_006.jpg", "card_011.jpg"])
def test_shared_synthetic_cards_read_exactly(reader: IdCardReader, idcard_dir: Path, card: str) -> None:
    rows = {r["card"]: r for r in csv.DictReader((idcard_dir / "synthetic_labels.csv").open(encoding="utf-8"))}
    label = rows[f"idcard/synthetic/{card}"]
    res = reader.read(load_image(idcard_dir / "synthetic" / card), today=TODAY)
    assert _fields(res) == {
        "name": label["name"],
        "sex": label["sex"],
        "ethnicity": label["ethnicity"],
        "birth_date": label["birth"],
        "address": label["address"],
        "id_number": label["id_number"],
    }
    assert res.side == "portrait"
    assert res.id_number_valid
    assert res.errors == []
    assert set(res.confidence) == {"name", "sex", "ethnicity", "birth_date", "address", "id_number"}
    assert all(0.5 < v <= 1.0 for v in res.confidence.values())
    assert res.portrait_verified and res.portrait is not None and res.portrait_bbox is not None


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_every_quarter_turn(reader: IdCardReader, generator: CardGenerator, k: int) -> None:
    fields = generator.flat(11)[1]
    image = np.ascontiguousarray(np.rot90(_plain_photo(generator, 11), k))
    res = reader.read(image, today=TODAY)
    assert _fields(res) == fields.as_labels()
    assert res.errors == []
    assert res.rotation_deg is not None
    assert round(res.rotation_deg / 90) % 4 == (k * 1) % 4 or round(res.rotation_deg / 90) % 4 == (-k) % 4


def test_degraded_generated_cards(reader: IdCardReader, generator: CardGenerator) -> None:
    """A handful of photographed cards (any rotation, tilt, glare, shadow, blur, JPEG): most read exactly."""
    exact = 0
    numbers = 0
    for i in range(6):
        card = generator.generate(100 + i)
        res = reader.read(card.image, today=TODAY)
        exact += _fields(res) == card.fields.as_labels()
        numbers += res.id_number == card.fields.id_number
    assert numbers >= 5
    assert exact >= 4


def test_portrait_crop_is_the_photo(reader: IdCardReader, generator: CardGenerator) -> None:
    card = generator.generate(7, rotation=30.0)
    res = reader.read(card.image, today=TODAY)
    assert res.portrait_verified and res.portrait is not None
    x1, y1, x2, y2 = res.portrait_bbox or (0, 0, 0, 0)
    truth = card.portrait_quad
    tx1, ty1 = truth.min(axis=0)
    tx2, ty2 = truth.max(axis=0)
    inter = max(0.0, min(x2, tx2) - max(x1, tx1)) * max(0.0, min(y2, ty2) - max(y1, ty1))
    union = (x2 - x1) * (y2 - y1) + (tx2 - tx1) * (ty2 - ty1) - inter
    assert inter / union > 0.7
    h, w = res.portrait.shape[:2]
    assert 1.2 < h / w < 1.5  # the 500×670 photo, rectified


def _sample_rows(idcard_dir: Path) -> dict[str, dict[str, str]]:
    path = idcard_dir / "samples" / "samples_labels.csv"
    return {r["file"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}


@pytest.mark.parametrize("name", json.loads((GOLDEN / "samples.json").read_text(encoding="utf-8")).keys())
def test_samples_match_labels_and_golden_flags(reader: IdCardReader, idcard_dir: Path, name: str) -> None:
    golden = json.loads((GOLDEN / "samples.json").read_text(encoding="utf-8"))[name]
    label = _sample_rows(idcard_dir)[name]
    res = reader.read(load_image(idcard_dir / "samples" / name), today=TODAY)
    assert _fields(res) == {
        "name": label["name"],
        "sex": label["sex"],
        "ethnicity": label["ethnicity"],
        "birth_date": label["birth_as_printed"],
        "address": label["address_as_printed"],
        "id_number": label["id_number_as_printed"],
    }
    assert sorted(e.value for e in res.errors) == sorted(golden["errors"])
    assert res.checks.get("inconsistent", []) == golden["inconsistent"]
    assert res.id_number_valid is golden["id_number_valid"]


def test_specimen_birth_date_disagreeing_with_number_is_flagged(reader: IdCardReader, idcard_dir: Path) -> None:
    res = reader.read(load_image(idcard_dir / "samples" / "chineseocr_idcard-demo_specimen_rot180.jpeg"))
    assert ReasonCode.ID_FIELDS_INCONSISTENT in res.errors
    assert "birth_date" in res.checks["inconsistent"]
    assert res.birth_date == dt.date(2013, 5, 6)
    assert abs(abs(res.rotation_deg or 0.0) - 180) < 5


def test_emblem_side_is_wrong_side_and_expired(reader: IdCardReader, idcard_dir: Path) -> None:
    page = load_image(idcard_dir / "samples" / "idcard_generator_result_color.jpg")
    emblem = np.ascontiguousarray(page[page.shape[0] // 2 :])
    res = reader.read(emblem, today=TODAY)
    assert res.side == "emblem"
    assert ReasonCode.ID_WRONG_SIDE in res.errors
    assert res.issuing_authority == "四川省成都市锦江分局"
    assert res.valid_until == dt.date(2020, 12, 12) and res.expired is True
    assert ReasonCode.ID_EXPIRED in res.errors
    assert res.name is None and res.id_number is None
    again = reader.read_emblem(emblem, today=dt.date(2015, 1, 1))
    assert again.errors == [] and again.expired is False


def test_not_a_card(reader: IdCardReader, faces_dir: Path) -> None:
    res = reader.read(load_image(faces_dir / "lfw" / "Ariel_Sharon" / "Ariel_Sharon_0001.jpg"))
    assert res.errors == [ReasonCode.ID_NOT_A_CARD]
    assert res.side is None and res.id_number is None


def test_cut_off_card(reader: IdCardReader, generator: CardGenerator) -> None:
    image = _plain_photo(generator, 12)
    card = generator.generate(12, rotation=0.0, config=PLAIN)
    x_cut = int(card.project(np.array([[L.CARD_W * 0.62, 0.0]]))[0, 0])
    res = reader.read(np.ascontiguousarray(image[:, :x_cut]), today=TODAY)
    assert ReasonCode.ID_CUT_OFF in res.errors


def test_glare_over_the_number(reader: IdCardReader, generator: CardGenerator) -> None:
    flat = generator.flat(13)[0].astype(np.float32)
    yy, xx = np.mgrid[0 : L.CARD_H, 0 : L.CARD_W].astype(np.float32)
    blob = np.exp(-(((xx - 1150) / 420) ** 2 + ((yy - 1015) / 120) ** 2))
    flat = np.clip(flat + 400 * blob[:, :, None], 0, 255).astype(np.uint8)
    res = reader.read(_plain_photo(generator, 13, flat), today=TODAY)
    assert ReasonCode.ID_GLARE in res.errors
    assert res.id_number is None


def test_too_blurry(reader: IdCardReader, generator: CardGenerator) -> None:
    image = cv2.GaussianBlur(_plain_photo(generator, 14), (0, 0), 9)
    res = reader.read(image, today=TODAY)
    assert ReasonCode.ID_TOO_BLURRY in res.errors


def test_number_unreadable(reader: IdCardReader, generator: CardGenerator) -> None:
    flat = generator.flat(15)[0].copy()
    rng = np.random.default_rng(0)
    for _ in range(90):  # ink scribbles over the number
        x0, y0 = int(rng.integers(660, 1650)), int(rng.integers(975, 1060))
        cv2.line(flat, (x0, y0), (x0 + int(rng.integers(-60, 60)), y0 + int(rng.integers(-50, 50))), (40, 40, 40), 9)
    res = reader.read(_plain_photo(generator, 15, flat), today=TODAY)
    assert ReasonCode.ID_NUMBER_UNREADABLE in res.errors
    assert not res.id_number_valid


def test_check_digit_failure(reader: IdCardReader, generator: CardGenerator, faces_dir: Path) -> None:
    _, fields, face = generator.flat(16)
    wrong = str((int(fields.id_number[-1]) + 3) % 10) if fields.id_number[-1] != "X" else "0"
    bad = dataclasses.replace(fields, id_number=fields.id_number[:-1] + wrong)
    assert ric.calc_check_digit(bad.id_number) != bad.id_number[-1]
    photo = cv2.imread(str(faces_dir / face))
    assert photo is not None
    portrait = cv2.resize(photo, (500, 670))
    res = reader.read(_plain_photo(generator, 16, render_card(bad, portrait, generator.data_dir)), today=TODAY)
    assert res.id_number == bad.id_number
    assert ReasonCode.ID_CHECKSUM_FAILED in res.errors
    assert not res.id_number_valid


def test_birth_and_sex_inconsistent_with_number(
    reader: IdCardReader, generator: CardGenerator, faces_dir: Path
) -> None:
    _, fields, face = generator.flat(17)
    other_sex = "女" if fields.sex == "男" else "男"
    bad = dataclasses.replace(fields, sex=other_sex, birth_date=fields.birth_date + dt.timedelta(days=40))
    photo = cv2.imread(str(faces_dir / face))
    assert photo is not None
    portrait = cv2.resize(photo, (500, 670))
    res = reader.read(_plain_photo(generator, 17, render_card(bad, portrait, generator.data_dir)), today=TODAY)
    assert res.id_number_valid and res.sex == other_sex
    assert ReasonCode.ID_FIELDS_INCONSISTENT in res.errors
    assert sorted(res.checks["inconsistent"]) == ["birth_date", "sex"]


def test_result_json_contract(reader: IdCardReader, idcard_dir: Path) -> None:
    out = reader.read(load_image(idcard_dir / "synthetic" / "card_001.jpg")).to_dict()
    json.dumps(out, ensure_ascii=False)
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
        assert key in out
    assert len(out["portrait"]) == 4


def test_grey_input_and_degenerate_images_never_raise(reader: IdCardReader, idcard_dir: Path) -> None:
    grey = cv2.cvtColor(load_image(idcard_dir / "synthetic" / "card_003.jpg"), cv2.COLOR_BGR2GRAY)
    assert reader.read(grey).id_number == "330106194703233897"
    noise = np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    assert reader.read(noise).errors in ([ReasonCode.ID_NOT_A_CARD], [ReasonCode.ID_TOO_BLURRY])
    assert reader.read(np.full((200, 300, 3), 255, np.uint8)).side is None
