"""What a running container says between its startup and its end, as a pure function of time.

A container's chatter is cut into steps of ``STEP_S`` seconds on one grid shared by every
container (step ``k`` is stamped ``k * STEP_S`` on the clock). How many events a step holds
and what they say depend only on the instance's key and ``k``, so any step can be rendered
at any time, in any order, and always reads the same. That is what lets the log book render
only the steps somebody reads instead of writing every container's lines every tick: at 2000
pods the writing alone cost a tenth of a core.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from backends.sandbox.logtext import AppContext, render, running_event
from backends.sandbox.view import LogFormat

STEP_S = 0.25
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TWO_32 = float(1 << 32)
# Steps a float clock reading may fall short of a grid point by and still count as past it
# (a clock advanced by repeated 0.25 s additions drifts by far less).
_EPS = 1e-6
P_WARN = 0.04


def _mix(x: int) -> int:
    """splitmix64's finaliser: 64 well-mixed bits from any 64-bit integer, in pure Python
    for a microsecond (seeding a Mersenne Twister costs several)."""
    x = (x + _GOLDEN) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def instance_key(text: str) -> int:
    """A 64-bit key for one container instance; hashed, so it ignores PYTHONHASHSEED."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def step_at(ts: float) -> int:
    """The newest step whose stamp is not after ``ts``."""
    return math.floor(ts / STEP_S + _EPS)


def first_step_from(ts: float) -> int:
    """The oldest step whose stamp is not before ``ts``."""
    return math.ceil(ts / STEP_S - _EPS)


@dataclass(frozen=True, slots=True)
class Chatter:
    """The running lines of one container instance."""

    key: int
    per_step: float  # mean events per step
    ctx: AppContext
    fmt: LogFormat
    sick: bool
    p_error: float
    max_events: int

    def count(self, k: int) -> int:
        h = _mix(self.key ^ ((k * _GOLDEN) & _MASK))
        # Jittered like a service's load; dithered, so fractions of an event add up over
        # steps and the mean is exactly ``per_step``.
        jitter = 0.5 + (h >> 32) / _TWO_32
        dither = (h & 0xFFFFFFFF) / _TWO_32
        return min(int(self.per_step * jitter + dither), self.max_events)

    def lines(self, k: int, rng: random.Random) -> list[str]:
        """Step ``k``'s lines (none for most steps: a service logs a line or two a second)."""
        n = self.count(k)
        if not n:
            return []
        rng.seed(_mix(self.key + k + 1))
        ts = k * STEP_S
        ctx, fmt = self.ctx, self.fmt
        out: list[str] = []
        for _ in range(n):
            event = running_event(ctx, rng, sick=self.sick, p_error=self.p_error, p_warn=P_WARN)
            out += render(event, ts, fmt, ctx.app)
        return out
