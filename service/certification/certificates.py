"""Certificates of accepted certifications: a signed verification code, carried in a QR code on a PNG.

The code is ``base64url(payload).mac`` with an HMAC-SHA256 over the payload (key from settings); the public
verify endpoint recomputes the MAC, so a forged or altered code fails without any database lookup, and the
database lookup then confirms the certification still exists.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import io
import json
from dataclasses import dataclass
from typing import Any

from service.certification.errors import ServiceError
from service.infra.security import Keyring


@dataclass(frozen=True)
class CertificateClaims:
    certification_id: int
    id_masked: str
    certified_on: dt.date
    valid_until: dt.date

    def to_dict(self) -> dict[str, Any]:
        return {
            "certification_id": self.certification_id,
            "id_masked": self.id_masked,
            "certified_on": self.certified_on.isoformat(),
            "valid_until": self.valid_until.isoformat(),
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_code(keyring: Keyring, cert_id: int, id_masked: str, certified_on: dt.date, valid_until: dt.date) -> str:
    payload = json.dumps(
        {"c": cert_id, "m": id_masked, "d": certified_on.isoformat(), "u": valid_until.isoformat()},
        separators=(",", ":"),
    )
    body = _b64(payload.encode())
    return f"{body}.{keyring.mac('cert:' + body)[:32]}"


def verify_code(keyring: Keyring, code: str) -> CertificateClaims:
    body, _, mac = code.strip().partition(".")
    if not body or not _mac_ok(keyring, body, mac):
        raise ServiceError("CERTIFICATE_INVALID", "signature does not verify")
    try:
        p = json.loads(_unb64(body))
        return CertificateClaims(int(p["c"]), str(p["m"]), dt.date.fromisoformat(p["d"]), dt.date.fromisoformat(p["u"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError("CERTIFICATE_INVALID", "malformed code") from exc


def _mac_ok(keyring: Keyring, body: str, mac: str) -> bool:
    # 128 bits of HMAC keep the QR code small and are far beyond guessing.
    return len(mac) == 32 and hmac.compare_digest(keyring.mac("cert:" + body)[:32].encode(), mac.encode())


def render_png(name: str, claims: CertificateClaims, verify_url: str) -> bytes:
    """A printable certificate: subject, dates and a QR code of the verification URL."""
    import segno  # lazy: segno and Pillow only when a certificate is printed
    from PIL import Image, ImageDraw  # lazy: as above

    qr = segno.make(verify_url, error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=6, border=4)  # the 4-module quiet zone ISO/IEC 18004 asks for
    qr_img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    width = max(720, qr_img.width + 80)
    img = Image.new("RGB", (width, qr_img.height + 260), "white")
    draw = ImageDraw.Draw(img)
    font = _font(28)
    lines = [
        "养老保险待遇资格认证凭证",
        f"姓名: {name}    证件: {claims.id_masked}",
        f"认证日期: {claims.certified_on.isoformat()}    有效期至: {claims.valid_until.isoformat()}",
        f"凭证编号: {claims.certification_id}",
    ]
    for i, line in enumerate(lines):
        draw.text((40, 30 + i * 44), line, fill="black", font=font)
    img.paste(qr_img, ((width - qr_img.width) // 2, 220))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _font(size: int) -> Any:
    from PIL import ImageFont  # lazy: Pillow only when a certificate is printed

    for path in (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    ):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()
