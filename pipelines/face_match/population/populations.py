"""The populations thresholds are calibrated on, as selections of a labelled face set.

Only faces that pass the matcher's quality gate count: a flagged face never reaches the accept band.
Children of the kinship sets are left out (nobody certifies for a pension with a child's face); relatives are
scored apart, never as ordinary impostors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipelines.face_match.population.faceset import FaceSet

CHILD_ROLES = ("S", "D")


@dataclass(frozen=True)
class Population:
    name: str
    description: str
    select: Callable[[FaceSet, np.ndarray], np.ndarray]  # (faces, east_asian mask) → faces of the population


def _adults(faces: FaceSet) -> np.ndarray:
    child = (faces["source"] == "tskinface") & np.isin(faces["role"], CHILD_ROLES)
    return np.asarray(faces.quality_ok() & ~child)


def _east_asian_adult(faces: FaceSet, east_asian: np.ndarray) -> np.ndarray:
    return np.asarray(_adults(faces) & east_asian)


def _east_asian_50plus(faces: FaceSet, east_asian: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(_adults(faces) & east_asian & (faces.ages() >= 50))


POPULATIONS = (
    Population(
        "east_asian_adult",
        "East-Asian adults: UTKFace Asian 18+, TSKinFace parents of Asian families, FIW East-Asian families, "
        "Asian celebrities",
        _east_asian_adult,
    ),
    Population(
        "east_asian_50plus",
        "East-Asian faces labelled 50 or older (UTKFace ages)",
        _east_asian_50plus,
    ),
)
