from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from backends.sandbox.timer_series import BUCKETS
from backends.sandbox.traffic import Traffic
from backends.sandbox.view import Behaviour, PodView, SandboxService

T0 = 1_795_670_447.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeCluster:
    def __init__(self) -> None:
        self.pods: dict[str, list[PodView]] = defaultdict(list)
        self.versions: dict[str, int] = defaultdict(int)

    def version(self, service: str) -> int:
        return self.versions[service]

    def changed(self, service: str) -> None:
        self.versions[service] += 1

    def pods_for_service(self, service: str) -> list[PodView]:
        return list(self.pods[service])

    def add(
        self,
        service: str,
        name: str,
        *,
        behaviour: Behaviour = "ok",
        ready: bool = True,
        track: str = "stable",
    ) -> PodView:
        pod = PodView(
            name=name,
            service=service,
            container=service,
            track=track,
            image=f"r/{service}:1.0.0",
            behaviour=behaviour,
            ready=ready,
            running=behaviour != "crash",
            started_at=T0,
        )
        self.pods[service].append(pod)
        return pod


def svc(name: str) -> SandboxService:
    return SandboxService(name, name, 8080, (), "/actuator/prometheus", "plain")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def run(traffic: Traffic, clock: Clock, seconds: float, step: float = 0.25) -> None:
    for _ in range(round(seconds / step)):
        clock.now += step
        traffic.tick(step)


def totals(samples: Samples, name: str, **match: str) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all(dict(labels).get(k) == want for k, want in match.items())
    )


def quantile(samples: Samples, q: float, **match: str) -> float:
    """histogram_quantile over all matching series, with linear interpolation in a bucket."""
    per_le: dict[float, float] = defaultdict(float)
    for (n, labels), v in samples.items():
        d = dict(labels)
        if n == "http_server_requests_seconds_bucket" and all(
            d.get(k) == want for k, want in match.items()
        ):
            per_le[float(d["le"])] += v
    bounds = sorted(per_le)
    total = per_le[math.inf]
    rank = q * total
    lo_b, lo_c = 0.0, 0.0
    for b in bounds:
        if per_le[b] >= rank:
            if math.isinf(b):
                return lo_b
            return lo_b + (b - lo_b) * (rank - lo_c) / max(per_le[b] - lo_c, 1e-9)
        lo_b, lo_c = b, per_le[b]
    return bounds[-1]


def test_output_parses_and_histograms_are_consistent() -> None:
    clock = Clock()
    cluster = FakeCluster()
    for i in range(3):
        cluster.add("auth-service", f"auth-{i}")
    traffic = Traffic(services=[svc("auth-service")], view=cluster, seed=1, clock=clock)
    previous: Samples = {}
    for _ in range(20):
        run(traffic, clock, 15)
        text = traffic.render("auth-service")
        assert "# TYPE http_server_requests_seconds histogram" in text
        assert "# HELP http_server_requests_seconds " in text
        samples = parse(text)
        series: dict[tuple[tuple[str, str], ...], dict[str, float]] = defaultdict(dict)
        for (name, labels), value in samples.items():
            if name == "http_server_requests_seconds_bucket":
                d = dict(labels)
                le = d.pop("le")
                series[tuple(sorted(d.items()))][le] = value
        assert series
        for labels, buckets in series.items():
            values = [buckets[repr(b)] for b in BUCKETS] + [buckets["+Inf"]]
            assert values == sorted(values), "buckets must be cumulative"
            count = samples[("http_server_requests_seconds_count", labels)]
            assert buckets["+Inf"] == count
            total = samples[("http_server_requests_seconds_sum", labels)]
            assert total > 0
            assert samples[("http_server_requests_seconds_max", labels)] >= 0
            d = dict(labels)
            assert set(d) == {
                "application",
                "exception",
                "method",
                "outcome",
                "pod",
                "status",
                "track",
                "uri",
            }
        for key, value in previous.items():
            name = key[0]
            if name.endswith(("_count", "_sum", "_bucket", "_total")):
                assert samples.get(key, 0.0) >= value, f"counter went down: {key}"
        previous = samples


DEFAULT_RPS = 200.0  # Traffic's default: enough for a canary's gates to reach a verdict


def test_rate_is_real_time_and_spread_over_ready_pods() -> None:
    for speed in (1.0, 5.0):
        clock = Clock()
        cluster = FakeCluster()
        for i in range(4):
            cluster.add("tweet-service", f"tweet-{i}")
        cluster.add("tweet-service", "tweet-starting", ready=False)
        traffic = Traffic(
            services=[svc("tweet-service")], view=cluster, seed=2, clock=clock, speed=speed
        )
        run(traffic, clock, 300)
        samples = parse(traffic.render("tweet-service"))
        total = totals(samples, "http_server_requests_seconds_count")
        assert abs(total / 300 - DEFAULT_RPS) < 0.05 * DEFAULT_RPS
        per_pod = [
            totals(samples, "http_server_requests_seconds_count", pod=f"tweet-{i}")
            for i in range(4)
        ]
        assert max(per_pod) - min(per_pod) <= 0.05 * total / 4
        assert totals(samples, "http_server_requests_seconds_count", pod="tweet-starting") == 0
        uris = {dict(k[1])["uri"] for k in samples if k[0] == "http_server_requests_seconds_count"}
        assert uris == {"/api/tweets", "/api/tweets/{id}"}


def test_ok_and_unhealthy_error_rates_and_latency() -> None:
    clock = Clock()
    cluster = FakeCluster()
    cluster.add("user-service", "user-ok-1")
    cluster.add("user-service", "user-ok-2")
    cluster.add("user-service", "user-bad-1", behaviour="unhealthy", track="canary")
    traffic = Traffic(
        services=[svc("user-service")], view=cluster, seed=3, clock=clock, rps_per_service=300
    )
    run(traffic, clock, 600)
    s = parse(traffic.render("user-service"))

    ok_total = totals(s, "http_server_requests_seconds_count", track="stable")
    ok_5xx = totals(s, "http_server_requests_seconds_count", track="stable", outcome="SERVER_ERROR")
    assert 0.0005 < ok_5xx / ok_total < 0.004
    assert 0.080 <= quantile(s, 0.95, track="stable") <= 0.200

    bad_total = totals(s, "http_server_requests_seconds_count", track="canary")
    bad_5xx = totals(
        s, "http_server_requests_seconds_count", track="canary", outcome="SERVER_ERROR"
    )
    assert 0.15 <= bad_5xx / bad_total <= 0.30
    assert quantile(s, 0.95, track="canary") > 0.8
    assert totals(s, "http_server_requests_seconds_max", track="canary") > 0.8


def test_series_of_vanished_pods_are_dropped_and_restarts_reset() -> None:
    clock = Clock()
    cluster = FakeCluster()
    cluster.add("user-service", "user-a")
    cluster.add("user-service", "user-b")
    traffic = Traffic(services=[svc("user-service")], view=cluster, seed=4, clock=clock)
    run(traffic, clock, 30)
    cluster.pods["user-service"] = [p for p in cluster.pods["user-service"] if p.name != "user-b"]
    run(traffic, clock, 1)
    text = traffic.render("user-service")
    assert 'pod="user-b"' not in text
    assert 'pod="user-a"' in text

    before = totals(parse(text), "http_server_requests_seconds_count", pod="user-a")
    cluster.pods["user-service"] = [replace(cluster.pods["user-service"][0], started_at=clock.now)]
    run(traffic, clock, 1)
    after = totals(parse(traffic.render("user-service")), "http_server_requests_seconds_count")
    assert after < before


def test_jvm_uptime_and_login_failures() -> None:
    clock = Clock()
    cluster = FakeCluster()
    cluster.add("auth-service", "auth-a")
    cluster.add("auth-service", "auth-crash", behaviour="crash")
    traffic = Traffic(services=[svc("auth-service")], view=cluster, seed=5, clock=clock)
    run(traffic, clock, 600)
    text = traffic.render("auth-service")
    s = parse(text)
    assert totals(s, "process_uptime_seconds", pod="auth-a") == 600.0
    heap = totals(s, "jvm_memory_used_bytes", pod="auth-a", area="heap")
    assert 100e6 < heap < 2 * 1024**3
    assert 'pod="auth-crash"' not in text  # a container that is not running is not scraped
    failures = totals(s, "auth_login_failures_total", pod="auth-a", track="stable")
    # Some every minute over ten minutes, far below the 100-a-minute alert.
    assert 5 <= failures <= 300
    assert "# TYPE auth_login_failures_total counter" in text
    assert "auth_login_failures_total" not in Traffic(
        services=[svc("tweet-service")], view=cluster, seed=5, clock=clock
    ).render("tweet-service")


def test_render_one_pod_only() -> None:
    clock = Clock()
    cluster = FakeCluster()
    cluster.add("user-service", "user-a")
    cluster.add("user-service", "user-b")
    traffic = Traffic(services=[svc("user-service")], view=cluster, seed=6, clock=clock)
    run(traffic, clock, 10)
    text = traffic.render("user-service", pod="user-a")
    assert 'pod="user-a"' in text and 'pod="user-b"' not in text


def test_deterministic_for_a_seed() -> None:
    texts = []
    for _ in range(2):
        clock = Clock()
        cluster = FakeCluster()
        cluster.add("gateway-service", "gw-a")
        cluster.add("gateway-service", "gw-b", behaviour="unhealthy")
        traffic = Traffic(services=[svc("gateway-service")], view=cluster, seed=7, clock=clock)
        run(traffic, clock, 60)
        texts.append(traffic.render("gateway-service"))
    assert texts[0] == texts[1]


def test_cheap_at_200_services_of_10_pods() -> None:
    clock = Clock()
    cluster = FakeCluster()
    services = [svc(f"svc{i}-service") for i in range(200)]
    for s in services:
        for j in range(10):
            cluster.add(s.name, f"{s.name}-{j}")
    traffic = Traffic(
        services=services, view=cluster, seed=8, clock=clock, pods_version=cluster.version
    )
    run(traffic, clock, 5)
    for s in services:
        traffic.render(s.name)  # the first scrape creates the series
    started = time.perf_counter()
    run(traffic, clock, 10)  # 40 ticks at 4 per second, no pod changing
    ticks = time.perf_counter() - started
    texts = [traffic.render(s.name) for s in services]
    elapsed = time.perf_counter() - started
    assert ticks < 0.25, f"40 idle ticks took {ticks:.2f} s"
    assert elapsed < 2.5, f"10 s of traffic took {elapsed:.2f} s to simulate and scrape"
    total = totals(parse(texts[7]), "http_server_requests_seconds_count")
    assert abs(total / 15 - DEFAULT_RPS) < 0.1 * DEFAULT_RPS


def test_requests_go_to_the_pods_there_were_until_a_change() -> None:
    clock = Clock()
    cluster = FakeCluster()
    cluster.add("user-service", "user-a")
    cluster.add("user-service", "user-b")
    traffic = Traffic(
        services=[svc("user-service")],
        view=cluster,
        seed=9,
        clock=clock,
        pods_version=cluster.version,
    )
    traffic.render("user-service")  # synced: both pods serve from here on
    run(traffic, clock, 60)
    cluster.pods["user-service"] = [p for p in cluster.pods["user-service"] if p.name != "user-b"]
    cluster.changed("user-service")
    run(traffic, clock, 60)
    s = parse(traffic.render("user-service"))
    assert 'pod="user-b"' not in traffic.render("user-service")
    got = totals(s, "http_server_requests_seconds_count", pod="user-a")
    # Half of the first minute, all of the second.
    assert abs(got - 1.5 * 60 * DEFAULT_RPS) < 0.05 * 1.5 * 60 * DEFAULT_RPS
