"""Subject-disjoint folds: nobody is both in a calibration set and in the set it is measured on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from pipelines.liveness.evaluation.core import (
    SPOOF,
    Presentation,
)

# --------------------------------------------------------------------------------------------------------- folds


def unit_of(p: Presentation) -> str:
    """The resampling and fold unit: the subject, or the presentation itself when the subject is unknown."""
    # "\0" cannot start a real subject name, so unknown-subject units never merge with a subject.
    return p.subject if p.subject else f"\0{p.key}"


def _units(presentations: Sequence[Presentation]) -> dict[str, list[Presentation]]:
    """Resampling and fold units: one per known subject, one per presentation of unknown subject."""
    units: dict[str, list[Presentation]] = defaultdict(list)
    for p in presentations:
        units[unit_of(p)].append(p)
    return dict(units)


def subject_folds(presentations: Sequence[Presentation], k: int, seed: int) -> list[list[Presentation]]:
    """k folds, every subject in exactly one; together they hold every presentation once.

    Subjects are dealt greedily, those with the most attacks first: each goes to the fold with the fewest attacks
    (when it has attacks) and then the fewest presentations, so that attacks, which are scarce, are spread and
    every calibration set sees some. The seed orders subjects of equal weight.
    """
    if k < 2:
        raise ValueError("cross-validation needs k >= 2 folds")
    units = _units(presentations)
    if len(units) < k:
        raise ValueError(f"{len(units)} subjects cannot fill {k} folds")
    names = sorted(units)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    attacks = {u: sum(p.label == SPOOF for p in units[u]) for u in names}
    order.sort(key=lambda u: (-attacks[u], -len(units[u])))  # stable: the shuffle breaks the ties
    folds: list[list[Presentation]] = [[] for _ in range(k)]
    fold_attacks = [0] * k
    for u in order:
        best = min(range(k), key=lambda f: (fold_attacks[f] if attacks[u] else 0, len(folds[f]), f))
        folds[best].extend(units[u])
        fold_attacks[best] += attacks[u]
    return folds


def calibration_pool(folds: Sequence[Sequence[Presentation]], index: int) -> list[Presentation]:
    """The presentations that choose fold `index`'s threshold: the other folds' known-subject ones."""
    return [p for j, fold in enumerate(folds) if j != index for p in fold if p.subject]
