"""Who the relatives of a beneficiary are, as far as the service knows, and the kinship rule in the worker.

Relatives with an enrolled face template: the proxy operators ever bound to the beneficiary (a binding is a
declared family tie; an ended one still is, a revoked one, the record's previous person's, is not), and the
other beneficiaries of the same roster household. Their templates let `proxy_auth.apply_relative_rule` send a
session to review when the face in the video is as close to a relative as to the claimed person (a relative
presenting a dead parent's card, 冒领).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pipelines.decision.result import Decision
from proxy_auth import RelativePolicy, RelativeTemplate, apply_relative_rule
from service.certification.context import ServiceContext
from service.certification.models import Beneficiary, CertSession, beneficiary_of
from service.certification.templates import load_template
from service.features.proxy.models import BindingStatus, ProxyBinding, ProxyOperator, ProxyOperatorIdentity
from service.features.proxy.operators import load_template as load_operator_template
from service.infra.config import Settings

if TYPE_CHECKING:
    from service.certification.contract import CertificationReport, Certifier

log = logging.getLogger(__name__)


def relative_policy(settings: Settings) -> RelativePolicy:
    if settings.certification.face_relative_margin is None:
        return RelativePolicy()
    return RelativePolicy(margin=settings.certification.face_relative_margin)


def relative_templates(db: Session, ctx: ServiceContext, session_id: str, model: str) -> list[RelativeTemplate]:
    """(label, embedding) of every relative of the session's beneficiary whose template was made by `model`
    (an embedding of another recognizer version is not comparable). Labels hold only identifiers the decision
    JSON may show: the operator id, the beneficiary's external id."""
    s = db.get(CertSession, session_id)
    b = beneficiary_of(db, s) if s is not None else None
    if b is None:
        return []
    return [*_operators(db, ctx, b, model), *_household(db, ctx, b, model)]


def _operators(db: Session, ctx: ServiceContext, b: Beneficiary, model: str) -> list[RelativeTemplate]:
    # Ended and expired bindings count (a relative who unbinds and then certifies as the parent is the 冒领 case
    # this rule exists for); revoked ones do not: the roster gave the record another ID number, and their
    # relatives are the previous person's (bindings.end_for_identity_change revokes every binding of the record).
    bound = select(ProxyBinding.operator_id).where(
        ProxyBinding.beneficiary_id == b.id, ProxyBinding.status != BindingStatus.REVOKED
    )
    who = ProxyOperatorIdentity
    ops = db.scalars(
        select(ProxyOperator)
        .join(who, who.operator_id == ProxyOperator.id)
        .where(
            ProxyOperator.id.in_(bound),
            who.template_model == model,
            # Never the beneficiary themself (nobody is their own proxy, but the rule must not rely on it).
            or_(who.person_hash.is_(None), who.person_hash != b.id_hash),
        )
        .order_by(ProxyOperator.id)
    )
    out: list[RelativeTemplate] = []
    for op in ops:
        template = load_operator_template(ctx, op)
        if template is not None:
            out.append((f"proxy_operator:{op.id}", template[0]))
    return out


def _household(db: Session, ctx: ServiceContext, b: Beneficiary, model: str) -> list[RelativeTemplate]:
    if not b.household:
        return []
    members = db.scalars(
        select(Beneficiary)
        .where(Beneficiary.household == b.household, Beneficiary.id != b.id, Beneficiary.template_model == model)
        .order_by(Beneficiary.external_id)
    )
    out: list[RelativeTemplate] = []
    for m in members:
        template = load_template(ctx, m)
        if template is not None:
            out.append((f"household:{m.external_id}", template.embedding))
    return out


def apply_rule(ctx: ServiceContext, session_id: str, certifier: Certifier, report: CertificationReport) -> Decision:
    """The kinship-checked decision (every session: self-service and proxy). `report.decision` unchanged
    without a face in the video or without relatives' templates."""
    live = report.liveness
    probes = [f.observation for f in live.best_frames if f.observation is not None] if live else []
    if not probes:
        return report.decision
    model = str(certifier.matcher.recognizer.version)
    with ctx.db() as db:
        relatives = relative_templates(db, ctx, session_id, model)
    if not relatives:
        return report.decision
    return apply_relative_rule(report.decision, probes, relatives, relative_policy(ctx.settings))
