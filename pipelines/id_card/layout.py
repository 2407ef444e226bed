"""Geometry of the portrait side of the second-generation resident ID card, in template pixels.

Coordinates are on the portrait side cropped from ``shared/data/idcard/template/empty.png`` (x 286–2172,
y 490–1679 of the page), i.e. a 1886×1189 card (the physical card is 85.6×54 mm, ratio 1.585). The field
positions are the generator's documented anchors (top-left of the text), shifted into card coordinates.
"""

from __future__ import annotations

CARD_W = 1886
CARD_H = 1189
# Page → card offset of the portrait side (and of the emblem side, below it on the page).
PORTRAIT_SIDE_ORIGIN = (286, 490)
EMBLEM_SIDE_ORIGIN = (282, 1908)

# Top-left anchors of the printed entries (card coordinates) and their font sizes in pixels.
NAME_XY = (344, 200)
NAME_PX = 72
SEX_XY = (344, 350)
ETHNICITY_XY = (744, 350)
BIRTH_YEAR_XY = (344, 490)
BIRTH_MONTH_XY = (664, 490)
BIRTH_DAY_XY = (864, 490)
ADDRESS_XY = (344, 630)
ADDRESS_LINE_STEP = 100
ADDRESS_CHARS_PER_LINE = 11
FIELD_PX = 60
NUMBER_XY = (664, 985)
NUMBER_PX = 72
# The portrait photo: 500×670 pasted at page (1500, 690).
PORTRAIT_BOX = (1214, 200, 1714, 870)
# Emblem side entries (card coordinates of that side).
AUTHORITY_XY = (768, 842)
VALIDITY_XY = (768, 987)
