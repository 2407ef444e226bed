"""The synthetic card generator: deterministic, valid numbers, real layout."""

from __future__ import annotations

import hashlib

import numpy as np

from pipelines.id_card.synthetic import CardGenerator, PhotoConfig
from pipelines.idnumber import check_number


def test_same_seed_same_card(generator: CardGenerator) -> None:
    a, b = generator.generate(3), generator.generate(3)
    assert hashlib.sha256(a.image.tobytes()).digest() == hashlib.sha256(b.image.tobytes()).digest()
    assert a.fields == b.fields
    assert generator.generate(4).fields != a.fields


def test_fields_are_consistent_and_numbers_valid(generator: CardGenerator) -> None:
    for i in range(30):
        f = generator.flat(i)[1] if i % 10 else generator.generate(i).fields
        chk = check_number(f.id_number)
        assert chk.valid, f.id_number
        assert chk.birth_date == f.birth_date
        assert chk.sex == f.sex
        assert len(f.address) <= 33


def test_card_lies_inside_the_photo(generator: CardGenerator) -> None:
    card = generator.generate(5, config=PhotoConfig(max_tilt_deg=30.0))
    h, w = card.image.shape[:2]
    quad = card.card_quad
    assert (quad[:, 0] >= -1).all() and (quad[:, 0] <= w + 1).all()
    assert (quad[:, 1] >= -1).all() and (quad[:, 1] <= h + 1).all()
    # The printed number is dark ink: the rendered flat card has dark pixels in the number band.
    flat = generator.flat(5)[0]
    band = flat[985:1057, 664:1600]
    assert (band.mean(axis=2) < 80).mean() > 0.05
    assert np.isfinite(card.homography).all()
