"""Offline proxy rules for `pension-cert certify --proxy-operator-video`: the operator's template is pooled
from the best frames of their own video, then `proxy_auth` applies the proxy policy to the decision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.decision.result import Decision
from pipelines.face_match.pooling import pool_embeddings
from pipelines.reasons import ReasonCode
from proxy_auth import ProxyContext, apply_proxy_policy, check_operator
from service.certification.errors import InvalidInputError
from service.features.proxy.policy import proxy_policy

if TYPE_CHECKING:
    from service.certification.contract import CertificationReport, Certifier


def operator_template(certifier: Certifier, video: Path) -> np.ndarray:
    if not video.is_file():
        raise InvalidInputError("FILE_NOT_FOUND", f"{video}: no such file")
    live = certifier.liveness.check(video, None)
    faces = [f.observation.embedding for f in live.best_frames if f.observation is not None]
    if not faces:
        raise InvalidInputError(ReasonCode.FACE_NOT_FOUND, f"{video}: no usable face of the operator")
    return pool_embeddings(faces, unit=True)


def apply_proxy_rules(
    certifier: Certifier, report: CertificationReport, operator_video: Path, first: bool
) -> tuple[Decision, float | None]:
    """The proxy decision for `report` (left unchanged) and the elder-vs-operator similarity."""
    template = operator_template(certifier, operator_video)
    live = report.liveness
    probes = [f.observation for f in live.best_frames if f.observation is not None] if live else []
    policy = proxy_policy()
    check = check_operator(certifier.matcher, probes, template, policy) if probes else None
    # Offline there is no roster: the beneficiary's death is checked by the service, not here.
    decision = apply_proxy_policy(report.decision, ProxyContext(False, first, check), policy)
    return decision, round(check.similarity, 6) if check else None
