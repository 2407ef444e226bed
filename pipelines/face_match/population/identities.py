"""Hidden duplicates: the same person under two labels (UTKFace has no identities; TSKinFace families recur).

A pair counts as the same person when two independent recognizers both score it at or above their own
``LINK_THRESHOLDS`` (far beyond any FAR we calibrate: the impostor tail of one model is rarely the other's). The
linked faces' families are merged, so that they are never scored as impostors of each other. How often the
link is right, and how often a pair just below it is in fact one person, was checked by eye (docs/face_data.md).
"""

from __future__ import annotations

import numpy as np

from pipelines.face_match.population.faceset import FaceSet

# Cosine at which a pair is one person for each recognizer family (both must agree).
LINK_THRESHOLDS = {"mobilefacenet_foamliu": 0.6, "w600k_mbf_int8": 0.5}


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def linked_pairs(first: FaceSet, second: FaceSet, t_first: float, t_second: float) -> list[tuple[str, str]]:
    """(id, id) of faces of different families scored at or above both thresholds by both recognizers."""
    ids = np.intersect1d(first["id"], second["id"])
    pos_a = {str(v): i for i, v in enumerate(first["id"])}
    pos_b = {str(v): i for i, v in enumerate(second["id"])}
    ia = np.asarray([pos_a[str(v)] for v in ids])
    ib = np.asarray([pos_b[str(v)] for v in ids])
    fam = first["family"][ia]
    out: list[tuple[str, str]] = []
    for start in range(0, len(ids), 1024):  # blocks keep the memory of the similarity rows bounded
        sa = first.embeddings[ia[start : start + 1024]] @ first.embeddings[ia].T
        sb = second.embeddings[ib[start : start + 1024]] @ second.embeddings[ib].T
        rows, cols = np.nonzero((sa >= t_first) & (sb >= t_second))
        for r, c in zip(rows + start, cols, strict=True):
            if r < c and fam[r] != fam[c]:
                out.append((str(ids[r]), str(ids[c])))
    return out


def merge_families(faces: FaceSet, links: list[tuple[str, str]]) -> FaceSet:
    """The face set with the families of linked faces merged (union-find over families)."""
    fams = sorted({str(f) for f in faces["family"]})
    index = {f: i for i, f in enumerate(fams)}
    parent = list(range(len(fams)))
    family_of = {str(i): str(f) for i, f in zip(faces["id"], faces["family"], strict=True)}
    for a, b in links:
        if a in family_of and b in family_of:
            ra, rb = _find(parent, index[family_of[a]]), _find(parent, index[family_of[b]])
            parent[max(ra, rb)] = min(ra, rb)
    merged = np.asarray([fams[_find(parent, index[str(f)])] for f in faces["family"]])
    labels = dict(faces.labels) | {"family": merged}
    return FaceSet(labels, faces.embeddings)
