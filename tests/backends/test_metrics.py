"""Metric sources: histogram math, the direct scrape and PromQL, against real servers.

The sandbox tests share one sandbox, one Prometheus scraping it and one unhealthy canary
(module scope, one xdist group), because the numbers need windows of tens of seconds: the
sandbox serves a realistic 20 requests a second per service, and a healthy pod's 0.1-0.3 %
of 5xx only reads reliably as "under 1 %" over several hundred requests.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from backends.errors import SourceUnavailable
from backends.metrics.prometheus import PrometheusMetrics, render_query, window_seconds
from backends.metrics.scrape import (
    ScrapeMetrics,
    SeriesKey,
    Timer,
    parse_timers,
    window_delta,
)
from backends.metrics.source import MetricSample, histogram_quantile
from tests.support.bad_servers import Handler, ServerPool, head, read_request, refused_url
from tests.support.prometheus_proc import RunningPrometheus, start_prometheus
from tests.support.sandbox_proc import RunningSandbox, start_sandbox
from tests.support.waiting import wait_until

INF = math.inf
METRICS = "/actuator/prometheus"
CANARY_REPLICAS = 2

# --- histogram_quantile ----------------------------------------------------------------------


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]
    # rank 95 lies in (0.5, 1.0], 5 of its 10 observations in: halfway.
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    # rank 25 in the first bucket, which starts at 0.
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(1.0, buckets) == pytest.approx(1.0)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.95, [(0.1, 10.0), (0.5, 50.0), (INF, 100.0)]) == 0.5


def test_quantile_order_duplicates_and_ragged_counts() -> None:
    shuffled = [(INF, 100.0), (0.1, 50.0), (1.0, 100.0), (0.5, 90.0)]
    assert histogram_quantile(0.95, shuffled) == pytest.approx(0.75)
    # Two series summed by le without aggregation: same bound twice adds up.
    split = [(0.1, 25.0), (0.1, 25.0), (0.5, 90.0), (1.0, 100.0), (INF, 60.0), (INF, 40.0)]
    assert histogram_quantile(0.95, split) == pytest.approx(0.75)
    # A count that drops with le (separately scraped series) is raised, as Prometheus does.
    ragged = [(0.1, 50.0), (0.5, 40.0), (1.0, 100.0), (INF, 100.0)]
    assert histogram_quantile(0.5, ragged) == pytest.approx(0.1)


def test_quantile_without_data_is_none() -> None:
    assert histogram_quantile(0.95, []) is None
    assert histogram_quantile(0.95, [(INF, 10.0)]) is None  # fewer than two buckets
    assert histogram_quantile(0.95, [(0.1, 1.0), (0.5, 2.0)]) is None  # no +Inf bucket
    assert histogram_quantile(0.95, [(0.1, 0.0), (INF, 0.0)]) is None  # no observations


def test_quantile_edges() -> None:
    assert histogram_quantile(0.5, [(-1.0, 10.0), (0.0, 10.0), (INF, 10.0)]) == -1.0
    assert histogram_quantile(0.0, [(0.1, 0.0), (0.5, 10.0), (INF, 10.0)]) == 0.0
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="quantile"):
            histogram_quantile(bad, [(0.1, 1.0), (INF, 1.0)])


# --- parsing and deltas ----------------------------------------------------------------------


def series(labels: str, count: float, buckets: dict[str, float]) -> str:
    name = "http_server_requests_seconds"
    lines = [f'{name}_bucket{{{labels},le="{le}"}} {v}' for le, v in buckets.items()]
    lines.append(f"{name}_count{{{labels}}} {count}")
    lines.append(f"{name}_sum{{{labels}}} {count * 0.1}")
    return "\n".join(lines)


def lbl(pod: str, status: str = "200", track: str = "canary", uri: str = "/api/x") -> str:
    return (
        f'application="auth-service",method="GET",outcome="X",pod="{pod}",status="{status}",'
        f'track="{track}",uri="{uri}"'
    )


def test_parser_reads_micrometer_text_and_ignores_the_rest() -> None:
    text = "\n".join(
        [
            "# HELP http_server_requests_seconds Duration",
            "# TYPE http_server_requests_seconds histogram",
            series(lbl("a"), 3, {"0.1": 2, "+Inf": 3}),
            # Escaped quote and a brace inside a label value, and a trailing timestamp.
            'http_server_requests_seconds_count{pod="b",track="canary",uri="/q\\"}{x}",'
            'status="503",} 7.0 1700000000000',
            series(lbl("c", track="stable"), 100, {"+Inf": 100}),
            'http_server_requests_seconds_count{pod="d",track="canary" 5',  # cut short
            'http_server_requests_seconds_count{pod="e",track="canary"} not-a-number',
            "http_server_requests_seconds_count 9",
            'http_server_requests_seconds_max{pod="a",track="canary"} 0.3',
            'jvm_memory_used_bytes{area="heap",track="canary"} 1.0e8',
            "",
        ]
    )
    timers = parse_timers(text, "canary")
    assert len(timers) == 2
    by_pod = {dict(k)["pod"]: t for k, t in timers.items()}
    assert by_pod["a"].count == 3 and by_pod["a"].buckets == {0.1: 2.0, INF: 3.0}
    assert not by_pod["a"].is_error
    assert by_pod["b"].count == 7 and by_pod["b"].is_error
    assert dict(next(k for k in timers if dict(k)["pod"] == "b"))["uri"] == '/q"}{x}'


def test_delta_handles_resets_new_and_vanished_series() -> None:
    before: dict[SeriesKey, Timer] = {
        (("pod", "a"),): Timer(100.0, {0.1: 90.0, INF: 100.0}),
        (("pod", "b"),): Timer(10.0, {0.1: 1.0, INF: 10.0}, is_error=True),
        (("pod", "gone"),): Timer(500.0, {0.1: 500.0, INF: 500.0}),
    }
    now: dict[SeriesKey, Timer] = {
        (("pod", "a"),): Timer(4.0, {0.1: 3.0, INF: 4.0}),  # restarted: counts anew
        (("pod", "b"),): Timer(13.0, {0.1: 1.0, INF: 13.0}, is_error=True),
        (("pod", "new"),): Timer(6.0, {0.1: 6.0, INF: 6.0}),
    }
    requests, errors, buckets = window_delta(before, now)
    assert (requests, errors) == (13.0, 3.0)
    assert buckets == [(0.1, 9.0), (INF, 13.0)]


# --- ScrapeMetrics against loopback servers --------------------------------------------------


def exposition(bodies: list[str]) -> Handler:
    """Serves the bodies in turn, then the last one again and again."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            body = (bodies.pop(0) if len(bodies) > 1 else bodies[0]).encode()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
            writer.write(head(200, content_type=ctype, length=len(body)) + body)
            await writer.drain()

    return handle


@pytest.fixture
async def servers() -> AsyncIterator[ServerPool]:
    pool = ServerPool()
    try:
        yield pool
    finally:
        await pool.stop_all()


async def test_scrape_delta_across_a_restart_is_never_negative(servers: ServerPool) -> None:
    first = "\n".join(
        [
            series(lbl("a"), 100, {"0.1": 90, "0.5": 100, "+Inf": 100}),
            series(lbl("a", "500"), 10, {"0.1": 0, "0.5": 5, "+Inf": 10}),
            series(lbl("b"), 50, {"0.1": 50, "0.5": 50, "+Inf": 50}),
        ]
    )
    second = "\n".join(
        [
            # pod a restarted (counters went down), pod b vanished, pod c is new.
            series(lbl("a"), 4, {"0.1": 4, "0.5": 4, "+Inf": 4}),
            series(lbl("a", "500"), 2, {"0.1": 0, "0.5": 0, "+Inf": 2}),
            series(lbl("c"), 14, {"0.1": 10, "0.5": 14, "+Inf": 14}),
            series(lbl("z", track="stable"), 1000, {"0.1": 0, "0.5": 0, "+Inf": 1000}),
        ]
    )
    url = await servers.start(exposition([first, second]), path=METRICS)
    source = ScrapeMetrics({"auth-service": url}, min_window=0.2)
    try:
        s = await source.sample("auth-service", "canary")
    finally:
        await source.aclose()
    assert (s.requests, s.errors) == (20.0, 2.0)
    assert s.error_rate_pct == pytest.approx(10.0)
    # 18 of 20 under 0.1 s, 2 in +Inf: rank 19 lies in +Inf -> highest finite bound.
    assert s.p95_ms == pytest.approx(500.0)
    assert s.window_s >= 0.2 and s.source == "scrape" and s.track == "canary"


async def test_scrape_after_a_new_canary_starts_a_fresh_window(servers: ServerPool) -> None:
    """A console's second release: the baseline left by the last canary's pods is not the
    start of the new canary's window (it would end the moment the new pods got ready)."""
    bodies = [
        series(lbl("canary-old"), 100, {"+Inf": 100}),
        series(lbl("canary-old"), 110, {"+Inf": 110}),
        "",  # the new canary is ready and has not served a request yet
        series(lbl("canary-new"), 3, {"+Inf": 3}),
    ]
    url = await servers.start(exposition(bodies), path=METRICS)
    source = ScrapeMetrics({"auth-service": url}, min_window=0.2)
    try:
        first = await source.sample("auth-service", "canary")
        second = await source.sample("auth-service", "canary")
    finally:
        await source.aclose()
    assert first.requests == 10.0
    assert second.requests == 3.0 and second.window_s >= 0.2


async def test_a_thin_window_grows_until_it_has_enough_requests(servers: ServerPool) -> None:
    """Below ``min_requests`` the next sample keeps the same start: the window grows, so a
    quiet canary gets a verdict from enough requests instead of a flapping one from few."""
    bodies = [series(lbl("a"), n, {"+Inf": n}) for n in (100, 110, 120, 180, 190)]
    url = await servers.start(exposition(bodies), path=METRICS)
    source = ScrapeMetrics({"auth-service": url}, min_window=0.2)
    try:
        first = await source.sample("auth-service", "canary", min_requests=50)
        second = await source.sample("auth-service", "canary", min_requests=50)
        third = await source.sample("auth-service", "canary", min_requests=50)
        fourth = await source.sample("auth-service", "canary", min_requests=50)
    finally:
        await source.aclose()
    assert first.requests == 10.0  # 100 -> 110: too few, the start is kept
    assert second.requests == 20.0 and second.window_s > first.window_s  # 100 -> 120
    assert third.requests == 80.0 and third.window_s > second.window_s  # 100 -> 180: enough
    assert fourth.requests == 10.0  # the next window starts at 180


async def test_scrape_failures_are_one_line(servers: ServerPool) -> None:
    refused = ScrapeMetrics({"auth-service": refused_url(METRICS)}, timeout=1)
    with pytest.raises(SourceUnavailable) as exc:
        await refused.sample("auth-service", "canary")
    assert "auth-service" in str(exc.value) and "\n" not in str(exc.value)
    await refused.aclose()

    async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head(404, content_type="text/html", length=4) + b"nope")
        await writer.drain()

    url = await servers.start(not_found, path=METRICS)
    missing = ScrapeMetrics({"auth-service": url})
    with pytest.raises(SourceUnavailable, match="HTTP 404"):
        await missing.sample("auth-service", "canary")
    await missing.aclose()


# --- PrometheusMetrics against a loopback server ---------------------------------------------


@dataclass
class FakePrometheus:
    seen: list[tuple[str, str]]  # (query, authorization header)


def fake_prometheus(answers: Mapping[str, object], seen: FakePrometheus) -> Handler:
    """Answers each query with answers[first word of the query] (a scalar, or NaN)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            raw = (await read_request(reader)).decode()
            target = raw.split(" ", 2)[1]
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)["query"][0]
            auth = next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in raw.split("\r\n")
                    if ln.lower().startswith("authorization:")
                ),
                "",
            )
            seen.seen.append((query, auth))
            value = answers[query.split("(", 1)[0]]
            doc = {"status": "success", "data": {"resultType": "scalar", "result": [1, value]}}
            body = json.dumps(doc).encode()
            writer.write(head(200, content_type="application/json", length=len(body)) + body)
            await writer.drain()

    return handle


async def test_prometheus_queries_token_and_overrides(servers: ServerPool) -> None:
    seen = FakePrometheus([])
    answers = {"reqs": "200", "errs": "3", "p95": "NaN"}
    url = (await servers.start(fake_prometheus(answers, seen), path="")).rstrip("/")
    source = PrometheusMetrics(
        url,
        token="s3cr3t-token",
        window="45s",
        queries={
            "requests": 'reqs(x{app="{service}",t="{track}"}[{window}])',
            "errors": 'errs(x{app="{service}"}[{window}])',
            "p95_ms": "p95({window})",
        },
    )
    try:
        s = await source.sample("auth-service", "canary")
    finally:
        await source.aclose()
    assert (s.requests, s.errors, s.error_rate_pct) == (200.0, 3.0, 1.5)
    assert s.p95_ms is None  # NaN from Prometheus: no latency data
    assert s.window_s == 45.0 and s.source == "prometheus"
    queries = {q for q, _ in seen.seen}
    assert 'reqs(x{app="auth-service",t="canary"}[45s])' in queries
    assert all(auth == "Bearer s3cr3t-token" for _, auth in seen.seen)
    assert "s3cr3t" not in repr(source)


async def test_prometheus_errors_are_one_line_without_the_token(servers: ServerPool) -> None:
    source = PrometheusMetrics(refused_url("").rstrip("/"), token="s3cr3t-token", timeout=1)
    with pytest.raises(SourceUnavailable) as exc:
        await source.sample("auth-service", "canary")
    message = str(exc.value)
    assert message.startswith("prometheus at http://127.0.0.1:")
    assert "\n" not in message and "s3cr3t" not in message
    await source.aclose()

    async def bad_query(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"status":"error","errorType":"bad_data","error":"parse error\\nat char 3"}'
        writer.write(head(400, content_type="application/json", length=len(body)) + body)
        await writer.drain()

    url = (await servers.start(bad_query, path="")).rstrip("/")
    broken = PrometheusMetrics(url, queries={"requests": "sum("})
    with pytest.raises(SourceUnavailable, match="bad_data: parse error") as exc:
        await broken.sample("auth-service", "canary")
    assert "\n" not in str(exc.value)
    await broken.aclose()


def test_query_templates_and_windows() -> None:
    q = render_query(
        'x{a="{service}",t="{track}"}[{window}] {other}', service='a"b', track="c", window="1m"
    )
    assert q == 'x{a="a\\"b",t="c"}[1m] {other}'
    assert window_seconds("1m30s") == 90.0 and window_seconds("500ms") == 0.5
    for bad in ("", "1", "1m ", "-1s", "0s"):
        with pytest.raises(ValueError):
            window_seconds(bad)
    with pytest.raises(ValueError, match="unknown metrics query"):
        PrometheusMetrics("http://127.0.0.1:9", queries={"latency": "x"})


# --- against the sandbox and a real Prometheus ----------------------------------------------


@dataclass
class World:
    sandbox: RunningSandbox
    prometheus: RunningPrometheus
    api: client.ApiClient
    started: float

    @property
    def urls(self) -> dict[str, str]:
        return {name: base + METRICS for name, base in self.sandbox.services.items()}

    def canary_pods(self) -> dict[str, bool]:
        """Name -> ready, for the canary's pods that are not being deleted."""
        core = client.CoreV1Api(self.api)
        selector = "app=auth-service,track=canary"
        pods = core.list_namespaced_pod(self.sandbox.namespace, label_selector=selector).items
        out: dict[str, bool] = {}
        for pod in pods:
            meta, status = pod.metadata, pod.status
            if meta is None or meta.name is None or meta.deletion_timestamp is not None:
                continue
            conds = (status.conditions if status is not None else None) or []
            out[meta.name] = any(c.type == "Ready" and c.status == "True" for c in conds)
        return out


def make_canary(api: client.ApiClient, namespace: str, image: str, replicas: int) -> None:
    """What the release engine does: a copy of the stable Deployment labelled track=canary."""
    apps = client.AppsV1Api(api)
    body = api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
        apps.read_namespaced_deployment("auth-service", namespace)
    )
    labels = {"app": "auth-service", "track": "canary"}
    body.pop("status", None)
    body["metadata"] = {"name": "auth-service-canary", "namespace": namespace, "labels": labels}
    spec = body["spec"]
    spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": labels}
    spec["template"]["metadata"]["labels"] = labels
    spec["template"]["spec"]["containers"][0]["image"] = image
    apps.create_namespaced_deployment(namespace, body)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("metrics")
    sandbox = start_sandbox(tmp, speed=4)
    prometheus: RunningPrometheus | None = None
    api: client.ApiClient | None = None
    try:
        targets = [urllib.parse.urlsplit(u).netloc for u in sandbox.services.values()]
        prometheus = start_prometheus(tmp, targets, scrape_interval="1s")
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(sandbox.kubeconfig)
        )
        make_canary(
            api, sandbox.namespace, "bharathva/auth-service:2.0.0-unhealthy", CANARY_REPLICAS
        )
        w = World(sandbox, prometheus, api, time.monotonic())
        wait_until(
            lambda: sum(w.canary_pods().values()) == CANARY_REPLICAS,
            30,
            "the canary pods to be ready",
            interval=0.2,
        )
        yield w
    finally:
        if api is not None:
            api.close()  # type: ignore[no-untyped-call]
        if prometheus is not None:
            prometheus.stop()
        sandbox.stop()


sandboxed = pytest.mark.xdist_group("metrics-sandbox")


def assert_sane(s: MetricSample) -> None:
    assert s.requests >= 0 and s.errors >= 0 and s.errors <= s.requests
    assert s.error_rate_pct is None or 0.0 <= s.error_rate_pct <= 100.0
    assert s.p95_ms is None or s.p95_ms >= 0.0


@sandboxed
async def test_scrape_stable_is_healthy_and_unhealthy_canary_is_not(world: World) -> None:
    # One 30 s window for both: ~600 stable requests make 0.3 % read as under 1 % reliably.
    source = ScrapeMetrics(world.urls, min_window=30.0)
    try:
        stable, canary = await asyncio.gather(
            source.sample("tweet-service", "stable"), source.sample("auth-service", "canary")
        )
    finally:
        await source.aclose()
    assert_sane(stable)
    assert_sane(canary)
    assert stable.requests > 300 and 30.0 <= stable.window_s < 40.0
    assert stable.error_rate_pct is not None and stable.error_rate_pct < 1.0
    assert stable.p95_ms is not None and stable.p95_ms < 500.0
    assert canary.requests > 100
    assert canary.error_rate_pct is not None and canary.error_rate_pct > 5.0
    assert canary.p95_ms is not None and canary.p95_ms > 500.0


@sandboxed
async def test_scrape_track_without_pods_has_no_data(world: World) -> None:
    source = ScrapeMetrics(world.urls, min_window=1.0)
    try:
        s = await source.sample("gateway-service", "canary")
    finally:
        await source.aclose()
    assert (s.requests, s.errors, s.error_rate_pct, s.p95_ms) == (0.0, 0.0, None, None)
    assert not s.has_data


@sandboxed
async def test_scrape_killed_pod_gives_no_negative_numbers(world: World) -> None:
    source = ScrapeMetrics(world.urls, min_window=1.0)
    try:
        before = await source.sample("auth-service", "canary")
        assert before.requests > 0
        victim = sorted(world.canary_pods())[0]
        client.CoreV1Api(world.api).delete_namespaced_pod(
            victim, world.sandbox.namespace, grace_period_seconds=0
        )
        # Its series vanish; the replacement starts from zero under another name.
        wait_until(lambda: victim not in world.canary_pods(), 30, f"{victim} to go", interval=0.2)
        after = await source.sample("auth-service", "canary")
    finally:
        await source.aclose()
    assert_sane(after)
    assert after.requests > 0  # the other canary pod kept serving


@sandboxed
async def test_prometheus_agrees_with_scrape_on_unhealthy_canary(world: World) -> None:
    prom = world.prometheus
    canary_sel = 'application="auth-service",track="canary"'

    def canary_requests() -> float:
        result = prom.query(
            f"sum(increase(http_server_requests_seconds_count{{{canary_sel}}}[30s]))"
        )
        return float(result[0]["value"][1]) if result else 0.0

    wait_until(
        lambda: canary_requests() >= 100, 60, "Prometheus to scrape canary traffic", interval=0.2
    )
    scrape = ScrapeMetrics(world.urls, min_window=10.0)
    source = PrometheusMetrics(prom.url, window="30s")
    try:
        by_scrape = await scrape.sample("auth-service", "canary")
        by_prom, stable = await asyncio.gather(
            source.sample("auth-service", "canary"), source.sample("tweet-service", "stable")
        )
    finally:
        await scrape.aclose()
        await source.aclose()
    for s in (by_scrape, by_prom):
        assert_sane(s)
        assert s.error_rate_pct is not None and s.error_rate_pct > 5.0, s
        assert s.p95_ms is not None and s.p95_ms > 500.0, s
    assert by_prom.source == "prometheus" and by_prom.window_s == 30.0
    assert by_prom.requests > 100
    assert stable.requests > 100 and stable.p95_ms is not None and stable.p95_ms < 500.0

    # Our histogram_quantile gives Prometheus' answer on the same buckets at the same instant.
    at = time.time() - 1.0
    per_le = prom.query(
        f"sum by (le) (increase(http_server_requests_seconds_bucket{{{canary_sel}}}[30s]))", at
    )
    theirs = prom.query(
        "histogram_quantile(0.95, sum by (le) "
        f"(increase(http_server_requests_seconds_bucket{{{canary_sel}}}[30s])))",
        at,
    )
    ours = histogram_quantile(
        0.95, [(float(r["metric"]["le"]), float(r["value"][1])) for r in per_le]
    )
    assert ours == pytest.approx(float(theirs[0]["value"][1]), rel=1e-9)
