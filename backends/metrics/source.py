"""Metric sources for the release gates: one interface, a sample model, histogram math.

Two sources implement :class:`MetricsSource`: ``ScrapeMetrics`` (backends/metrics/scrape.py)
reads the services' Micrometer endpoints itself, ``PrometheusMetrics``
(backends/metrics/prometheus.py) asks a Prometheus server. Both answer with the same
:class:`MetricSample`, so a gate never knows where its numbers came from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["MetricSample", "MetricsSource", "error_rate_pct", "histogram_quantile"]

SourceName = Literal["scrape", "prometheus"]


@dataclass(frozen=True, slots=True)
class MetricSample:
    """What one track of one service did during a window.

    ``error_rate_pct`` and ``p95_ms`` are None when the window saw no requests: no data makes
    a gate Inconclusive, which is not the same as a healthy 0 %.
    """

    service: str
    track: str
    requests: float
    errors: float
    error_rate_pct: float | None
    p95_ms: float | None
    window_s: float
    taken_at: float
    source: SourceName

    @property
    def has_data(self) -> bool:
        return self.requests > 0


class MetricsSource(Protocol):
    async def sample(self, service: str, track: str, *, min_requests: int = 0) -> MetricSample:
        """The track's recent traffic; raises SourceUnavailable (one line) when unreachable.
        A source that can widen its window keeps widening it (up to its maximum) while the
        window holds fewer than ``min_requests``; one with a fixed window answers as it is."""
        ...

    async def aclose(self) -> None: ...


def error_rate_pct(requests: float, errors: float) -> float | None:
    if requests <= 0:
        return None
    # Extrapolated or summed counters can put errors a hair above requests; a rate above
    # 100 % would only confuse the reader.
    return min(100.0, max(0.0, errors) * 100.0 / requests)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative ``(le, count)`` buckets, computed as Prometheus does.

    Linear interpolation inside the bucket the rank falls in (the first bucket starts at 0
    unless its bound is not positive); a rank in the +Inf bucket gives the highest finite
    bound. None where Prometheus answers NaN: no +Inf bucket, fewer than two buckets, no
    observations. Buckets with the same bound are added up and a count that decreases with
    ``le`` is raised to the running maximum (Prometheus' coalesceBuckets and
    ensureMonotonic), because sums of separately scraped series can be ragged.
    """
    if math.isnan(q) or not 0.0 <= q <= 1.0:
        # Prometheus answers -Inf/+Inf; in Python a quantile outside [0, 1] is a caller bug.
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    merged: dict[float, float] = {}
    for le, count in buckets:
        if math.isnan(le) or math.isnan(count):
            continue
        merged[le] = merged.get(le, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return None
    bounds = [le for le, _ in ordered]
    counts: list[float] = []
    top = 0.0
    for _, count in ordered:
        top = max(top, count)
        counts.append(top)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = bounds[b - 1] if b > 0 else 0.0
    below = counts[b - 1] if b > 0 else 0.0
    inside = counts[b] - below
    if inside <= 0:
        return start  # only for q == 0 over empty leading buckets, where Go divides 0 by 0
    return start + (bounds[b] - start) * ((rank - below) / inside)
