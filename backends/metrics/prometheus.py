"""Metrics from a Prometheus server, over its HTTP API (``/api/v1/query``).

The default queries read Micrometer's ``http_server_requests_seconds`` histogram by its
``application`` and ``track`` labels. Prometheus must keep those labels as the app exposes
them (``honor_labels: true``, or relabelling that leaves them alone). A platform file can
replace any of the three queries (keys ``requests``, ``errors``, ``p95_ms``); the
placeholders ``{service}``, ``{track}`` and ``{window}`` are filled in, every other brace is
PromQL's own.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from backends.config.values import mask_dsn
from backends.errors import SourceUnavailable
from backends.metrics.source import MetricSample, error_rate_pct
from backends.sanitize import sanitize_text

__all__ = ["DEFAULT_QUERIES", "PrometheusMetrics", "render_query", "window_seconds"]

_SELECTOR = 'application="{service}",track="{track}"'
DEFAULT_QUERIES: dict[str, str] = {
    "requests": f"sum(increase(http_server_requests_seconds_count{{{_SELECTOR}}}[{{window}}]))",
    "errors": (
        f'sum(increase(http_server_requests_seconds_count{{{_SELECTOR},status=~"5.."}}'
        "[{window}]))"
    ),
    "p95_ms": (
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(http_server_requests_seconds_bucket{{{_SELECTOR}}}[{{window}}]))) * 1000"
    ),
}
_PLACEHOLDER = re.compile(r"\{(service|track|window)\}")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def window_seconds(window: str) -> float:
    """Seconds in a Prometheus duration such as ``30s`` or ``1h30m``; ValueError otherwise."""
    if not window or _DURATION.sub("", window):
        raise ValueError(f"bad Prometheus duration {window!r} (e.g. 30s, 1m, 1h30m)")
    total = sum(int(n) * _UNIT_S[u] for n, u in _DURATION.findall(window))
    if total <= 0:
        raise ValueError(f"bad Prometheus duration {window!r}: must be positive")
    return float(total)


def _promql_string(value: str) -> str:
    # Inside a double-quoted PromQL string, as the default selectors put them.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_query(template: str, *, service: str, track: str, window: str) -> str:
    values = {"service": _promql_string(service), "track": _promql_string(track), "window": window}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _values(data: Any) -> list[float] | None:
    """The numbers of an instant-query result (vector or scalar), None if not one."""
    if not isinstance(data, dict):
        return None
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar" and isinstance(result, list):
            return [float(result[1])]
        if kind == "vector" and isinstance(result, list):
            return [float(item["value"][1]) for item in result]
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    return None


class PrometheusMetrics:
    """MetricsSource over PromQL instant queries against ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        queries: Mapping[str, str] | None = None,
        window: str = "1m",
        timeout: float = 3.0,
    ) -> None:
        unknown = sorted(set(queries or {}) - set(DEFAULT_QUERIES))
        if unknown:
            allowed = ", ".join(DEFAULT_QUERIES)
            raise ValueError(f"unknown metrics query {unknown[0]!r} (allowed: {allowed})")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._window_s = window_seconds(window)
        self._window = window
        self._queries = {**DEFAULT_QUERIES, **(queries or {})}
        # str(): a pydantic HttpUrl from the platform file is accepted as it is.
        base = str(base_url).rstrip("/")
        self._api = base + "/api/v1/query"
        self._where = f"prometheus at {mask_dsn(base)}"
        self._timeout = float(timeout)
        # Kept out of anything that is printed: only the client's headers carry it.
        headers = {"Accept": "application/json", "User-Agent": "bva-metrics"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"PrometheusMetrics({self._where!r}, window={self._window!r})"

    async def sample(self, service: str, track: str, *, min_requests: int = 0) -> MetricSample:
        # The window is the queries' own (``window``): a thin one is judged by the caller.
        q = {
            key: render_query(template, service=service, track=track, window=self._window)
            for key, template in self._queries.items()
        }
        requests_v, errors_v, p95_v = await asyncio.gather(
            self._query("requests", q["requests"]),
            self._query("errors", q["errors"]),
            self._query("p95_ms", q["p95_ms"]),
        )
        taken_at = time.time()
        # Several series (a query without sum()) are added up; none means nothing counted.
        requests = sum((v for v in requests_v if math.isfinite(v)), 0.0)
        errors = sum((v for v in errors_v if math.isfinite(v)), 0.0)
        finite_p95 = [v for v in p95_v if math.isfinite(v)]
        # The worst series decides: a gate must not average a slow pod away.
        p95 = max(finite_p95) if finite_p95 and requests > 0 else None
        return MetricSample(
            service=service,
            track=track,
            requests=requests,
            errors=errors,
            error_rate_pct=error_rate_pct(requests, errors),
            p95_ms=p95,
            window_s=self._window_s,
            taken_at=taken_at,
            source="prometheus",
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _query(self, key: str, promql: str) -> list[float]:
        if self._http is None:
            # No redirects: a bearer token must never follow a Location to another host.
            self._http = httpx.AsyncClient(
                timeout=self._timeout, headers=self._headers, follow_redirects=False
            )
        try:
            resp = await self._http.get(self._api, params={"query": promql})
        except httpx.TimeoutException:
            raise SourceUnavailable(f"{self._where}: timed out after {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            why = sanitize_text(str(exc) or type(exc).__name__, 160)
            raise SourceUnavailable(f"{self._where}: unreachable ({why})") from None
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("status") == "error":
            why = sanitize_text(f"{doc.get('errorType', '')}: {doc.get('error', '')}", 200)
            raise SourceUnavailable(
                f"{self._where}: query {key!r} failed (HTTP {resp.status_code}, {why})"
            )
        if resp.status_code != 200:
            raise SourceUnavailable(f"{self._where}: HTTP {resp.status_code} for query {key!r}")
        values = _values(doc.get("data") if isinstance(doc, dict) else None)
        if values is None or not isinstance(doc, dict) or doc.get("status") != "success":
            raise SourceUnavailable(f"{self._where}: not a Prometheus query answer for {key!r}")
        return values
