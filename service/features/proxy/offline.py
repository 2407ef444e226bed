"""Offline proxy rules for `pension-cert certify --proxy-operator-video`: the operator's template is pooled
from the best frames of their own video, then `proxy_auth` applies the proxy policy to the decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from proxy_auth import ProxyContext, apply_proxy_policy, check_operator
from service.adapters.cli.common import CliError
from service.features.proxy.policy import proxy_policy


def operator_template(certifier: Any, video: Path) -> np.ndarray:
    if not video.is_file():
        raise CliError(f"{video}: no such file")
    live = certifier.liveness.check(video, None)
    faces = [f.observation.embedding for f in live.best_frames if f.observation is not None]
    if not faces:
        raise CliError(f"{video}: no usable face of the operator")
    pooled = np.mean(faces, axis=0).astype(np.float32)
    out: np.ndarray = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
    return out


def apply_proxy_rules(certifier: Any, report: Any, operator_video: Path, first: bool) -> float | None:
    """Replace `report.decision` by the proxy decision; returns the elder-vs-operator similarity."""
    template = operator_template(certifier, operator_video)
    live = report.liveness
    probes = [f.observation for f in live.best_frames if f.observation is not None] if live else []
    policy = proxy_policy()
    check = check_operator(certifier.matcher, probes, template, policy) if probes else None
    # Offline there is no roster: the beneficiary's death is checked by the service, not here.
    report.decision = apply_proxy_policy(report.decision, ProxyContext(False, first, check), policy)
    return round(check.similarity, 6) if check else None
