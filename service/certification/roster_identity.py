"""A roster row that gives a stored record (same external_id) another ID number: told apart from the same number
(under a signing key no longer in use) and from Excel's damage, then the change itself and its announcement.

The change hands the record to that number's person: the face enrolled for the old number goes, the old person's
certification no longer counts (the record is dated as a new person's, suspension lifted), and every installed
feature is told in the import's transaction (``FeatureHooks.identity_changed``: the proxy feature ends the
relatives' bindings, the console raises a supervisor's alert), so a second person sees each such change
(docs/security.md, Part O).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.names import same_card_name
from service.certification.audit import audit
from service.certification.contract import IdentityChange
from service.certification.models import Beneficiary, BeneficiaryStatus, utcnow
from service.certification.roster_rows import RosterRow
from service.certification.roster_terms import ImportReport, ImportTerms
from service.infra.security import Keyring, mask_id, normalise_id


def zeroed_by_spreadsheet(keyring: Keyring, b: Beneficiary, row: RosterRow) -> bool:
    """The row's number is the stored one as Excel keeps it: its first 15 digits, then 000."""
    if not row.id_number.endswith("000"):
        return False
    try:
        stored = keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
    except (InvalidTag, ValueError):  # sealed with a key no longer in use: judged as before, by the hash
        return False
    return stored != row.id_number and stored[:15] + "000" == row.id_number


def same_number(keyring: Keyring, b: Beneficiary, row: RosterRow) -> bool:
    """The record's sealed number is the row's although no signing key in use made its stored hash (the key was
    dropped before `pension-cert rekey` reached it): the same person, whose hash is made again, not a change of ID
    number (docs/security.md, Part AH)."""
    try:
        stored = keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
    except (InvalidTag, ValueError):  # sealed with a media key no longer in use: judged by the hash, as before
        return False
    return normalise_id(stored) == normalise_id(row.id_number)


def new_hash(db: Session, hashes: tuple[str, ...], terms: ImportTerms) -> str:
    """The hash a record takes for a number: during a rotation the one the person's rows elsewhere carry (a
    relative's claim or verified identity, still under a previous key: `FeatureHooks.person_hash`), so that one
    person keeps one hash until the rekey moves them all; else the current key's."""
    if len(hashes) > 1 and terms.hooks is not None:
        return terms.hooks.person_hash(db, hashes) or hashes[0]
    return hashes[0]


def identity_changed(b: Beneficiary, row: RosterRow, report: ImportReport) -> None:
    """The record now names another ID number: a typo corrected, or the record handed to someone else. Neither
    the face enrolled for the old number nor the old person's certification is this number's person's: the face
    goes (the next certification is checked against the new card, and enrols again), and the record is dated as
    a new person's (`roster_upsert` then gives the row's dates, else the first-import grace date; a suspension
    for the old person's lapse is lifted), so the new person must certify. Audited with both masked numbers."""
    enrolled = b.template is not None
    b.template, b.template_model, b.template_consent = None, None, False
    before, certified_before, since_before = b.valid_until, b.last_certified_on, b.identity_since
    grace_before = b.grace_dated
    b.valid_until, b.last_certified_on, b.grace_dated = None, None, False
    b.identity_since = utcnow()  # the certifications stored so far are the previous person's
    if b.status == BeneficiaryStatus.SUSPENDED:
        b.status, b.suspended_on = row.status, None
    report.identity_changed.append(
        {
            "external_id": b.external_id,
            "from": b.id_masked,
            "to": mask_id(row.id_number),
            "template_cleared": enrolled,
            # Not another middle dot, nor traditional characters (the ID-card step's rule); 锺 for 钟 is another name.
            "name_changed": not same_card_name(b.name, row.name),
            "valid_until_before": before.isoformat() if before else None,
            # What a supervisor's "same person" finding gives back (service/certification/identity_review.py).
            "last_certified_on_before": certified_before.isoformat() if certified_before else None,
            "identity_since_before": since_before.isoformat() if since_before else None,
            "grace_dated_before": grace_before,
        }
    )


def announce_identity_change(
    db: Session, change: dict[str, Any], import_id: int, actor: str, terms: ImportTerms
) -> None:
    """Audit one ID-number change and tell the features (in the import's transaction: all or nothing). The
    record's row is locked already (`roster_upsert.lock_records`, then updated by `roster_upsert.upsert`); the
    features' hooks lock their rows after it (the proxy feature: the record's bindings), in the lock order of
    service/certification/lock_order.py."""
    audit(db, actor, "roster.identity_changed", change["external_id"], change | {"import": import_id})
    if terms.hooks is None:
        return
    b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == change["external_id"]))
    if b is None:
        return
    told = IdentityChange(
        b.id, b.external_id, change["from"], change["to"], bool(change["name_changed"]), import_id, actor
    )
    terms.hooks.identity_changed(db, told)
