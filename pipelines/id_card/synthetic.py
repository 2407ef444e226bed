"""Deterministic generator of photographed-looking portrait-side ID cards, for tests and benchmarks.

Cards are rendered on ``idcard/template/empty.png`` with free Debian fonts (Noto Sans CJK for text, OCR-B for
the number), with fictitious names and addresses, valid ID numbers (real region codes from python-stdnum's table,
MOD 11-2 check digit) and portraits from ``shared/data/faces``. Then they are "photographed": perspective tilt,
any in-plane rotation, background clutter, shadow, glare, blur, noise and JPEG. ``generate(i)`` depends only on
(seed, i), so a benchmark set is reproducible card by card.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from stdnum import numdb
from stdnum.cn import ric

from pipelines.id_card import layout
from pipelines.id_card.fonts import cjk_font_path, number_font_path

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方")
GIVEN = (
    "国华建明志强文军平秀英玉兰桂芳丽红德福成海林春生金荣云凤祥庆永光立新义淑珍美霞琴宝山清贵洪忠兴敏静洁"
    "伟峰东涛斌俊长友进安勇泽宏"
)
ETHNICITIES = (
    "回",
    "满",
    "蒙古",
    "壮",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "土家",
    "朝鲜",
    "侗",
    "瑶",
    "白",
    "哈尼",
    "傣",
    "黎",
)
STREET_HEADS = "人民解放建设中山和平胜利文化新华光明幸福长江黄河青年友谊团结东风朝阳红旗育才振兴"
STREET_TAILS = ("路", "街", "大道", "巷", "东路", "西路", "南街", "北街")
UNITS = ("号", "号院", "号楼")


@dataclass(frozen=True)
class CardFields:
    name: str
    sex: str
    ethnicity: str
    birth_date: dt.date
    address: str
    id_number: str

    def as_labels(self) -> dict[str, str]:
        return {
            "name": self.name,
            "sex": self.sex,
            "ethnicity": self.ethnicity,
            "birth_date": self.birth_date.isoformat(),
            "address": self.address,
            "id_number": self.id_number,
        }


@dataclass(frozen=True)
class PhotoConfig:
    """Strength of the photographed look. Defaults are a phone photo by an elderly user: crooked, soft, lit."""

    any_rotation: bool = True
    max_tilt_deg: float = 20.0
    card_fill: tuple[float, float] = (0.6, 0.9)
    max_blur_sigma: float = 1.3
    max_noise: float = 6.0
    jpeg_quality: tuple[int, int] = (60, 95)
    glare_prob: float = 0.4
    shadow_prob: float = 0.4
    canvas: tuple[int, int] = (1280, 960)


# A harder set: steep perspective (up to 30°), smaller cards, stronger blur.
HARD = PhotoConfig(max_tilt_deg=30.0, card_fill=(0.5, 0.85), max_blur_sigma=1.6)


@dataclass
class SyntheticCard:
    index: int
    image: np.ndarray
    fields: CardFields
    portrait_source: str
    # Card (template) → image homography, and the card / portrait corners on the image.
    homography: np.ndarray
    rotation_deg: float
    params: dict[str, float] = field(default_factory=dict)

    def project(self, pts: np.ndarray) -> np.ndarray:
        return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), self.homography).reshape(-1, 2)

    @property
    def card_quad(self) -> np.ndarray:
        return self.project(
            np.array([[0, 0], [layout.CARD_W, 0], [layout.CARD_W, layout.CARD_H], [0, layout.CARD_H]], float)
        )

    @property
    def portrait_quad(self) -> np.ndarray:
        x1, y1, x2, y2 = layout.PORTRAIT_BOX
        return self.project(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float))


@functools.lru_cache(maxsize=2)
def _template(data_dir: str) -> np.ndarray:
    page = Image.open(Path(data_dir) / "idcard" / "template" / "empty.png").convert("RGB")
    x, y = layout.PORTRAIT_SIDE_ORIGIN
    card = np.asarray(page.crop((x, y, x + layout.CARD_W, y + layout.CARD_H)))[:, :, ::-1]
    return np.ascontiguousarray(card)


@functools.lru_cache(maxsize=1)
def _regions() -> list[tuple[str, str]]:
    """(6-digit code, '省市区' prefix) for counties that exist today, from stdnum's region table."""
    db = numdb.get("cn/loc")
    out: list[tuple[str, str]] = []
    for prov in range(11, 66):
        for city in range(1, 30):
            city_info = db.info(f"{prov:02d}{city:02d}00")
            city_name = dict(city_info[1][1]).get("county", "") if len(city_info) > 1 else ""
            if not city_name or city_name.startswith("["):
                continue
            for county in range(2, 30):
                code = f"{prov:02d}{city:02d}{county:02d}"
                info = db.info(code)
                if len(info) < 2 or not info[1][1]:
                    continue
                name = info[1][1]["county"]
                if name.startswith("[") and not name.split("]")[0].endswith("-"):
                    continue  # abolished county
                name = name.split("]")[-1]
                if "," in name or name in ("市辖区", city_name):
                    continue
                province = info[0][1]["province"]
                city_part = "" if city_name in (province, "市辖区", "县", "省直辖县级行政区划") else city_name
                prefix = province + city_part + name
                out.append((code, prefix))
    return out


def make_id_number(region: str, birth: dt.date, male: bool, rng: np.random.Generator) -> str:
    seq = int(rng.integers(0, 500)) * 2 + (1 if male else 0)
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def random_fields(rng: np.random.Generator) -> CardFields:
    male = bool(rng.random() < 0.5)
    surname = (
        COMPOUND_SURNAMES[int(rng.integers(len(COMPOUND_SURNAMES)))]
        if rng.random() < 0.04
        else SURNAMES[int(rng.integers(len(SURNAMES)))]
    )
    given = "".join(GIVEN[int(rng.integers(len(GIVEN)))] for _ in range(1 if rng.random() < 0.3 else 2))
    ethnicity = "汉" if rng.random() < 0.7 else ETHNICITIES[int(rng.integers(len(ETHNICITIES)))]
    birth = dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 45)))
    regions = _regions()
    code, prefix = regions[int(rng.integers(len(regions)))]
    street = "".join(STREET_HEADS[int(rng.integers(0, len(STREET_HEADS) // 2)) * 2 :][:2])
    address = f"{prefix}{street}{STREET_TAILS[int(rng.integers(len(STREET_TAILS)))]}{int(rng.integers(1, 400))}"
    address += UNITS[int(rng.integers(len(UNITS)))]
    unit = f"{int(rng.integers(1, 30))}栋{int(rng.integers(1, 8))}单元{int(rng.integers(101, 1800))}室"
    if rng.random() < 0.6 and len(address + unit) <= 3 * layout.ADDRESS_CHARS_PER_LINE:
        address += unit  # the card prints at most three address lines
    return CardFields(
        surname + given, "男" if male else "女", ethnicity, birth, address, make_id_number(code, birth, male, rng)
    )


def portrait_from_face(face_bgr: np.ndarray) -> np.ndarray:
    """A 500×670 ID-style portrait from a face photo: central crop at the card photo's aspect ratio."""
    h, w = face_bgr.shape[:2]
    cw = min(w, int(h * 500 / 670))
    ch = int(cw * 670 / 500)
    x0, y0 = (w - cw) // 2, max(0, (h - ch) // 2)
    crop = face_bgr[y0 : y0 + ch, x0 : x0 + cw]
    return cv2.resize(crop, (500, 670), interpolation=cv2.INTER_CUBIC)


def render_card(fields: CardFields, portrait_bgr: np.ndarray, data_dir: Path) -> np.ndarray:
    """The flat portrait side (1886×1189 BGR) with the fields printed at the template's positions."""
    card = _template(str(data_dir)).copy()
    x1, y1, x2, y2 = layout.PORTRAIT_BOX
    card[y1:y2, x1:x2] = cv2.resize(portrait_bgr, (x2 - x1, y2 - y1))
    img = Image.fromarray(card[:, :, ::-1])
    draw = ImageDraw.Draw(img)
    ink = (18, 18, 22)
    cjk = str(cjk_font_path())
    name_font = ImageFont.truetype(cjk, layout.NAME_PX, index=2)
    text_font = ImageFont.truetype(cjk, layout.FIELD_PX, index=2)
    # Noto's ascent puts glyph tops ~10% below the anchor; anchor "lt" makes the given point the glyph top.
    draw.text(layout.NAME_XY, fields.name, font=name_font, fill=ink, anchor="lt")
    draw.text(layout.SEX_XY, fields.sex, font=text_font, fill=ink, anchor="lt")
    draw.text(layout.ETHNICITY_XY, fields.ethnicity, font=text_font, fill=ink, anchor="lt")
    b = fields.birth_date
    draw.text(layout.BIRTH_YEAR_XY, str(b.year), font=text_font, fill=ink, anchor="lt")
    draw.text(
        (layout.BIRTH_MONTH_XY[0] + (18 if b.month < 10 else 0), layout.BIRTH_MONTH_XY[1]),
        str(b.month),
        font=text_font,
        fill=ink,
        anchor="lt",
    )
    draw.text(
        (layout.BIRTH_DAY_XY[0] + (18 if b.day < 10 else 0), layout.BIRTH_DAY_XY[1]),
        str(b.day),
        font=text_font,
        fill=ink,
        anchor="lt",
    )
    per = layout.ADDRESS_CHARS_PER_LINE
    for k in range(0, len(fields.address), per):
        y = layout.ADDRESS_XY[1] + (k // per) * layout.ADDRESS_LINE_STEP
        draw.text((layout.ADDRESS_XY[0], y), fields.address[k : k + per], font=text_font, fill=ink, anchor="lt")
    num_font = ImageFont.truetype(str(number_font_path()), layout.NUMBER_PX)
    x = float(layout.NUMBER_XY[0])
    for ch in fields.id_number:
        draw.text((x, layout.NUMBER_XY[1]), ch, font=num_font, fill=ink, anchor="lt")
        x += num_font.getlength(ch) + 4
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def _card_mask() -> np.ndarray:
    mask = np.zeros((layout.CARD_H, layout.CARD_W), np.uint8)
    r = 70  # rounded corners (ISO/IEC 7810 ID-1: 3.18 mm on 85.6 mm)
    cv2.rectangle(mask, (r, 0), (layout.CARD_W - r, layout.CARD_H), 255, -1)
    cv2.rectangle(mask, (0, r), (layout.CARD_W, layout.CARD_H - r), 255, -1)
    for cx, cy in ((r, r), (layout.CARD_W - r, r), (r, layout.CARD_H - r), (layout.CARD_W - r, layout.CARD_H - r)):
        cv2.circle(mask, (cx, cy), r, 255, -1)
    return mask


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.integers(30, 230, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = 1.0 + 0.25 * (xx / w - 0.5) * rng.uniform(-1, 1) + 0.25 * (yy / h - 0.5) * rng.uniform(-1, 1)
    bg = base[None, None, :] * grad[:, :, None]
    kind = rng.random()
    if kind < 0.35:  # wood-like grain
        freq = rng.uniform(0.02, 0.08)
        grain = np.sin(yy * freq + 3 * np.sin(xx * 0.01)) * rng.uniform(8, 25)
        bg += grain[:, :, None]
    elif kind < 0.75:  # cluttered table: papers, objects, lines
        for _ in range(int(rng.integers(4, 14))):
            color = tuple(float(c) for c in rng.integers(0, 256, size=3))
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            if rng.random() < 0.5:
                pts = np.array(
                    [
                        [x0, y0],
                        [x0 + rng.integers(-300, 300), y0 + rng.integers(-300, 300)],
                        [x0 + rng.integers(-300, 300), y0 + rng.integers(-300, 300)],
                    ],
                    np.int32,
                )
                cv2.fillConvexPoly(bg, pts, color)
            else:
                cv2.line(
                    bg, (x0, y0), (int(rng.integers(0, w)), int(rng.integers(0, h))), color, int(rng.integers(2, 12))
                )
    bg += rng.normal(0, 4, size=bg.shape).astype(np.float32)
    out: np.ndarray = np.clip(bg, 0, 255).astype(np.uint8)
    return out


def _homography(rng: np.random.Generator, cfg: PhotoConfig, rotation: float) -> tuple[np.ndarray, float, float]:
    """Card → canvas homography: 3-D tilt (pinhole), in-plane rotation, scale and placement inside the canvas."""
    # Tilt magnitude uniform in [0, max], direction uniform: as many gentle as steep views.
    mag, direction = rng.uniform(0, cfg.max_tilt_deg), rng.uniform(0, 2 * math.pi)
    tilt_x, tilt_y = mag * math.cos(direction), mag * math.sin(direction)
    corners = np.array([[0, 0], [layout.CARD_W, 0], [layout.CARD_W, layout.CARD_H], [0, layout.CARD_H]], np.float64)
    centred = np.hstack([corners - [layout.CARD_W / 2, layout.CARD_H / 2], np.zeros((4, 1))])
    ax, ay = math.radians(tilt_x), math.radians(tilt_y)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz_a = math.radians(rotation)
    rz = np.array([[math.cos(rz_a), -math.sin(rz_a), 0], [math.sin(rz_a), math.cos(rz_a), 0], [0, 0, 1]])
    pts3 = centred @ (rz @ ry @ rx).T
    focal = 2.2 * layout.CARD_W  # a phone's ~28 mm-equivalent lens at arm's length
    proj = pts3[:, :2] * (focal / (focal + pts3[:, 2:3]))
    cw, ch = cfg.canvas
    span = proj.max(axis=0) - proj.min(axis=0)
    fill = rng.uniform(*cfg.card_fill)
    scale = min(fill * cw / span[0], fill * ch / span[1], 0.97 * cw / span[0], 0.97 * ch / span[1])
    proj = proj * scale
    lo, hi = proj.min(axis=0), proj.max(axis=0)
    off = np.array([rng.uniform(-lo[0], cw - hi[0]), rng.uniform(-lo[1], ch - hi[1])])
    dst = (proj + off).astype(np.float32)
    return cv2.getPerspectiveTransform(corners.astype(np.float32), dst), tilt_x, tilt_y


def photograph(
    card_bgr: np.ndarray, rng: np.random.Generator, cfg: PhotoConfig, rotation: float | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Place the flat card into a phone-photo-like scene. Returns (image, card→image homography, params)."""
    rot = float(rng.uniform(0, 360)) if rotation is None and cfg.any_rotation else float(rotation or 0.0)
    canvas = cfg.canvas if rng.random() < 0.5 or rot % 180 < 45 or rot % 180 > 135 else cfg.canvas[::-1]
    cfg_c = PhotoConfig(**{**cfg.__dict__, "canvas": canvas})
    h_mat, tilt_x, tilt_y = _homography(rng, cfg_c, rot)
    w, h = canvas
    scene = _background(rng, w, h).astype(np.float32)
    card = card_bgr.astype(np.float32)
    if rng.random() < cfg.shadow_prob:  # a soft shadow edge (hand or phone) across the card
        yy, xx = np.mgrid[0 : layout.CARD_H, 0 : layout.CARD_W].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        d = (xx - layout.CARD_W / 2) * math.cos(a) + (yy - layout.CARD_H / 2) * math.sin(a) - rng.uniform(-400, 400)
        card *= (1.0 - rng.uniform(0.25, 0.5) / (1.0 + np.exp(-d / 60.0)))[:, :, None]
    if rng.random() < cfg.glare_prob:  # specular highlight of a lamp on the laminate
        cx, cy = rng.uniform(0.1, 0.9) * layout.CARD_W, rng.uniform(0.1, 0.9) * layout.CARD_H
        rx, ry = rng.uniform(80, 260), rng.uniform(60, 180)
        yy, xx = np.mgrid[0 : layout.CARD_H, 0 : layout.CARD_W].astype(np.float32)
        blob = np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
        card += (rng.uniform(0.35, 0.7) * 255 * blob)[:, :, None]
    warped = cv2.warpPerspective(np.clip(card, 0, 255), h_mat, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(_card_mask(), h_mat, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    scene = np.asarray(scene * (1 - mask[:, :, None]) + warped * mask[:, :, None], np.float32)
    sigma = float(rng.uniform(0, cfg.max_blur_sigma))
    if sigma > 0.3:
        scene = np.asarray(cv2.GaussianBlur(scene, (0, 0), sigma), np.float32)
    noise = float(rng.uniform(0, cfg.max_noise))
    scene += rng.normal(0, noise, size=scene.shape).astype(np.float32)
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", np.clip(scene, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    image: np.ndarray = decoded if decoded is not None else np.clip(scene, 0, 255).astype(np.uint8)
    params = {
        "rotation_deg": rot,
        "tilt_x_deg": tilt_x,
        "tilt_y_deg": tilt_y,
        "blur_sigma": sigma,
        "noise": noise,
        "jpeg_quality": float(quality),
    }
    return image, h_mat, params


class CardGenerator:
    """``CardGenerator(data_dir, seed).generate(i)``: the i-th card of a reproducible set."""

    def __init__(self, data_dir: Path, seed: int = 0, config: PhotoConfig | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.seed = seed
        self.config = config or PhotoConfig()
        faces_csv = self.data_dir / "faces" / "faces.csv"
        rows = faces_csv.read_text(encoding="utf-8").splitlines()[1:]
        self.faces = sorted(r.split(",")[0] for r in rows if r.startswith("lfw/"))

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def flat(self, index: int) -> tuple[np.ndarray, CardFields, str]:
        rng = self.rng(index)
        fields = random_fields(rng)
        face_rel = self.faces[int(rng.integers(len(self.faces)))]
        face = cv2.imread(str(self.data_dir / "faces" / face_rel), cv2.IMREAD_COLOR)
        if face is None:
            face = np.full((250, 250, 3), 200, np.uint8)
        return render_card(fields, portrait_from_face(face), self.data_dir), fields, face_rel

    def generate(self, index: int, rotation: float | None = None, config: PhotoConfig | None = None) -> SyntheticCard:
        card, fields, face_rel = self.flat(index)
        rng = np.random.default_rng([self.seed, index, 1])
        image, h_mat, params = photograph(card, rng, config or self.config, rotation)
        return SyntheticCard(index, image, fields, f"faces/{face_rel}", h_mat, params["rotation_deg"], params)
