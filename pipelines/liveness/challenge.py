"""Server-issued action challenges: 2-3 distinct actions in random order, a single-use nonce, an expiry."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from random import Random, SystemRandom
from typing import Any

BLINK, TURN_LEFT, TURN_RIGHT, NOD, OPEN_MOUTH = "blink", "turn_left", "turn_right", "nod", "open_mouth"
ACTIONS: tuple[str, ...] = (BLINK, TURN_LEFT, TURN_RIGHT, NOD, OPEN_MOUTH)
# Short spoken/on-screen prompts for the WeChat page.
PROMPTS_ZH: dict[str, str] = {
    BLINK: "请眨眨眼",
    TURN_LEFT: "请向左转头",
    TURN_RIGHT: "请向右转头",
    NOD: "请点点头",
    OPEN_MOUTH: "请张张嘴",
}

# Seconds the capture page gives each action on a tap-started take (h5-capture.js `FIXED_ACTION_S`, the same
# number: tests/service/features/wechat/h5/test_action_window.py reads both; docs/liveness.md, "The time for each
# action"). The clip is cut at the last window's end, so a fixed challenge may ask only as many as fit the clip.
FIXED_ACTION_S = 5.0


def max_fixed_actions(max_clip_s: float) -> int:
    """The most actions one challenge may ask so that their fixed windows fit a clip of ``max_clip_s``."""
    return int(max_clip_s // FIXED_ACTION_S)


@dataclass(frozen=True)
class Challenge:
    actions: tuple[str, ...]
    nonce: str
    expires_at: dt.datetime

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.UTC)) >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "prompts_zh": [PROMPTS_ZH[a] for a in self.actions],
            "nonce": self.nonce,
            "expires_at": self.expires_at.isoformat(),
        }


def parse_actions(actions: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate a challenge given as 'blink,turn_left' or a sequence; unknown names are a caller error."""
    if actions is None:
        return ()
    items = [a.strip() for a in actions.split(",")] if isinstance(actions, str) else [a.strip() for a in actions]
    items = [a for a in items if a]
    unknown = [a for a in items if a not in ACTIONS]
    if unknown:
        # A caller's mistake, not a property of the video: no reason code.
        raise ValueError(f"unknown action(s) {unknown}; known: {', '.join(ACTIONS)}")
    return tuple(items)


def issue_challenge(
    n_actions: int | None = None,
    ttl_s: float = 300,
    rng: Random | None = None,
    now: dt.datetime | None = None,
) -> Challenge:
    """A fresh challenge: 2-3 distinct actions in random order (no left+right pair back to back is fine)."""
    r = rng or SystemRandom()
    n = n_actions if n_actions is not None else r.choice((2, 3))
    if not 1 <= n <= len(ACTIONS):
        raise ValueError(f"n_actions must be 1..{len(ACTIONS)}, got {n}")
    actions = tuple(r.sample(ACTIONS, n))
    # The nonce is unguessable even when a seeded rng picks the actions (tests).
    nonce = secrets.token_urlsafe(16)
    issued = now or dt.datetime.now(dt.UTC)
    return Challenge(actions, nonce, issued + dt.timedelta(seconds=ttl_s))
