"""One embedding pooling: several frame embeddings of one person → one identity vector.

Every caller pools the same way: the mean of the embeddings, in their own dtype. A probe for matching is used
as it is (cosine ignores its length); a template that is stored or compared as a vector (an enrolled template,
a proxy operator's template, the kinship study's templates) is cast to float32 and scaled to unit length.
Which frames are pooled is :func:`pooling_mask`: the quality-passing ones, or all of them when none passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.face_match.result import FaceObservation

# Guards the division of a (degenerate) all-zero mean: it stays zero rather than becoming NaN.
_MIN_NORM = 1e-12


def pool_embeddings(embeddings: Sequence[np.ndarray] | np.ndarray, *, unit: bool) -> np.ndarray:
    """The mean of the embeddings (rows); ``unit``: as float32, scaled to length 1 (a template)."""
    pooled: np.ndarray = np.mean(embeddings, axis=0)
    if not unit:
        return pooled
    pooled = pooled.astype(np.float32)
    out: np.ndarray = pooled / max(float(np.linalg.norm(pooled)), _MIN_NORM)
    return out


def pooling_mask(probes: Sequence[FaceObservation]) -> list[bool]:
    """Which probes are pooled: the quality-passing ones, or all of them when none passes."""
    usable = [p.quality.ok for p in probes]
    return usable if any(usable) else [True] * len(probes)


def pooled_embedding(probes: Sequence[FaceObservation]) -> np.ndarray:
    """The probe of a match: the pooled frames' mean is a steadier identity than any one frame."""
    mask = pooling_mask(probes)
    return pool_embeddings([p.embedding for p, u in zip(probes, mask, strict=True) if u], unit=False)


def pooled_template(probes: Sequence[FaceObservation]) -> np.ndarray | None:
    """The unit-length float32 template enrolled from an attempt's frames; None without frames."""
    if not probes:
        return None
    mask = pooling_mask(probes)
    return pool_embeddings([p.embedding for p, u in zip(probes, mask, strict=True) if u], unit=True)
