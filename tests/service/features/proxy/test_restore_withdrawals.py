"""The relatives' side of a restore from a dump older than a withdrawal (docs/security.md, Part BU "Left"): a
relative's withdrawal of their own template, and a binding the elder ended, came back with the dump. Both are now
recorded in the media store and done again by `pension-cert console record-restore` (the proxy feature's
`FeatureHooks.reapply`), audited, once. The restore is simulated as tests/service/test_restore_withdrawals.py does."""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import select

from service.certification.audit import audit
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Beneficiary
from service.features.proxy.elder_bindings import ENDED_BY_ELDER, end_by_elder
from service.features.proxy.models import (
    ENDED_STATUSES,
    BindingStatus,
    ProxyBinding,
    ProxyOperator,
    ProxyOperatorIdentity,
)
from service.features.proxy.operators import mark_verified, store_template
from service.features.proxy.own_template import WITHDRAWN_ACTION, withdraw_operator_template
from tests.service import factories
from tests.service.test_restore_withdrawals import entries, record_the_restore, restore, take_dump


def test_a_relatives_withdrawal_after_the_dump_is_done_again_after_the_restore(ctx: ServiceContext) -> None:
    """A relative withdrew their own template on "我的信息" after the dump. Before: the restore brought it back,
    with its consent, and their next proxy certification compared their face with it."""
    number = factories.id_number(region="110105", seq=512)
    with ctx.db() as db:
        op, _ = factories.relative_binding(db, factories.beneficiary(db, ctx.keyring).id)
        store_template(ctx, op, np.ones(512, np.float32), "test-recognizer")
        mark_verified(op, ctx.keyring.id_hash(number), "1101**********5120", "王秀兰")
        op_id = op.id
    kept = factories.update(ctx, ProxyOperatorIdentity, op_id)
    dump = take_dump(ctx)
    with ctx.db() as db:  # as the page's route does (my_data.withdraw_relative_template)
        operator = db.get(ProxyOperator, op_id)
        assert operator is not None
        done = withdraw_operator_template(db, ctx, operator)
        audit(db, "wechat:relative", WITHDRAWN_ACTION, op_id, done.detail("wechat"))
    restore(
        ctx,
        dump,
        ProxyOperatorIdentity,
        op_id,
        template=kept.template,
        template_model=kept.template_model,
        template_consent=True,
    )
    assert factories.update(ctx, ProxyOperatorIdentity, op_id).template is not None

    assert record_the_restore(ctx) == [WITHDRAWN_ACTION]
    after = factories.update(ctx, ProxyOperatorIdentity, op_id)
    assert (after.template, after.template_model, after.template_consent) == (None, None, False)
    [(actor, target, detail)] = entries(ctx, AuditEntry, WITHDRAWN_ACTION)
    assert (actor, target, detail["via"], detail["event"]) == ("cli:restore", op_id, "restore", done.event)
    assert record_the_restore(ctx) == []  # a rerun does nothing twice
    assert len(entries(ctx, AuditEntry, WITHDRAWN_ACTION)) == 1


def test_a_binding_the_elder_ended_after_the_dump_ends_again_after_the_restore(ctx: ServiceContext) -> None:
    """The elder ended a relative's binding after the dump. Before: the restore brought it back active, and the
    relative could certify for the elder again."""
    with ctx.db() as db:
        elder = factories.beneficiary(db, ctx.keyring)
        _, row = factories.relative_binding(db, elder.id)
        elder_id, external_id, binding_id = elder.id, elder.external_id, row.id
    dump = take_dump(ctx)
    with ctx.db() as db:  # as the page's route does (my_data.end_binding)
        b = db.get(Beneficiary, elder_id)
        assert b is not None
        ended = end_by_elder(db, b, binding_id, "wechat:elder")
        ended_at, status = ended.ended_at, ended.status
    restore(ctx, dump, ProxyBinding, binding_id, status=BindingStatus.ACTIVE, ended_at=None)
    assert factories.update(ctx, ProxyBinding, binding_id).status == BindingStatus.ACTIVE

    assert record_the_restore(ctx) == [ENDED_BY_ELDER]
    after = factories.update(ctx, ProxyBinding, binding_id)
    assert after.status == status and status in ENDED_STATUSES  # as the elder's own end left it
    assert ended_at is not None and after.ended_at is not None
    assert ended_at - dt.timedelta(seconds=1) <= after.ended_at <= ended_at  # the elder's own, not the restore's
    [(actor, target, detail)] = entries(ctx, AuditEntry, ENDED_BY_ELDER)
    assert (actor, target, detail["binding"], detail["via"]) == ("cli:restore", external_id, binding_id, "restore")
    assert record_the_restore(ctx) == []
    with ctx.db() as db:
        assert len(db.scalars(select(AuditEntry).where(AuditEntry.action == ENDED_BY_ELDER)).all()) == 1
