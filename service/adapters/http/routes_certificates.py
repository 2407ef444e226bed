"""Certificates: JSON and PNG (QR code) for the session's holder; public verification of a code."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from service.adapters.http.deps import DB, Ctx, SessionId, SessionToken
from service.adapters.http.schemas import EXACT, Certificate, CertificateCheck
from service.certification import sessions
from service.certification.certificates import render_png, verify_code
from service.certification.errors import NotFoundError
from service.certification.models import Beneficiary, Certification, beneficiary_of

router = APIRouter(prefix="/api/v1", tags=["certificates"])


def _certificate(ctx: Ctx, db: DB, token: str | None, session_id: str) -> tuple[Certification, Beneficiary]:
    s = sessions.get_session(db, session_id)
    sessions.check_token(s, token, ctx.settings.certification.session_ttl_s)
    cert = db.scalar(select(Certification).where(Certification.session_id == s.id))
    b = beneficiary_of(db, s)  # None: a session without a beneficiary (a relative's verification) has no certificate
    if cert is None or b is None:
        raise NotFoundError("certificate (the session has no accepted certification)")
    return cert, b


def _verify_url(ctx: Ctx, code: str) -> str:
    return f"{ctx.settings.public_base_url.rstrip('/')}/api/v1/certificates/verify?code={code}"


@router.get(
    "/sessions/{session_id}/certificate",
    summary="Certificate of an accepted certification (JSON)",
    response_model=Certificate,
    **EXACT,
)
def get_certificate(ctx: Ctx, db: DB, token: SessionToken, session_id: SessionId) -> Certificate:
    cert, b = _certificate(ctx, db, token, session_id)
    return Certificate(
        name=b.name,
        id_masked=b.id_masked,
        certified_on=cert.certified_on.isoformat(),
        valid_until=cert.valid_until.isoformat(),
        code=cert.code,
        verify_url=_verify_url(ctx, cert.code),
    )


@router.get("/sessions/{session_id}/certificate.png", summary="Printable certificate with QR code")
def get_certificate_png(ctx: Ctx, db: DB, token: SessionToken, session_id: SessionId) -> Response:
    cert, b = _certificate(ctx, db, token, session_id)
    claims = verify_code(ctx.keyring, cert.code)
    return Response(render_png(b.name, claims, _verify_url(ctx, cert.code)), media_type="image/png")


@router.get(
    "/certificates/verify",
    summary="Public: verify a certificate code (from the QR code)",
    response_model=CertificateCheck,
    **EXACT,
)
def verify(ctx: Ctx, db: DB, code: str) -> CertificateCheck:
    claims = verify_code(ctx.keyring, code)
    cert = db.get(Certification, claims.certification_id)
    if cert is None or cert.code != code:
        raise NotFoundError("certification", "CERTIFICATE_INVALID", detail="no such certification")
    return CertificateCheck(
        valid=True,
        certification_id=claims.certification_id,
        id_masked=claims.id_masked,
        certified_on=claims.certified_on.isoformat(),
        valid_until=claims.valid_until.isoformat(),
    )
