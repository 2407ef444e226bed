"""The screen-light challenge: a random sequence of screen colours the capture page shows while it records.

A live face a few decades of centimetres from the phone reflects the screen's light: its colour follows the
sequence, while the room behind it, metres away, barely does. A video replayed on a screen (a monitor, a tablet,
another phone) was recorded before the sequence was drawn, so nothing in it follows the sequence; the light of
the phone falls on the replaying screen as a whole, face and background alike. This is the one challenge a
prepared replay cannot have been made for (docs/liveness.md, "The screen-light challenge").

This module holds the sequence the service issues and the page shows (data only, no model): drawn like the action
challenge, with a ``SystemRandom`` unless a test seeds it. The page changes colour at most 1.25 times a second,
below the three flashes a second of WCAG 2.3.1.

The space is what stops a replay prepared in advance: :func:`sequence_count` sequences, 1,959,510 for 8 steps of
7 colours (6 steps of 4 gave 960, and a replay tinted for one of them came up after ~742 free session opens, or
all 960 could be rendered beforehand). At the per-person rate limit of session opens over all requesters (120 an
hour), fishing for one prepared sequence takes ~980,000 opens on average (~340 days), and a day of opens meets it
with a chance of 0.15 %; rendering every variant means ~2 million tinted videos. The start is not drawn: the
analysis searches the lag over 1.8 s, so a random start within it would add nothing an attacker must match. What
the space cannot answer is a face tinted live, after the sequence is shown (docs/liveness.md, "The
screen-light challenge").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from random import Random, SystemRandom
from typing import Any

# sRGB of each colour the page may show. Saturated enough for the face's chromaticity to move, not pure
# primaries: a full-screen pure red is harsh for the eyes of the elderly this page is for. Yellow, cyan and
# magenta move it in directions of their own (each at least 0.7 from the others and from white in log R/G,
# log B/G per unit of light), so each step reads back as one colour among seven.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 72, 72),
    "green": (72, 235, 72),
    "blue": (72, 96, 255),
    "white": (255, 255, 255),
    "yellow": (255, 220, 56),
    "cyan": (56, 220, 255),
    "magenta": (235, 72, 235),
}
# Seconds each colour stays on screen; seconds after the recording starts when the first colour shows.
STEP_S = 0.8
START_S = 0.5
N_STEPS = 8
# Limits on a sequence read back from storage or a request (a caller's error beyond them, not the video's).
_MAX_STEPS = 12
_STEP_RANGE_S = (0.4, 2.0)
_START_RANGE_S = (0.0, 5.0)


@dataclass(frozen=True)
class LightSequence:
    """The colours in the order shown, each for ``step_s`` seconds, the first ``start_s`` after recording starts."""

    colours: tuple[str, ...]
    step_s: float = STEP_S
    start_s: float = START_S

    def __post_init__(self) -> None:
        unknown = [c for c in self.colours if c not in COLOURS]
        if unknown:
            raise ValueError(f"unknown light colour(s) {unknown}; known: {', '.join(COLOURS)}")
        if not 2 <= len(self.colours) <= _MAX_STEPS:
            raise ValueError(f"a light sequence has 2..{_MAX_STEPS} colours, got {len(self.colours)}")
        if not _STEP_RANGE_S[0] <= self.step_s <= _STEP_RANGE_S[1]:
            raise ValueError(f"light step_s must be in {_STEP_RANGE_S}, got {self.step_s}")
        if not _START_RANGE_S[0] <= self.start_s <= _START_RANGE_S[1]:
            raise ValueError(f"light start_s must be in {_START_RANGE_S}, got {self.start_s}")

    @property
    def end_s(self) -> float:
        """When the last colour ends, in seconds after the recording starts."""
        return self.start_s + self.step_s * len(self.colours)

    def rgb(self) -> list[tuple[int, int, int]]:
        return [COLOURS[c] for c in self.colours]

    def to_dict(self) -> dict[str, Any]:
        """The form the API gives the capture page and the session stores (milliseconds, as the page counts)."""
        return {
            "colours": list(self.colours),
            "rgb": [list(v) for v in self.rgb()],
            "step_ms": round(self.step_s * 1000),
            "start_ms": round(self.start_s * 1000),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LightSequence:
        """Read back :meth:`to_dict`'s form; ``ValueError`` for anything else."""
        try:
            colours = tuple(str(c) for c in data["colours"])
            step_s = float(data.get("step_ms", STEP_S * 1000)) / 1000
            start_s = float(data.get("start_ms", START_S * 1000)) / 1000
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a light sequence: {exc}") from exc
        return cls(colours, step_s, start_s)


def parse_light(text: str | None) -> LightSequence | None:
    """A sequence given on the command line: 'red,green,blue,white' (default timing) or None."""
    if not text:
        return None
    return LightSequence(tuple(c.strip() for c in text.split(",") if c.strip()))


def sequence_count(n_steps: int = N_STEPS, n_colours: int = len(COLOURS)) -> int:
    """How many sequences :func:`issue_light_sequence` can draw: no colour twice in a row, less the ones that
    alternate two colours (k·(k−1) of them; one colour alone cannot follow the first rule)."""
    others = n_colours - 1
    return n_colours * math.prod([others] * (n_steps - 1)) - n_colours * others


def issue_light_sequence(rng: Random | None = None, n_steps: int = N_STEPS) -> LightSequence:
    """A fresh random sequence: no colour twice in a row, and at least three different colours (a sequence
    that only alternates two colours is easier to match by chance)."""
    r = rng or SystemRandom()
    names = tuple(COLOURS)
    while True:
        seq: list[str] = []
        for _ in range(n_steps):
            seq.append(r.choice([c for c in names if not seq or c != seq[-1]]))
        if len(set(seq)) >= min(3, len(names)):
            return LightSequence(tuple(seq))
