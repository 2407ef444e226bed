"""Certificates of accepted certifications: a signed verification code, carried in a QR code on a PNG.

The code is ``base64url(payload).mac`` with an HMAC-SHA256 over the payload (key from settings); the public
verify endpoint recomputes the MAC, so a forged or altered code fails without any database lookup, and the
database lookup then confirms the certification still exists. A genuine code is then judged as of the bureau's
today (`standing`): valid, or why not (revoked by a supervisor, found fraudulent: service/certification/revocation.py;
expired, the person recorded deceased since, or superseded: the roster gave the record another person's ID number
since). The public answer names the person only masked (`mask_name`)
and says how they were certified (by themselves, by a relative as a proxy, or by the bureau's staff).
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hmac
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.catalog import CERTIFICATE_VALID_ZH, message_zh
from service.certification.current_person import made_for_current_person
from service.certification.errors import NotFoundError, ServiceError
from service.certification.models import Beneficiary, BeneficiaryStatus, Certification, CertSession, Channel
from service.infra.security import Keyring

log = logging.getLogger(__name__)


class CertificateStatus(enum.StrEnum):
    """A genuine certificate as of a day. The order of `standing`'s checks: superseded first (the record's
    present person's status is none of the certificate's business), then revoked (a supervisor's finding on this
    very certificate, true whatever its date), then expired (a paper past its date says nothing of a death since),
    then deceased."""

    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    DECEASED = "deceased"
    EXPIRED = "expired"


# The code (service/certification/catalog.py has its Chinese message) a void status is refused with.
VOID_CODES: dict[CertificateStatus, str] = {
    CertificateStatus.SUPERSEDED: "CERTIFICATE_SUPERSEDED",
    CertificateStatus.REVOKED: "CERTIFICATE_REVOKED",
    CertificateStatus.DECEASED: "CERTIFICATE_DECEASED",
    CertificateStatus.EXPIRED: "CERTIFICATE_EXPIRED",
}

# How the person was certified, as the certificate and its check say it (a session's channel).
METHODS_ZH: dict[str, str] = {
    Channel.SELF: "本人认证",
    Channel.PROXY: "亲属代办认证",
    Channel.STAFF: "经办机构办理",
}


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


# The longest code there can be: its row's column (Certification.code, String(128)); an issued one is about 120.
CODE_MAX_CHARS = 128


def _code_parts(code: str) -> tuple[str, str]:
    """(body, mac) of `code`; CERTIFICATE_INVALID when longer than any issued code, before anything decodes it (a
    body of thousands of nested ``[`` made json.loads raise RecursionError: a 500 for anyone, an error log flood)."""
    text = code.strip()
    if len(text) > CODE_MAX_CHARS:
        raise ServiceError("CERTIFICATE_INVALID", "longer than any issued code")
    body, _, mac = text.partition(".")
    return body, mac


def verify_code(keyring: Keyring, code: str) -> CertificateClaims:
    """The claims of a code signed with the current signing key or a previous one still in use."""
    body, mac = _code_parts(code)
    if not body or not _mac_ok(keyring, body, mac):
        raise ServiceError("CERTIFICATE_INVALID", "signature does not verify")
    return issued_claims(code)


def issued_claims(code: str) -> CertificateClaims:
    """The claims of a code read from its certification's own row (issued by this service, under whichever
    signing key was current then: not checked again)."""
    body = _code_parts(code)[0]
    try:
        p = json.loads(_unb64(body))
        return CertificateClaims(int(p["c"]), str(p["m"]), dt.date.fromisoformat(p["d"]), dt.date.fromisoformat(p["u"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError("CERTIFICATE_INVALID", "malformed code") from exc


def _mac_ok(keyring: Keyring, body: str, mac: str) -> bool:
    # 128 bits of HMAC keep the QR code small and are far beyond guessing.
    return len(mac) == 32 and keyring.verify_mac("cert:" + body, mac, length=32)


@dataclass(frozen=True)
class Standing:
    """A certification as of `checked_on` (the bureau's date): its status, how it was made, its person's masked
    name (None when superseded: the record names another person now)."""

    status: CertificateStatus
    checked_on: dt.date
    method: str
    name_masked: str | None

    @property
    def valid(self) -> bool:
        return self.status is CertificateStatus.VALID

    @property
    def message_zh(self) -> str:
        """What the person checking reads."""
        return message_zh(VOID_CODES[self.status]) if not self.valid else CERTIFICATE_VALID_ZH

    @property
    def method_zh(self) -> str:
        return METHODS_ZH.get(self.method, self.method)


def standing(db: Session, cert: Certification, today: dt.date) -> Standing:
    """`cert` as of `today` (the bureau's date: service/infra/clock.py). Superseded when its record has been
    given another ID number since its session was opened (`current_person.made_for_current_person`, the rule the
    cycle run and an accept apply; a supervisor's same-person finding restores it), or its record is gone."""
    b = db.get(Beneficiary, cert.beneficiary_id)
    s = db.get(CertSession, cert.session_id)
    method = s.channel if s is not None else Channel.SELF
    opened = s.created_at if s is not None else cert.created_at  # when the video's session was opened
    if b is None or not made_for_current_person(b, opened):
        return Standing(CertificateStatus.SUPERSEDED, today, method, None)
    if cert.revoked_at is not None:  # the check says revoked, never why (the reason is the office's)
        status = CertificateStatus.REVOKED
    elif cert.valid_until < today:  # first: a long-expired paper tells its holder nothing of a death since
        status = CertificateStatus.EXPIRED
    elif b.status == BeneficiaryStatus.DECEASED:
        status = CertificateStatus.DECEASED
    else:
        status = CertificateStatus.VALID
    return Standing(status, today, method, mask_name(b.name))


def check_code(db: Session, keyring: Keyring, code: str, today: dt.date) -> tuple[CertificateClaims, Standing]:
    """The public check: the signed claims of a genuine code, and its certification's standing on `today`.
    CERTIFICATE_INVALID for a forged or altered code, or one whose certification does not exist (or was
    issued again under another code)."""
    try:
        claims = verify_code(keyring, code)
    except ServiceError:
        # Signed with a key no longer in use (PENSION_CERT_SIGNING_KEYS_PREVIOUS emptied after a rotation) or
        # one that leaked (SIGNING_KEYS_LEAKED: its MAC proves nothing): the paper is still genuine when its code
        # is exactly the one stored for its certification. Anything else (forged, altered) gets the same refusal.
        cert = _stored_exactly(db, code)
        if cert is None:
            raise
        return issued_claims(code), standing(db, cert, today)
    cert = db.get(Certification, claims.certification_id)
    if cert is None or cert.code != code.strip():
        raise NotFoundError("certification", "CERTIFICATE_INVALID", detail="no such certification")
    return claims, standing(db, cert, today)


def _stored_exactly(db: Session, code: str) -> Certification | None:
    try:
        cert_id = issued_claims(code).certification_id
    except ServiceError:  # malformed
        return None
    if not 0 < cert_id < 2**31:  # no row holds it (and PostgreSQL's integer column would refuse the query)
        return None
    cert = db.get(Certification, cert_id)
    return cert if cert is not None and hmac.compare_digest(cert.code.encode(), code.strip().encode()) else None


# The audit action of a copy served by a lasting identity (`latest_copy`): a relative's token, the person's H5 login.
COPY_ACTION = "certificate.copy"


def _certifications(db: Session, b: Beneficiary) -> list[Certification]:
    query = select(Certification).where(Certification.beneficiary_id == b.id)
    return list(db.scalars(query.order_by(Certification.certified_on.desc(), Certification.id.desc())).all())


def valid_copy(db: Session, b: Beneficiary, today: dt.date) -> tuple[Certification, Standing] | None:
    """The latest of `b`'s certifications valid today (`standing`), which `latest_copy` serves; None: none is (a page
    then offers no link to a copy it would refuse)."""
    return _first_valid(db, _certifications(db, b), today)


def _first_valid(db: Session, certs: list[Certification], today: dt.date) -> tuple[Certification, Standing] | None:
    for cert in certs:
        st = standing(db, cert, today)
        if st.valid:
            return cert, st
    return None


def latest_copy(db: Session, b: Beneficiary, today: dt.date) -> tuple[Certification, Standing]:
    """The certificate `b` (or a relative bound to them) may have again, by an identity that outlasts the session's
    token (a reviewed case is accepted long after it ends): the latest of theirs valid today (`valid_copy`). When
    none is, refused as `require_valid` refuses the latest one (revoked, expired, ...); NOT_FOUND when never
    certified."""
    certs = _certifications(db, b)
    found = _first_valid(db, certs, today)
    if found is not None:
        return found
    if not certs:
        raise NotFoundError("certificate (no accepted certification)")
    return certs[0], require_valid(db, certs[0], today)


def verify_url(base_url: str, code: str) -> str:
    """The public check's address of `code`: the certificate's QR code and 核验网址 (PUBLIC_BASE_URL's site)."""
    return f"{base_url.rstrip('/')}/api/v1/certificates/verify?code={code}"


def certificate_png(name: str, cert: Certification, st: Standing, base_url: str) -> bytes:
    """The printable certificate of `cert` (its claims read from its own row: issued by this service, whichever
    signing key was current then)."""
    return render_png(name, issued_claims(cert.code), verify_url(base_url, cert.code), st.method_zh)


def require_valid(db: Session, cert: Certification, today: dt.date) -> Standing:
    """The standing of a certificate about to be served to its holder: refused (the status's code) unless valid
    today; a new copy of a void certificate is not printed."""
    st = standing(db, cert, today)
    if not st.valid:
        raise ServiceError(VOID_CODES[st.status], f"certificate is {st.status.value} on {today.isoformat()}")
    return st


# In a printed name, a character the font cannot draw (the geta mark, typesetting's sign for a missing character),
# and the note printed under the name when it holds one.
MISSING_GLYPH = "〓"
MISSING_GLYPH_NOTE = "（姓名含无法印出的生僻字，以〓标示，以身份证为准）"
_NO_GLYPH = "\U0010fffd"


def mask_name(name: str) -> str:
    """张*英, 欧**锋, 李*: the first and (from three characters) the last character; enough for a relying
    party to match the paper in front of them, not to learn a name from a code."""
    chars = list(name.strip())
    if len(chars) <= 1:
        return "*"
    if len(chars) == 2:
        return chars[0] + "*"
    return chars[0] + "*" * (len(chars) - 2) + chars[-1]


def render_png(name: str, claims: CertificateClaims, verify_url: str, method_zh: str) -> bytes:
    """A printable certificate: subject, how certified, dates, the verification site in words (a relying party
    checks that the QR code opens that site, not a look-alike) and a QR code of the verification URL."""
    import segno  # lazy: segno and Pillow only when a certificate is printed
    from PIL import Image, ImageDraw  # lazy: as above

    qr = segno.make(verify_url, error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=6, border=4)  # the 4-module quiet zone ISO/IEC 18004 asks for
    qr_img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    font = _font(28)
    lines = printed_lines(name, claims, verify_url, method_zh, font)
    width = max(720, qr_img.width + 80, *(int(font.getlength(line)) + 80 for line in lines))
    top = 30 + len(lines) * 44
    img = Image.new("RGB", (width, qr_img.height + top + 40), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 30 + i * 44), line, fill="black", font=font)
    img.paste(qr_img, ((width - qr_img.width) // 2, top))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def certificate_lines(name: str, claims: CertificateClaims, verify_url: str, method_zh: str) -> list[str]:
    """The printed text of a certificate (dates: the bureau's calendar, as issued)."""
    site = verify_url.split("?", 1)[0]
    return [
        "养老保险待遇资格认证凭证",
        f"姓名: {name}    证件: {claims.id_masked}",
        f"认证方式: {method_zh}",
        f"认证日期: {claims.certified_on.isoformat()}    有效期至: {claims.valid_until.isoformat()}",
        f"凭证编号: {claims.certification_id}",
        "真伪与当前是否有效请扫码核验,核验网址应为:",
        site,
    ]


def printed_lines(name: str, claims: CertificateClaims, verify_url: str, method_zh: str, font: Any) -> list[str]:
    """`certificate_lines` as `font` prints them: the name's characters it cannot draw as MISSING_GLYPH, with
    MISSING_GLYPH_NOTE under the name line."""
    shown = printable_name(name, font)
    lines = certificate_lines(shown, claims, verify_url, method_zh)
    if shown != name:
        # Never a wrong name silently: the 〓 says a character is missing, the note which paper decides.
        lines.insert(2, MISSING_GLYPH_NOTE)
        log.warning("certificate %s: a character of the name has no glyph in the font", claims.certification_id)
    return lines


def printable_name(name: str, font: Any) -> str:
    """The name as the certificate's font can print it: a character the font has no glyph for (a rare character
    of CJK Extension B and beyond that Noto Sans CJK lacks: 𪚥, 𠀀) as MISSING_GLYPH, not the font's empty box,
    which would print another name (王□) for a relying party to compare with the ID card."""
    return "".join(ch if _has_glyph(font, ch) else MISSING_GLYPH for ch in name)


def _has_glyph(font: Any, ch: str) -> bool:
    """Whether `font` draws `ch` with a glyph of its own: a character it lacks is drawn as its .notdef glyph, the
    image of a code point no font has (U+10FFFD, private use)."""
    if ch.isspace():
        return True
    missing, mask = font.getmask(_NO_GLYPH), font.getmask(ch)
    return bool(mask.size != missing.size or bytes(mask) != bytes(missing))


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
