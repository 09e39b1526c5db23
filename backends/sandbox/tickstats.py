"""How long the sandbox's periodic jobs take, for ``/sandbox/v1/stats``.

Every job (the controllers' reconcile pass, the traffic and log ticks, the whole loop turn)
records its duration here with two ``perf_counter`` calls around it. Recent samples are kept
for a while so a caller can ask about just the window it measured (a benchmark's idle ten
seconds, not the start-up before it).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

KEEP_S = 300.0
# At four turns a second this is far more than KEEP_S holds; it only bounds a busy burst.
MAX_SAMPLES = 20_000


class _Job:
    __slots__ = ("count", "max", "samples", "total")

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)
        self.count = 0
        self.total = 0.0
        self.max = 0.0


class TickStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._jobs: dict[str, _Job] = {}

    def record(self, job: str, seconds: float) -> None:
        j = self._jobs.get(job)
        if j is None:
            j = self._jobs[job] = _Job()
        now = self._clock()
        j.samples.append((now, seconds))
        while j.samples[0][0] < now - KEEP_S:
            j.samples.popleft()
        j.count += 1
        j.total += seconds
        if seconds > j.max:
            j.max = seconds

    def summary(self, window_s: float | None = None) -> dict[str, Any]:
        """Per job, in milliseconds: count, total and max since the start, and p50, p99 and
        max of the samples of the last ``window_s`` seconds (all kept ones when None)."""
        since = -math.inf if window_s is None else self._clock() - window_s
        out: dict[str, Any] = {}
        for name, j in sorted(self._jobs.items()):
            recent = sorted(s for t, s in j.samples if t >= since)
            out[name] = {
                "count": j.count,
                "total_ms": round(j.total * 1000, 3),
                "max_ms": round(j.max * 1000, 3),
                "window": {
                    "seconds": window_s,
                    "count": len(recent),
                    "p50_ms": _ms(_rank(recent, 50)),
                    "p99_ms": _ms(_rank(recent, 99)),
                    "max_ms": _ms(recent[-1] if recent else None),
                },
            }
        return out


def _rank(data: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted ``data``."""
    if not data:
        return None
    return data[max(1, math.ceil(pct / 100.0 * len(data))) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)
