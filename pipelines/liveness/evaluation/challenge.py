"""The action challenge in the evaluation: what an attack would have to do when the service asks for actions.

The scored presentations were filmed without a challenge, but the stage records every action it saw in them
(`events`). Under a challenge drawn exactly as the service draws one (`issue_challenge`: 2–3 distinct actions
in random order), an attack passes only when its own actions happen to satisfy that challenge in order: a hand
moving a photo can look like a turn or a nod now and then, a replayed video shows whatever its person did.
A genuine person is assumed to perform the challenge; whether older people manage the actions is measured on
action clips (docs/liveness.md), not here.

Threat model: a static picture (a print, a photo held or shown on a screen) can perform a random challenge only
by chance, and that chance is what its recorded actions give. A replayed *video* can be prepared (recorded or
puppeted to show the actions asked), so it is assumed to pass every challenge: against it the passive score
and the motion cue must hold on their own.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from pipelines.liveness.actions import ActionEvent, verify_sequence
from pipelines.liveness.challenge import issue_challenge
from pipelines.liveness.evaluation.core import SPOOF, Presentation


def drawn_challenge(key: str, seed: int) -> tuple[str, ...]:
    """The challenge this presentation gets: seeded by its key, so a re-run draws the same one."""
    return issue_challenge(rng=random.Random(f"{seed}:{key}")).actions


def under_challenge(p: Presentation, events: Sequence[ActionEvent], seed: int, prepared: bool = False) -> Presentation:
    """The presentation as the stage judges it under its drawn challenge: a static attack that does not perform
    the challenge is rejected by it (a hard finding); a genuine person, and a `prepared` (video) attack, are
    taken to perform it. A genuine person performing blinks, mouth and head turns moves non-rigidly, so the
    rigid-motion finding of the same person sitting still is not carried over (`motion_ratio` None)."""
    if p.label != SPOOF:
        return replace(p, motion_ratio=None)
    if p.hard_reject or prepared:
        return p
    _, missed = verify_sequence(drawn_challenge(p.key, seed), events)
    return replace(p, hard_reject=True) if missed else p
