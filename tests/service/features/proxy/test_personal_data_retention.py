"""The relatives' personal data kept no longer than their purpose needs (docs/security.md, Part H): the face
template of a relative who is themselves a pensioner recorded as deceased goes with the daily run, as the
beneficiary's does; the number and name a verification claimed go with its session's media unless it was
accepted (the relative's identity)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary, CertSession, utcnow
from service.certification.retention import storage_upkeep
from service.features.proxy.models import CLAIM_FIELD, ProxyClaim, ProxyOperator, ProxyOperatorIdentity
from service.features.proxy.operators import mark_verified, store_template
from service.features.proxy.own_template import person_operator_ids
from service.features.proxy.sessions import open_verification
from service.infra.security import mask_id
from tests.service import factories


def _verified_relative(ctx: ServiceContext, elder_id: int, number: str, name: str) -> str:
    """A relative bound to `elder_id`, verified as the holder of `number`, their face template kept: the account."""
    with ctx.db() as db:
        op, _binding = factories.relative_binding(db, elder_id)
        store_template(ctx, op, np.ones(512, np.float32), "test-recognizer")
        mark_verified(op, ctx.keyring.id_hash(number), "1101**********4110", name)
        return op.id


def test_the_daily_run_erases_a_deceased_relatives_own_template(ctx: ServiceContext) -> None:
    """A husband and wife who each certified for the other: he dies. Before: the beneficiary template went and
    his template on his relative's identity was kept for ever."""
    his, hers = factories.id_number(region="110105", seq=411), factories.id_number(region="110105", seq=412)
    with ctx.db() as db:
        husband = factories.beneficiary(db, ctx.keyring, id_number=his)
        wife = factories.beneficiary(db, ctx.keyring, id_number=hers)
        factories.enrol_template(ctx.keyring, husband, np.ones(512, np.float32), "test-recognizer")
        husband_id, wife_id = husband.id, wife.id
    his_account = _verified_relative(ctx, wife_id, his, "张建国")
    her_account = _verified_relative(ctx, husband_id, hers, "张秀英")  # alive: she keeps hers
    factories.update(ctx, Beneficiary, husband_id, status="deceased")
    out = storage_upkeep(ctx)
    assert (out["templates_erased"], out["proxy_templates_erased"]) == (1, 1)
    with ctx.db() as db:
        gone, kept = db.get(ProxyOperatorIdentity, his_account), db.get(ProxyOperatorIdentity, her_account)
        b = db.get(Beneficiary, husband_id)
        assert b is not None and b.template is None
        assert gone is not None and (gone.template, gone.template_model, gone.template_consent) == (None, None, False)
        assert kept is not None and kept.template is not None and kept.template_consent
        entries = db.scalars(select(AuditEntry).where(AuditEntry.target == his_account)).all()
        assert [(e.action, e.detail) for e in entries] == [
            ("retention.template", {"reason": "deceased", "relative": True})
        ]
    assert storage_upkeep(ctx)["proxy_templates_erased"] == 0  # idempotent


def test_an_unaccepted_verifications_number_and_name_go_with_its_media(ctx: ServiceContext) -> None:
    """A stranger's rejected try at a relative's number, then the relative's own accepted verification, both
    decided before the retention period. Before: the rejected claim kept the full number (the service could open
    it) and the typed name for ever beside its purged session. The accepted one, the relative's identity, is kept,
    and what reads the person's number from their claims passes the emptied one by."""
    number = factories.id_number(region="110105", seq=778)
    decided = utcnow() - dt.timedelta(days=ctx.settings.storage.retention_days + 1)
    with ctx.db() as db:
        stranger, _ = factories.relative_binding(db, factories.beneficiary(db, ctx.keyring).id)
        relative, _ = factories.relative_binding(db, factories.beneficiary(db, ctx.keyring).id)
        rejected = open_verification(db, ctx, stranger, number, "李建国", consent=False).session.id
        accepted = open_verification(db, ctx, relative, number, "王秀兰", consent=False).session.id
        mark_verified(relative, ctx.keyring.id_hash(number), mask_id(number), "王秀兰")
        relative_id = relative.id
    for sid, decision in ((rejected, "reject"), (accepted, "accept")):
        factories.update(ctx, CertSession, sid, state="decided", decision=decision, decided_at=decided)
    assert storage_upkeep(ctx)["proxy_claims_erased"] == 1
    with ctx.db() as db:
        gone, kept = db.get(ProxyClaim, rejected), db.get(ProxyClaim, accepted)
        assert gone is not None and (gone.id_enc, gone.name) == ("", "")
        assert (gone.id_hash, gone.id_masked) == (ctx.keyring.id_hash(number), mask_id(number))
        assert kept is not None and ctx.keyring.decrypt_field(kept.id_enc, CLAIM_FIELD) == number
        op = db.get(ProxyOperator, relative_id)
        assert op is not None and person_operator_ids(db, ctx, op) == [relative_id]
    assert storage_upkeep(ctx)["proxy_claims_erased"] == 0  # idempotent
