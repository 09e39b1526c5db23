"""One Micrometer timer of the simulated traffic: a Prometheus histogram on fixed buckets,
filled in aggregate from a log-normal latency distribution (``record`` costs the same for
one request as for ten thousand), with Micrometer's rolling maximum.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Micrometer reports the largest sample of a rolling window and forgets it after two minutes.
_MAX_WINDOW_S = 60.0
MAX_EXPIRY_S = 120.0


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def lognormal_shape(median_s: float, sigma: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """CDF at each finite bucket bound, and the mean latency inside each of the 12 buckets."""
    mu = math.log(median_s)
    mean = math.exp(mu + sigma * sigma / 2.0)
    cdf = tuple(_phi((math.log(b) - mu) / sigma) for b in BUCKETS)
    partial = [mean * _phi((math.log(b) - mu - sigma * sigma) / sigma) for b in BUCKETS]
    means: list[float] = []
    lo_c = lo_p = lo_b = 0.0
    for i, hi_b in enumerate((*BUCKETS, math.inf)):
        hi_c = cdf[i] if i < len(BUCKETS) else 1.0
        hi_p = partial[i] if i < len(BUCKETS) else mean
        width = hi_c - lo_c
        if width > 1e-12:
            means.append(min(max((hi_p - lo_p) / width, lo_b), hi_b))
        else:
            means.append(lo_b * 1.5 if math.isinf(hi_b) else (lo_b + hi_b) / 2.0)
        lo_c, lo_p, lo_b = hi_c, hi_p, hi_b
    return cdf, tuple(means)


class Series:
    """One Micrometer timer: a fixed label set on one pod."""

    __slots__ = ("cdf", "count", "counts", "labels", "last", "max", "means", "total", "window")

    def __init__(self, labels: str, median_s: float, sigma: float) -> None:
        self.labels = labels
        self.cdf, self.means = lognormal_shape(median_s, sigma)
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.window = -math.inf
        self.last = -math.inf

    def record(self, n: int, rng: random.Random, now: float) -> None:
        u = rng.random()
        counts = self.counts
        if n == 1:
            top = bisect_right(self.cdf, u)
            counts[top] += 1
            total = self.means[top]
        else:
            # Systematic sampling: n evenly spaced quantiles with one random offset. Exact
            # total, unbiased per bucket, one random draw whatever n is.
            prev = 0
            total = 0.0
            top = 0
            means = self.means
            for i, c in enumerate(self.cdf):
                k = math.ceil(n * c - u)
                k = 0 if k < 0 else (n if k > n else k)
                if k > prev:
                    counts[i] += k - prev
                    total += (k - prev) * means[i]
                    top = i
                    prev = k
            if n > prev:
                counts[-1] += n - prev
                total += (n - prev) * means[-1]
                top = len(BUCKETS)
        self.count += n
        self.total += total
        lo = BUCKETS[top - 1] if top > 0 else 0.0
        hi = BUCKETS[top] if top < len(BUCKETS) else lo * 3.0
        sample = lo + (hi - lo) * rng.random()
        if now - self.window >= _MAX_WINDOW_S:
            self.max, self.window = sample, now
        elif sample > self.max:
            self.max = sample
        self.last = now
