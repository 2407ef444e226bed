"""A revocation asked for outside the staff console: by the bureau's own systems, which find fraud in their own data
(death records matched against payments, the fund's audit), through the operator API
(`POST /api/v1/certifications/revoke`), and by an operator on the command line (`pension-cert revoke`).

The revocation itself, its rule and its consequences are the core's (service/certification/revocation.py,
`revoke_certification`); here only what a request from outside adds:

- **what names the certification** (`Target`): its id (on the certificate's public check, the console), its
  session id (the channel back-end that opened it), or the person's external id and the day of the certification
  (what a bureau's payment system holds: the record's number and its last certification date). A day with two
  certifications of the person is ambiguous (CERTIFICATION_AMBIGUOUS), whatever their state, so a retried request
  never falls on the other one; an external id given with an id or a session must be the certification's owner's;
- **a retried request** (a bureau system that timed out sends it again, under the same request key) is answered as
  the first was, marked `replayed`, rather than refused as revoked already (which would read as someone else
  having revoked it): the request key is kept, digested, with what was asked in the request's own audit entry
  (`REQUEST_ACTION`); the same key with another reason, note or actor is IDEMPOTENCY_MISMATCH, another key a
  second revocation (CERTIFICATION_REVOKED). Keys are per certification;
- **what became of the evidence**: the answer says whether the session's card and video are held (`evidence`,
  and until when: the hold's stored end) or were deleted already, so the bureau learns it without the console;
- **who asked**: the operator key's identity (`admin:<mac8>`) or the command line's `--actor`, recorded as the
  revocation's actor, with how the request came (`via`) and, for the command line, the account that ran it.

What a feature adds to a revocation (the console: a relative's binding locked) runs here as its `RevokedHook`
(`ctx.hooks.revocations`, service/certification/contract.py), so both routes pass through this one function. The
person learns of it by the WeChat channel's schedule, whichever route revoked (service/features/wechat/revoked.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.errors import InvalidInputError, NotFoundError, ServiceError
from service.certification.models import Beneficiary, Certification
from service.certification.request_replay import digest, first_request
from service.certification.revocation import checked_reason, revoke_certification

REQUEST_ACTION = "certification.revoke.request"
UNKNOWN = "CERTIFICATION_UNKNOWN"
MAX_ROW_ID = 2**31 - 1  # an integer column (PostgreSQL, SQLite's bound too): a larger id names no row


@dataclass(frozen=True)
class Target:
    """What names the certification: exactly one of `certification_id`, `session_id`, `certified_on` (the last
    with `external_id`). `external_id` with one of the first two: checked to be the certification's owner."""

    certification_id: int | None = None
    session_id: str | None = None
    external_id: str | None = None
    certified_on: dt.date | None = None


@dataclass(frozen=True)
class RevokeAnswer:
    """What the caller is told: the revocation, as the first request made it (`replayed`: a retried request)."""

    certification_id: int
    session_id: str
    external_id: str
    certified_on: dt.date
    reason: str
    revoked_at: dt.datetime
    counted: bool
    valid_until: dt.date | None
    last_certified_on: dt.date | None
    template_cleared: bool
    evidence: str  # evidence_hold.Evidence: held, purged, none, not_held
    evidence_held_until: dt.datetime | None  # the hold's end (naive UTC) when held
    replayed: bool

    def as_json(self) -> dict[str, Any]:
        """The answer as the operator API and `pension-cert revoke` give it: dates ISO, times UTC with Z."""
        return {
            "certification_id": self.certification_id,
            "session_id": self.session_id,
            "external_id": self.external_id,
            "certified_on": self.certified_on.isoformat(),
            "reason": self.reason,
            "revoked_at": self.revoked_at.isoformat() + "Z",
            "counted": self.counted,
            "valid_until": _iso(self.valid_until),
            "last_certified_on": _iso(self.last_certified_on),
            "template_cleared": self.template_cleared,
            "evidence": self.evidence,
            "evidence_held_until": self.evidence_held_until.isoformat() + "Z" if self.evidence_held_until else None,
            "replayed": self.replayed,
        }


def find_certification(db: Session, target: Target) -> tuple[Certification, Beneficiary]:
    """The certification `target` names and its person; REVOKE_TARGET, CERTIFICATION_UNKNOWN or
    CERTIFICATION_AMBIGUOUS."""
    named = [v is not None for v in (target.certification_id, target.session_id, target.certified_on)]
    if sum(named) != 1 or (target.certified_on is not None and not target.external_id):
        raise InvalidInputError(
            "REVOKE_TARGET", "name the certification: certification_id, session_id, or external_id with certified_on"
        )
    if target.certification_id is not None and not 1 <= target.certification_id <= MAX_ROW_ID:
        raise InvalidInputError("REVOKE_TARGET", f"a certification id is 1 to {MAX_ROW_ID}")
    if target.certification_id is not None:
        cert = db.get(Certification, target.certification_id)
    elif target.session_id is not None:
        cert = db.scalar(select(Certification).where(Certification.session_id == target.session_id))
    else:
        found = db.scalars(
            select(Certification)
            .join(Beneficiary, Beneficiary.id == Certification.beneficiary_id)
            .where(Beneficiary.external_id == target.external_id, Certification.certified_on == target.certified_on)
            .order_by(Certification.id)
        ).all()
        if len(found) > 1:
            ids = ", ".join(str(c.id) for c in found)
            raise ServiceError("CERTIFICATION_AMBIGUOUS", f"{len(found)} certifications that day ({ids}): name one")
        cert = found[0] if found else None
    b = db.get(Beneficiary, cert.beneficiary_id) if cert is not None else None
    if cert is None or b is None or (target.external_id and b.external_id != target.external_id):
        raise NotFoundError("certification", UNKNOWN)
    return cert, b


def revoke_requested(
    db: Session,
    ctx: ServiceContext,
    target: Target,
    reason: str,
    note: str,
    actor: str,
    request_key: str | None,
    via: dict[str, Any],
    *,
    aliases: tuple[str, ...] = (),
) -> RevokeAnswer:
    """Revoke what `target` names, in the caller's transaction, as `actor`, then every feature's RevokedHook; a
    retry of the request `request_key` (None: no retry is recognised) is answered as the first, nothing run again.
    `via`: how the request came, for its audit entry; `ctx`: the rules, EVIDENCE_HOLD_DAYS (the evidence hold's
    length: revocation.revoke_certification) and the hooks; `aliases`: the same caller's names under the previous
    signing keys in use (an operator key's `admin:<mac8>` changes with the key: a retry across a rotation is still
    this caller's)."""
    why, text = checked_reason(reason, note)
    cert, b = find_certification(db, target)
    asked = digest(f"{why.value}\n{text}")
    days = ctx.settings.storage.evidence_hold_days
    try:
        done = revoke_certification(db, ctx.rules, cert.id, why.value, text, actor, hold_days=days)
    except ServiceError as exc:
        if exc.code != "CERTIFICATION_REVOKED" or request_key is None:
            raise
        return _replayed(db, cert, b, (actor, *aliases), digest(request_key), asked, exc)
    detail = {
        **via,
        "certification": cert.id,
        "request": digest(request_key) if request_key is not None else None,
        "asked": asked,
        "counted": done.counted,
        "valid_until": _iso(done.valid_until),
        "last_certified_on": _iso(done.last_certified_on),
        "template_cleared": done.template_cleared,
        "evidence": done.evidence.value,
        "evidence_held_until": _iso_time(done.evidence_held_until),
    }
    audit(db, actor, REQUEST_ACTION, b.external_id, detail)
    ctx.hooks.revoked(db, cert.session_id, actor, b.external_id)
    return _answer(cert, b, detail, replayed=False)


def _replayed(
    db: Session,
    cert: Certification,
    b: Beneficiary,
    actors: tuple[str, ...],
    key: str,
    asked: str,
    refused: ServiceError,
) -> RevokeAnswer:
    """The answer to a retried request: the first one's, from its audit entry (request_replay.first_request: the
    rule every operator route's retry follows); `refused` when no request of this key revoked the certification (it
    was revoked by another request, or in the console)."""
    detail = first_request(
        db, REQUEST_ACTION, b.external_id, key, asked, actors, lambda d: d.get("certification") == cert.id
    )
    if detail is None:
        raise refused
    return _answer(cert, b, detail, replayed=True)


def _answer(cert: Certification, b: Beneficiary, detail: dict[str, Any], replayed: bool) -> RevokeAnswer:
    revoked_at = cert.revoked_at
    if revoked_at is None or cert.revoke_reason is None:  # a revoked row has both (revocation.py sets them)
        raise ServiceError("CERTIFICATION_UNKNOWN", f"certification {cert.id} is not revoked")
    return RevokeAnswer(
        certification_id=cert.id,
        session_id=cert.session_id,
        external_id=b.external_id,
        certified_on=cert.certified_on,
        reason=cert.revoke_reason,
        revoked_at=revoked_at,
        counted=bool(detail.get("counted")),
        valid_until=_date(detail.get("valid_until")),
        last_certified_on=_date(detail.get("last_certified_on")),
        template_cleared=bool(detail.get("template_cleared")),
        evidence=str(detail.get("evidence", "not_held")),
        evidence_held_until=_time(detail.get("evidence_held_until")),
        replayed=replayed,
    )


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else None


def _iso_time(at: dt.datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at is not None else None


def _time(value: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
