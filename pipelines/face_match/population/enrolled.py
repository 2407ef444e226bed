"""Thresholds measured on a deployment's own enrolled pensioners: the population the stated FAR is about.

The shipped thresholds were measured on the public faces we could gather (docs/face_data.md). A deployment holds
the faces of the very people who certify: every two enrolled pensioners of different households are an
impostor pair of the right population (age, ethnicity, cameras). ``calibrate_enrolled`` measures thresholds on
them the way :mod:`pipelines.face_match.population.calibrate` does on ours: people split in two by a stable
hash of their id, thresholds from one half (observed, or from a fitted tail where the pairs are too few, or
left out where even that is impossible), accept rates measured on the other half. Written as one more
population, it can only make a deployed threshold stricter (the strictest over the populations is deployed).

Relatives (same household) are scored apart, never as impostors, and pairs of different people that reach the
accept band are listed: a face enrolled under two accounts is a case for staff, not a statistic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.face_match.population.calibrate import FARS, accept_rates, describe_thresholds
from pipelines.face_match.population.pairs import Scores
from pipelines.face_match.population.thresholds import PopulationThreshold, threshold_at
from pipelines.liveness.evaluation.intervals import clopper_pearson

POPULATION = "deployment_enrolled"
# Pairs grow with the square of the people: above this many per half, a seeded sample of people is taken
# (4,000 people give 8 million pairs, 32 MB of scores).
MAX_PEOPLE_PER_HALF = 4000
MAX_LISTED = 50


@dataclass(frozen=True)
class EnrolledFaces:
    """One unit-length template per enrolled person, the person's id and household (None: not known)."""

    templates: np.ndarray
    people: Sequence[str]
    households: Sequence[str | None]

    def __post_init__(self) -> None:
        if not len(self.templates) == len(self.people) == len(self.households):
            raise ValueError("one template, one person id and one household per row")


def halves(people: Sequence[str]) -> np.ndarray:
    """True for the people of the evaluation half: a stable hash of the id, so a rerun splits them the same way."""
    return np.asarray([hashlib.sha256(p.encode()).digest()[0] % 2 == 1 for p in people], dtype=bool)


def impostor_pairs(faces: EnrolledFaces, rows: np.ndarray) -> Scores:
    """Every pair of the given rows' people that are not of one household (unit ids: row numbers)."""
    if len(rows) < 2:
        return Scores(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    emb = faces.templates[rows]
    a, b = np.triu_indices(len(rows), k=1)
    house = np.asarray([h or f"\0{i}" for i, h in enumerate(faces.households)], dtype=object)[rows]
    keep = house[a] != house[b]
    a, b = a[keep], b[keep]
    values = np.einsum("ij,ij->i", emb[a], emb[b]).astype(np.float32)
    return Scores(values, rows[a], rows[b])


def calibrate_enrolled(
    faces: EnrolledFaces, accept_threshold: float, today: dt.date | None = None, seed: int = 0
) -> dict[str, Any]:
    """The deployment's population entry for ``write_populations``, with held-out rates and look-alike pairs at
    or above ``accept_threshold`` (the threshold deployed now)."""
    held = halves(faces.people)
    cal_rows, ev_rows = _sample(np.flatnonzero(~held), seed), _sample(np.flatnonzero(held), seed + 1)
    calib, evaluation = impostor_pairs(faces, cal_rows), impostor_pairs(faces, ev_rows)
    thresholds: dict[str, PopulationThreshold] = {}
    skipped: dict[str, str] = {}
    for key, far in FARS.items():
        try:
            thresholds[key] = threshold_at(calib.values, far)
        except ValueError as exc:  # too few pairs even for a tail fit: that FAR is not measured here
            skipped[key] = str(exc)
    return {
        "description": "the deployment's own enrolled pensioners (templates with consent), different households",
        **describe_thresholds(thresholds),
        "not_measured": skipped,
        "calibration_half": {"people": len(cal_rows), "impostor_pairs": len(calib)},
        "evaluation_half": {
            "people": len(ev_rows),
            "impostor_pairs": len(evaluation),
            "impostor_accept": accept_rates(evaluation, thresholds),
        },
        "people_enrolled": len(faces.people),
        "look_alikes_at_accept": look_alikes(faces, accept_threshold),
        "split": "people hashed in two halves (pipelines.face_match.population.enrolled.halves)",
        "calibrated_on": (today or dt.date.today()).isoformat(),
    }


def look_alikes(faces: EnrolledFaces, threshold: float, block: int = 512) -> dict[str, Any]:
    """Pairs of different enrolled people (any household) scoring at or above ``threshold``: the same face under
    two accounts, twins, or a true look-alike. Ids only (no names, no numbers), highest first. Every pair is
    scored, a block of rows at a time (memory: block × people scores)."""
    t = faces.templates
    found: list[tuple[float, int, int]] = []
    for start in range(0, len(t), block):
        sims = t[start : start + block] @ t.T
        rows, cols = np.nonzero(sims >= threshold)
        upper = cols > rows + start  # each pair once, never a person with themself
        found += [(float(sims[r, c]), r + start, c) for r, c in zip(rows[upper], cols[upper], strict=True)]
    found.sort(reverse=True)
    pairs = [{"a": faces.people[i], "b": faces.people[j], "similarity": round(s, 4)} for s, i, j in found[:MAX_LISTED]]
    return {"threshold": round(threshold, 6), "count": len(found), "pairs": pairs}


AGE_BANDS = ((0, 60, "<60"), (60, 70, "60-69"), (70, 80, "70-79"), (80, 200, "80+"))


def face_band(result: dict[str, Any] | None) -> str | None:
    """The face-match band a decided session's stored result shows: the template's when it was compared (the
    better reference, pipelines.decision.rules._face), else the card's; None without a face comparison."""
    for key in ("template_match", "card_match"):
        match = (result or {}).get(key)
        if isinstance(match, dict) and match.get("band"):
            return str(match["band"])
    return None


def genuine_outcomes(certified: Sequence[tuple[int | None, str | None]]) -> dict[str, Any]:
    """Of certified people (accepted, or approved by staff: genuine), the share the face match accepted by
    itself, per age band, with an exact 95 % interval: what the thresholds cost this deployment's pensioners.
    ``certified``: (age at certification or None, face band or None) per certification."""
    groups: dict[str, list[int]] = {}
    for age, band in certified:
        if band is None:
            continue
        name = next((n for lo, hi, n in AGE_BANDS if age is not None and lo <= age < hi), "unknown")
        for key in (name, "all"):
            counts = groups.setdefault(key, [0, 0])
            counts[0] += band == "accept"
            counts[1] += 1
    out: dict[str, Any] = {"note": "certified people whose face match alone reached the accept band"}
    for key, (k, n) in sorted(groups.items()):
        ci = clopper_pearson(k, n)
        out[key] = {
            "accepted": k,
            "n": n,
            "rate": round(k / n, 4),
            "clopper_pearson_95": [round(ci.low, 4), round(ci.high, 4)],
        }
    return out


def _sample(rows: np.ndarray, seed: int) -> np.ndarray:
    if len(rows) <= MAX_PEOPLE_PER_HALF:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, MAX_PEOPLE_PER_HALF, replace=False))
