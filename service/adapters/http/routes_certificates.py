"""Certificates: JSON and PNG (QR code) for the session's holder while valid; public verification of a code (is it
genuine, and is it valid today: service/certification/certificates.py)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from service.adapters.http.deps import DB, Ctx, SessionId, SessionToken
from service.adapters.http.schemas import EXACT, PNG, Certificate, CertificateCheck, PngResponse, certificate_view
from service.certification import sessions
from service.certification.certificates import Standing, certificate_png, check_code, require_valid
from service.certification.errors import NotFoundError
from service.certification.models import Beneficiary, Certification, beneficiary_of
from service.infra.clock import local_today

router = APIRouter(prefix="/api/v1", tags=["certificates"])


def _certificate(ctx: Ctx, db: DB, token: str | None, session_id: str) -> tuple[Certification, Beneficiary, Standing]:
    s = sessions.get_session(db, session_id)
    sessions.check_token(s, token, ctx.settings.certification.session_ttl_s)
    cert = db.scalar(select(Certification).where(Certification.session_id == s.id))
    b = beneficiary_of(db, s)  # None: a session without a beneficiary (a relative's verification) has no certificate
    if cert is None or b is None:
        raise NotFoundError("certificate (the session has no accepted certification)")
    # Never a copy of a void one: after a roster change it would name the record's new person.
    return cert, b, require_valid(db, cert, local_today(ctx.settings))


@router.get(
    "/sessions/{session_id}/certificate",
    summary="Certificate of an accepted certification (JSON)",
    response_model=Certificate,
    **EXACT,
)
def get_certificate(ctx: Ctx, db: DB, token: SessionToken, session_id: SessionId) -> Certificate:
    cert, b, st = _certificate(ctx, db, token, session_id)
    return certificate_view(b.name, b.id_masked, cert, st, ctx.settings.public_base_url)


@router.get("/sessions/{session_id}/certificate.png", summary="Printable certificate with QR code", **PNG)
def get_certificate_png(ctx: Ctx, db: DB, token: SessionToken, session_id: SessionId) -> PngResponse:
    cert, b, st = _certificate(ctx, db, token, session_id)
    return PngResponse(certificate_png(b.name, cert, st, ctx.settings.public_base_url))


@router.get(
    "/certificates/verify",
    summary="Public: verify a certificate code (from the QR code): genuine, and valid today or why not",
    response_model=CertificateCheck,
    **EXACT,
)
def verify(ctx: Ctx, db: DB, code: str) -> CertificateCheck:
    claims, st = check_code(db, ctx.keyring, code, local_today(ctx.settings))
    masked = {} if st.name_masked is None else {"name_masked": st.name_masked}  # unset: absent from the answer
    return CertificateCheck(
        valid=st.valid,
        status=st.status.value,
        message=st.message_zh,
        checked_on=st.checked_on.isoformat(),
        certification_id=claims.certification_id,
        id_masked=claims.id_masked,
        certified_on=claims.certified_on.isoformat(),
        valid_until=claims.valid_until.isoformat(),
        method=st.method,
        method_zh=st.method_zh,
        **masked,
    )
