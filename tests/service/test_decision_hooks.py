"""The certification core calls only the features registered on its context (service/certification/contract.py).

A DecisionHook sees the machine's decision and the decision it returns is the one applied (the report it was
given is not mutated); hooks run in registration order; a staff decision reaches the registered notifiers. A
context whose composition root forgot ``install_features`` refuses to process (the certifier never runs, the
session is not decided), so a relative's verification video can never certify the relative through the bare core;
once installed, the same job is handled by the proxy feature (operator verified, nobody certified).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.decision.result import Decision, Outcome
from pipelines.decision.runner import CertificationReport
from pipelines.reasons import ReasonCode
from service.certification.context import ServiceContext
from service.certification.contract import Certifier, FeatureHooks, FeaturesNotInstalled
from service.certification.models import Certification, CertSession, Channel, SessionState
from service.certification.processing import claim, process
from service.certification.review import settle
from service.certification.sessions import create_session
from service.features.install import install_features
from service.features.proxy.models import ProxyOperator
from service.features.proxy.sessions import open_verification
from tests.service import factories
from tests.service.certifiers import FixedCertifier, fixed_decision


@dataclass
class RecordingHook:
    """A DecisionHook that records what it saw and returns ``returns`` (or the decision unchanged)."""

    returns: Decision | None = None
    seen: list[tuple[str, Decision]] = field(default_factory=list)
    reports: list[CertificationReport] = field(default_factory=list)

    def __call__(
        self, ctx: ServiceContext, session_id: str, certifier: Certifier, report: CertificationReport
    ) -> Decision:
        self.seen.append((session_id, report.decision))
        self.reports.append(report)
        return self.returns or report.decision


@dataclass
class RecordingNotifier:
    decisions: list[tuple[str, str | None]] = field(default_factory=list)

    def staff_decision(self, db: Session, s: CertSession) -> int:
        self.decisions.append((s.id, s.decision))
        return 1

    def request_closed(self, db: Session, request_id: int, openid: str, certified_by: str | None = None) -> int:
        return 0

    def review_video_purged(self, db: Session, request_id: int, openid: str) -> int:
        return 0


def queued(ctx: ServiceContext, db: Session, s: CertSession) -> str:
    s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
    s.state = SessionState.QUEUED
    ctx.storage.put(s.id_card_key, b"card")
    ctx.storage.put(s.video_key, b"video")
    return s.id


def self_session(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        return queued(ctx, db, create_session(db, ctx, b, Channel.SELF, False, "test").session)


def state_of(ctx: ServiceContext, sid: str) -> tuple[str, str | None, list[str]]:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        return s.state, s.decision, list(s.reasons or [])


def certifications(ctx: ServiceContext, sid: str) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count()).where(Certification.session_id == sid)) or 0)


def test_the_decision_a_hook_returns_is_the_one_applied(ctx: ServiceContext) -> None:
    ctx.hooks = FeatureHooks()  # only what this test registers: no proxy feature
    review = Decision(Outcome.REVIEW, [ReasonCode.SPOOF_SUSPECTED], {"card_similarity": 0.9}, {}, {})
    first, second = RecordingHook(returns=review), RecordingHook()
    ctx.hooks.decision["first"], ctx.hooks.decision["second"] = first, second
    ctx.hooks.mark_installed()
    sid = self_session(ctx)
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, FixedCertifier(Outcome.ACCEPT)), sid, "w1")
    assert first.seen == [(sid, fixed_decision(Outcome.ACCEPT))]  # the machine's decision
    assert second.seen == [(sid, review)]  # in registration order: the second sees the first's decision
    assert first.reports[0].decision == fixed_decision(Outcome.ACCEPT)  # its report was not mutated
    assert state_of(ctx, sid) == (SessionState.DECIDED, "review", ["SPOOF_SUSPECTED"])
    assert certifications(ctx, sid) == 0  # the machine said accept; the hook's review is what counts


def test_a_staff_decision_reaches_the_registered_notifier(ctx: ServiceContext) -> None:
    notifier = RecordingNotifier()
    ctx.hooks.notifiers["recording"] = notifier
    sid = self_session(ctx)
    assert claim(ctx, sid, "w1") == sid
    assert process(ctx, cast(Certifier, FixedCertifier(Outcome.REVIEW)), sid, "w1")
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        settle(db, ctx, s, "reject", "rev1", "不是本人", "staff:rev1")
    assert notifier.decisions == [(sid, "reject")]


def test_installing_twice_registers_each_feature_once(ctx: ServiceContext) -> None:
    install_features(install_features(ctx))
    assert list(ctx.hooks.decision) == ["proxy.policy", "proxy.relatives"]  # the policy first, as always
    assert list(ctx.hooks.decided) == ["proxy"] and list(ctx.hooks.accept) == ["proxy"]
    assert list(ctx.hooks.notifiers) == ["wechat"]


def test_a_context_without_its_features_refuses_a_relatives_verification(ctx: ServiceContext) -> None:
    number = factories.id_number(region="110101")
    with ctx.db() as db:
        op = ProxyOperator(id=str(uuid.uuid4()), channel="wechat", channel_hash=uuid.uuid4().hex, token_hash="-")
        db.add(op)
        db.flush()
        sid = queued(ctx, db, open_verification(db, ctx, op, number, "李建国", consent=False).session)
        op_id = op.id
    ctx.hooks = FeatureHooks()  # a composition root that forgot install_features
    certifier = FixedCertifier(Outcome.ACCEPT)
    assert claim(ctx, sid, "w1") == sid
    with pytest.raises(FeaturesNotInstalled):
        process(ctx, cast(Certifier, certifier), sid, "w1")
    assert certifier.runs == 0 and state_of(ctx, sid) == (SessionState.PROCESSING, None, [])
    assert certifications(ctx, sid) == 0

    install_features(ctx)  # the same job, retried by a worker that has its features
    assert claim(ctx, sid, "w1", reclaim_own=True) == sid
    assert process(ctx, cast(Certifier, certifier), sid, "w1")
    assert state_of(ctx, sid) == (SessionState.DECIDED, "accept", [])
    assert certifications(ctx, sid) == 0  # a verification certifies nobody: the proxy feature handled it
    with ctx.db() as db:
        row = db.get(ProxyOperator, op_id)
        assert row is not None and row.verified_at is not None and row.person_hash == ctx.keyring.id_hash(number)
