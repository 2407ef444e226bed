"""Which key frames say what: identity over the clip, the frames the passive score is taken on, the best frames.

A key frame is analysed in depth (detector, anti-spoofing, embedding, capture); these rules choose among them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pipelines.face_match import FaceObservation, cosine
from pipelines.liveness.capture import CaptureConfig
from pipelines.liveness.passive import mean_score
from pipelines.liveness.result import BestFrame
from pipelines.liveness.tracking import KeyFrame

NEAR_FRONTAL_DEG = 15.0
# Frames whose head poses differ by at most this much are compared for identity: the recognizer's embedding
# of a profile is not the embedding of the same person's frontal face, so a turn asked by the challenge must
# never read as "a different person".
COMPARABLE_YAW_DEG = 20.0
COMPARABLE_PITCH_DEG = 15.0
# The passive score is taken on frames at most this far from frontal (the networks saw frontal faces).
PASSIVE_MAX_POSE_DEG = 20.0


def _comparable(a: FaceObservation, b: FaceObservation) -> bool:
    qa, qb = a.quality, b.quality
    return abs(qa.yaw_deg - qb.yaw_deg) <= COMPARABLE_YAW_DEG and abs(qa.pitch_deg - qb.pitch_deg) <= (
        COMPARABLE_PITCH_DEG
    )


def identity_spread(keys: Sequence[KeyFrame]) -> float | None:
    """Lowest cosine between a key frame and the most typical face among frames of comparable head pose.

    The reference is the video's medoid (the frame most similar to all others). A frame posed too differently
    from it (a turn the challenge asked for) may instead match the medoid of the frames posed like itself (the
    better of the two counts); a turned frame with neither is not judged (one profile glimpse says little).
    """
    obs = [k.observation for k in keys]
    if len(obs) < 2:
        return None
    emb = np.stack([o.embedding for o in obs])
    sims = emb @ emb.T
    medoid = int(np.argmax(sims.sum(axis=1)))
    worst: float | None = None
    for i, o in enumerate(obs):
        if i == medoid:
            continue
        sim = float(cosine(emb[medoid], emb[i]))
        if not _comparable(o, obs[medoid]):
            group = [j for j in range(len(obs)) if j != i and _comparable(o, obs[j])]
            if not group:
                continue
            ref = group[int(np.argmax(sims[np.ix_(group, group)].sum(axis=1)))]
            sim = max(sim, float(cosine(emb[ref], emb[i])))
        worst = sim if worst is None else min(worst, sim)
    return worst


def passive_frames(keys: Sequence[KeyFrame], capture: CaptureConfig, n: int) -> list[KeyFrame]:
    """The key frames the passive score is taken on: near-frontal, sharpest and best lit first.

    When none is near-frontal, all key frames count (the capture reasons then explain a low score).
    """
    frontal = [
        k
        for k in keys
        if abs(k.observation.quality.yaw_deg) <= PASSIVE_MAX_POSE_DEG
        and abs(k.observation.quality.pitch_deg) <= PASSIVE_MAX_POSE_DEG
    ]
    pool = frontal or list(keys)

    def rank(k: KeyFrame) -> tuple[bool, float]:
        c = k.capture
        well_lit = c.face_luma >= capture.min_face_luma and c.sharpness >= capture.min_sharpness
        return (well_lit, k.observation.quality.sharpness * k.observation.quality.frontalness)

    return sorted(pool, key=rank, reverse=True)[:n]


def best_frames(
    keys: Sequence[KeyFrame], n: int, score: Callable[[Sequence[float]], float] = mean_score
) -> list[BestFrame]:
    """Sharpest near-frontal frames; frames without quality flags first. ``score`` turns a frame's models' scores
    into one on the threshold's scale (the calibration's fusion, or their mean), as staff see it."""

    def rank(k: KeyFrame) -> tuple[bool, bool, float]:
        q = k.observation.quality
        # Matching against a frontal ID-card portrait: a turned head is a worse probe than a softer frontal one.
        frontal = abs(q.yaw_deg) <= NEAR_FRONTAL_DEG and abs(q.pitch_deg) <= NEAR_FRONTAL_DEG
        return (q.ok, frontal, q.sharpness * q.frontalness)

    chosen = sorted(keys, key=rank, reverse=True)[:n]
    return [
        BestFrame(k.frame.t, k.frame.image, k.observation, score(k.passive_by_model))
        for k in sorted(chosen, key=lambda k: k.frame.t)
    ]
