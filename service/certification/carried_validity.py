"""The daily run's repair of certifications that still carry a revoked certification's date (docs/security.md,
Part BZ and the review_rules Part that follows it).

Before Part BZ a certification entered late (a counter or home visit dated in the past) stored the record's latest
validity, a later certification's, instead of its own. A revocation now cuts such a row back to its own validity
(`revocation.revalidate`), but one made before that version left the row as it was: the record read the right
date, while the row, still in force, kept the revoked 冒领's. The cycle run shelters anyone with a certification
row valid today, so the person stayed paid until the fraud's date; the public check answered `valid` for the late
entry's code and the console and 我的信息 showed that date. Those revocations will not happen again, so the daily
run (both databases, the service's own cycle rules) applies the revocation's cut to them before its cycle: one
rule, `revocation.cut_back`. Each row cut is audited. Idempotent: a row cut back no longer reaches the revoked
date, or is its own already.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from service.certification.audit import audit
from service.certification.current_person import made_for_current_person
from service.certification.cycle import CycleRules
from service.certification.models import Beneficiary, Certification, CertSession
from service.certification.revocation import cut_back, standing_certifications

log = logging.getLogger(__name__)
ACTION = "certification.validity_cut"


def cut_back_carried(db: Session, rules: CycleRules) -> int:
    """Cut back every certification in force that may carry the date of a revoked certification of the same
    person (dated before it, its stored validity at or past the revoked one's): the cut a revocation makes now.
    Returns how many rows were cut."""
    later = aliased(Certification)
    carried = exists().where(
        later.beneficiary_id == Certification.beneficiary_id,
        later.revoked_at.is_(None),
        later.own_validity.is_(False),  # a row stored with its own validity carries none (revocation.cut_back)
        later.certified_on < Certification.certified_on,  # entered for an earlier day: only such a row carries it
        later.valid_until >= Certification.valid_until,
    )
    revoked = db.execute(
        select(Certification, Beneficiary, CertSession.created_at)
        .join(Beneficiary, Beneficiary.id == Certification.beneficiary_id)
        .join(CertSession, CertSession.id == Certification.session_id)
        .where(Certification.revoked_at.is_not(None), carried)
        .order_by(Certification.beneficiary_id, Certification.id)
    ).all()
    done = 0
    for cert, b, opened in revoked:
        if not made_for_current_person(b, opened):  # the previous person's: counts for nobody (revalidate_all)
            continue
        for row, was in cut_back(b, standing_certifications(db, b), cert, rules):
            detail = {"certification": row.id, "revoked": cert.id, "valid_until_before": was.isoformat()}
            audit(db, "system", ACTION, b.external_id, detail | {"valid_until": row.valid_until.isoformat()})
            done += 1
    if done:
        log.warning("daily run: %d certifications carried a revoked certification's date: cut back", done)
    return done
