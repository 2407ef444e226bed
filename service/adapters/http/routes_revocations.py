"""The operator API's revocation of a certification found fraudulent in the bureau's own systems (death records
matched against payments, the fund's audit): what names it, the retry of a request, the features' share (a
relative's binding locked: their RevokedHook) and the audit are service/certification/revoke_request.py's; the
revocation's rule is service/certification/revocation.py's. Operator keys only (a channel key is refused 403 and
audited); an operator key is the bureau's, for every region."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictInt

from service.adapters.http.deps import DB, NO_NUL, AdminCaller, Ctx, IsoDate, RequestKey
from service.adapters.http.schemas import EXACT, Revocation
from service.certification.revocation import MAX_NOTE_CHARS
from service.certification.revoke_request import MAX_ROW_ID, Target, revoke_requested

router = APIRouter(prefix="/api/v1", tags=["registry"])


class RevokeBody(BaseModel):
    # Strict: "12" or 12.0 is a 422 FIELD_INVALID, not certification 12; a larger id is a 422, not a database error.
    certification_id: StrictInt | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="the certification (its public check)"
    )
    session_id: str | None = Field(None, max_length=64, pattern=NO_NUL, description="or the session it accepted")
    external_id: str | None = Field(
        None, max_length=64, pattern=NO_NUL, description="or the person, with certified_on; checked with the others"
    )
    certified_on: IsoDate | None = Field(
        None, description="the day of the certification (YYYY-MM-DD), with external_id"
    )
    reason: str = Field(max_length=32, description="impersonation (冒领), wrong_accept (错误受理) or other")
    note: str = Field(max_length=MAX_NOTE_CHARS + 100, pattern=NO_NUL, description="what was found (1 to 500 chars)")


@router.post(
    "/certifications/revoke",
    summary="Revoke a certification found fraudulent (operator key; Idempotency-Key: a retry is answered as the first)",
    response_model=Revocation,
    **EXACT,
)
def post_revoke(ctx: Ctx, db: DB, caller: AdminCaller, request_key: RequestKey, body: RevokeBody) -> Revocation:
    target = Target(body.certification_id, body.session_id, body.external_id, body.certified_on)
    asked = (body.reason, body.note, caller.actor, request_key, {"via": "api"})
    # caller.aliases: the key's names under the previous signing keys in use (a retry across a rotation).
    done = revoke_requested(db, ctx, target, *asked, aliases=caller.aliases)
    db.commit()  # acknowledged only once committed
    return Revocation.model_validate(done.as_json())
