"""Metrics read straight from the services' Micrometer endpoints, without a Prometheus server.

Counters only say "so many since the JVM started", so a sample is the difference between two
scrapes: the previous scrape of the same service and track is the baseline, and the first
sample of a pair scrapes twice, ``min_window`` apart. Differences are taken per series, as
Prometheus' increase() does, so a restarted or replaced pod never makes a negative count.

The endpoint must expose the pods of the track, labelled ``track`` (the sandbox exposes every
pod of the service on one URL). A Spring Boot app behind a Kubernetes Service shows only the
pod that answered, which is why production platforms name a Prometheus server instead.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from backends.config.values import mask_dsn
from backends.errors import NotFound, SourceUnavailable
from backends.metrics.source import MetricSample, error_rate_pct, histogram_quantile
from backends.sanitize import sanitize_text

__all__ = ["ScrapeMetrics", "Timer", "parse_timers", "window_delta"]

_COUNT = "http_server_requests_seconds_count"
_BUCKET = "http_server_requests_seconds_bucket"
_PREFIX = "http_server_requests_seconds_"
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = re.compile(r"\\(.)")
_HEADERS = {
    # Micrometer serves OpenMetrics when asked for it; the classic format is what we parse.
    "Accept": "text/plain;version=0.0.4;q=1.0, */*;q=0.1",
    "User-Agent": "bva-metrics",
}

SeriesKey = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Timer:
    """One Micrometer timer series (one pod, uri, status, ...): its count and its buckets."""

    count: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class _Scrape:
    at: float  # time.monotonic(), for the window
    wall: float  # time.time(), for taken_at
    timers: dict[SeriesKey, Timer]


def _labels(line: str, start: int) -> tuple[dict[str, str], int] | None:
    """The label set that opens at ``line[start] == '{'`` and the index after its '}'."""
    labels: dict[str, str] = {}
    pos = start + 1
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line):
            return None
        if line[pos] == "}":
            return labels, pos + 1
        m = _LABEL.match(line, pos)
        if m is None:
            return None
        labels[m.group(1)] = _UNESCAPE.sub(
            lambda e: "\n" if e.group(1) == "n" else e.group(1), m.group(2)
        )
        pos = m.end()


def parse_timers(text: str, track: str) -> dict[SeriesKey, Timer]:
    """The ``http_server_requests_seconds`` series of ``track`` in a text exposition.

    Tolerant on purpose: a line it cannot read is skipped rather than failing the sample,
    since one odd metric from some library must not blind the release gates.
    """
    timers: dict[SeriesKey, Timer] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith(_PREFIX):
            continue
        brace = line.find("{")
        if brace < 0:
            continue  # a series without labels has no track, so it is never ours
        name = line[:brace].rstrip()
        if name not in (_COUNT, _BUCKET):
            continue
        parsed = _labels(line, brace)
        if parsed is None:
            continue
        labels, end = parsed
        if labels.get("track") != track:
            continue
        fields = line[end:].split()
        try:
            value = float(fields[0])
            le = float(labels.pop("le")) if name == _BUCKET else None
        except (IndexError, KeyError, ValueError):
            continue
        labels.pop("le", None)
        key = tuple(sorted(labels.items()))
        timer = timers.get(key)
        if timer is None:
            status = labels.get("status", "")
            timer = timers[key] = Timer(is_error=status.startswith("5"))
        if le is None:
            timer.count = value
        else:
            timer.buckets[le] = value
    return timers


def _reset(before: Timer, now: Timer) -> bool:
    if now.count < before.count:
        return True
    return any(v < before.buckets.get(le, 0.0) for le, v in now.buckets.items())


def window_delta(
    before: Mapping[SeriesKey, Timer], now: Mapping[SeriesKey, Timer]
) -> tuple[float, float, list[tuple[float, float]]]:
    """Requests, 5xx and summed cumulative buckets between two scrapes of one track.

    Per series, like increase(): a series that went down was reset (its JVM restarted) and
    counts its new value whole; a new series (a new pod, a first 5xx) counts whole since
    Micrometer creates a series at its first request; a vanished series counts nothing.
    """
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    empty = Timer()
    for key, timer in now.items():
        base = before.get(key, empty)
        if _reset(base, timer):
            base = empty
        n = timer.count - base.count
        requests += n
        if timer.is_error:
            errors += n
        for le, v in timer.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + v - base.buckets.get(le, 0.0)
    return requests, errors, sorted(buckets.items())


def _pods(scrape: _Scrape) -> set[str]:
    return {dict(k).get("pod", "") for k in scrape.timers}


def _other_pods(base: _Scrape, now: _Scrape) -> bool:
    """Every pod the baseline saw is gone (a new canary may not have served a request yet)."""
    before = _pods(base)
    return bool(before) and before.isdisjoint(_pods(now))


class ScrapeMetrics:
    """MetricsSource over direct scrapes of ``urls`` (service name -> full metrics URL)."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: float = 2.0,
        min_window: float = 2.0,
        max_window: float = 600.0,
        max_body_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if timeout <= 0 or min_window <= 0 or max_window < min_window or max_body_bytes <= 0:
            raise ValueError(
                "timeout, min_window and max_body_bytes must be positive, max_window >= min_window"
            )
        self._urls = dict(urls)
        self._timeout = float(timeout)
        self._min_window = float(min_window)
        self._max_window = float(max_window)
        self._max_body = max_body_bytes
        self._baselines: dict[tuple[str, str], _Scrape] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._http: httpx.AsyncClient | None = None

    async def sample(self, service: str, track: str, *, min_requests: int = 0) -> MetricSample:
        url = self._urls.get(service)
        if url is None:
            raise NotFound(f"no metrics endpoint known for service {service}")
        key = (service, track)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            base = self._baselines.get(key)
            if base is None or time.monotonic() - base.at > self._max_window:
                # No baseline, or one so old that a canary which just went bad would be
                # averaged away: start a fresh window.
                base = await self._fresh_base(key, service, url, track)
            now = await self._after_min_window(base, service, url, track)
            if _other_pods(base, now):
                # The baseline saw only pods that are gone (the last release's canary): a
                # window from it would end as the new pods get ready, with no requests in it.
                base = now
                self._baselines[key] = base
                now = await self._after_min_window(base, service, url, track)
            requests, errors, buckets = window_delta(base.timers, now.timers)
            # Too few requests for a verdict: the next sample starts from the same base, so
            # its window is longer (a fresh one once it passes max_window).
            thin = 0 < requests < min_requests
            self._baselines[key] = base if thin else now
        p95 = histogram_quantile(0.95, buckets) if requests > 0 else None
        return MetricSample(
            service=service,
            track=track,
            requests=requests,
            errors=errors,
            error_rate_pct=error_rate_pct(requests, errors),
            p95_ms=None if p95 is None else p95 * 1000.0,
            window_s=now.at - base.at,
            taken_at=now.wall,
            source="scrape",
        )

    async def _fresh_base(
        self, key: tuple[str, str], service: str, url: str, track: str
    ) -> _Scrape:
        base = await self._scrape(service, url, track)
        # Kept at once: if the second scrape fails, the next call still has a window.
        self._baselines[key] = base
        return base

    async def _after_min_window(self, base: _Scrape, service: str, url: str, track: str) -> _Scrape:
        wait = self._min_window - (time.monotonic() - base.at)
        if wait > 0:
            await asyncio.sleep(wait)
        return await self._scrape(service, url, track)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _scrape(self, service: str, url: str, track: str) -> _Scrape:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, headers=_HEADERS)
        where = f"metrics of {service} at {mask_dsn(url)}"
        try:
            async with self._http.stream("GET", url) as resp:
                if resp.status_code != 200:
                    raise SourceUnavailable(f"{where}: HTTP {resp.status_code}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_body:
                        raise SourceUnavailable(f"{where}: body over {self._max_body} bytes")
        except httpx.TimeoutException:
            raise SourceUnavailable(f"{where}: timed out after {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            why = sanitize_text(str(exc) or type(exc).__name__, 160)
            raise SourceUnavailable(f"{where}: unreachable ({why})") from None
        timers = parse_timers(body.decode("utf-8", errors="replace"), track)
        return _Scrape(at=time.monotonic(), wall=time.time(), timers=timers)
