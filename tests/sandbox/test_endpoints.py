from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.sandbox.endpoints import ServiceEndpoints
from backends.sandbox.traffic import Traffic
from backends.sandbox.view import Behaviour, PodView, SandboxService

T0 = 1_795_670_447.0
AUTH = SandboxService(
    name="auth-service",
    container="auth-service",
    port=8081,
    health_paths=("/api/auth/register/health",),
    metrics_path="/actuator/prometheus",
    log_format="plain",
)
TWEET = SandboxService("tweet-service", "tweet-service", 8082, (), "/actuator/prometheus", "json")
ACTUATOR = "application/vnd.spring-boot.actuator.v3+json"


class FakeCluster:
    def __init__(self) -> None:
        self.pods: dict[str, list[PodView]] = defaultdict(list)

    def pods_for_service(self, service: str) -> list[PodView]:
        return list(self.pods[service])

    def add(
        self, service: str, name: str, *, behaviour: Behaviour = "ok", ready: bool = True
    ) -> None:
        self.pods[service].append(
            PodView(
                name=name,
                service=service,
                container=service,
                track="stable",
                image=f"r/{service}:1.0.0",
                behaviour=behaviour,
                ready=ready,
                running=behaviour != "crash",
                started_at=T0,
            )
        )


@dataclass
class Sandbox:
    cluster: FakeCluster
    traffic: Traffic
    urls: dict[str, str]
    http: aiohttp.ClientSession
    clock: list[float] = field(default_factory=lambda: [T0 + 60])


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    cluster = FakeCluster()
    now = [T0 + 60]
    traffic = Traffic(services=[AUTH, TWEET], view=cluster, seed=1, clock=lambda: now[0])
    endpoints = ServiceEndpoints(
        services=[AUTH, TWEET], view=cluster, traffic=traffic, clock=lambda: now[0], speed=10
    )
    urls = await endpoints.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        yield Sandbox(cluster, traffic, urls, http, now)
    await endpoints.stop()


async def test_one_server_per_service_on_loopback(sandbox: Sandbox) -> None:
    assert set(sandbox.urls) == {"auth-service", "tweet-service"}
    ports = {url.rsplit(":", 1)[1] for url in sandbox.urls.values()}
    assert len(ports) == 2
    assert all(url.startswith("http://127.0.0.1:") for url in sandbox.urls.values())


async def test_health_up_in_actuator_shape(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-1")
    async with sandbox.http.get(sandbox.urls["auth-service"] + "/actuator/health") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == ACTUATOR
        assert resp.headers["X-Sandbox-Pod"] == "auth-1"
        body = await resp.json(content_type=None)
    assert body["status"] == "UP"
    comps = body["components"]
    assert comps["db"] == {
        "status": "UP",
        "details": {"database": "PostgreSQL", "validationQuery": "isValid()"},
    }
    disk = comps["diskSpace"]
    assert disk["status"] == "UP"
    assert disk["details"]["threshold"] == 10485760
    assert disk["details"]["path"] == "/app/."
    assert disk["details"]["exists"] is True
    assert 0 < disk["details"]["free"] < disk["details"]["total"]
    assert comps["ping"] == {"status": "UP"}


async def test_unhealthy_pod_answers_down_slowly(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-bad", behaviour="unhealthy")
    started = time.perf_counter()
    async with sandbox.http.get(sandbox.urls["auth-service"] + "/actuator/health") as resp:
        assert resp.status == 503
        body = await resp.json(content_type=None)
    elapsed = time.perf_counter() - started
    assert 0.03 <= elapsed < 1.0  # 300-900 ms scaled down by speed 10
    assert body["status"] == "DOWN"
    assert body["components"]["db"]["status"] == "DOWN"
    assert (
        "HikariPool-1 - Connection is not available" in body["components"]["db"]["details"]["error"]
    )
    assert body["components"]["ping"]["status"] == "UP"
    async with sandbox.http.get(
        sandbox.urls["auth-service"] + "/actuator/health/readiness"
    ) as resp:
        assert resp.status == 200  # it still takes traffic: that is what makes it dangerous


async def test_extra_health_path_and_components(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-1")
    base = sandbox.urls["auth-service"]
    async with sandbox.http.get(base + "/api/auth/register/health") as resp:
        assert resp.status == 200
        assert (await resp.json(content_type=None))["status"] == "UP"
    async with sandbox.http.get(base + "/actuator/health/db") as resp:
        assert (await resp.json(content_type=None))["details"]["database"] == "PostgreSQL"
    sandbox.cluster.pods["auth-service"] = []
    sandbox.cluster.add("auth-service", "auth-bad", behaviour="unhealthy")
    async with sandbox.http.get(base + "/api/auth/register/health") as resp:
        assert resp.status == 503
        assert (await resp.json(content_type=None))["status"] == "DOWN"


async def test_no_ready_pod_is_503_down(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-starting", ready=False)
    sandbox.cluster.add("auth-service", "auth-crash", behaviour="crash")
    async with sandbox.http.get(sandbox.urls["auth-service"] + "/actuator/health") as resp:
        assert resp.status == 503
        assert "X-Sandbox-Pod" not in resp.headers
        body = await resp.json(content_type=None)
    assert body["status"] == "DOWN"
    assert {c["status"] for c in body["components"].values()} == {"DOWN"}


async def test_round_robin_and_targeting(sandbox: Sandbox) -> None:
    for i in range(3):
        sandbox.cluster.add("tweet-service", f"tweet-{i}")
    sandbox.cluster.add("tweet-service", "tweet-starting", ready=False)
    base = sandbox.urls["tweet-service"]
    seen: Counter[str] = Counter()
    for _ in range(9):
        async with sandbox.http.get(base + "/actuator/health") as resp:
            seen[resp.headers["X-Sandbox-Pod"]] += 1
    assert seen == {"tweet-0": 3, "tweet-1": 3, "tweet-2": 3}

    headers = {"X-Sandbox-Pod": "tweet-starting"}
    async with sandbox.http.get(base + "/actuator/health", headers=headers) as resp:
        assert resp.headers["X-Sandbox-Pod"] == "tweet-starting"
    async with sandbox.http.get(base + "/actuator/health/readiness", headers=headers) as resp:
        assert resp.status == 503
        assert (await resp.json(content_type=None))["status"] == "OUT_OF_SERVICE"

    headers = {"X-Sandbox-Pod": "auth-1"}
    async with sandbox.http.get(base + "/actuator/health", headers=headers) as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["status"] == 404 and body["error"] == "Not Found"


async def test_unknown_path_is_spring_404(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-1")
    async with sandbox.http.get(sandbox.urls["auth-service"] + "/nope") as resp:
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["X-Sandbox-Pod"] == "auth-1"
        body = await resp.json()
    assert body == {
        "timestamp": "2026-11-26T05:21:47.000+00:00",
        "status": 404,
        "error": "Not Found",
        "path": "/nope",
    }
    async with sandbox.http.post(sandbox.urls["auth-service"] + "/actuator/health") as resp:
        assert resp.status == 405


async def test_metrics_endpoint_serves_prometheus_text(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-1")
    sandbox.cluster.add("auth-service", "auth-2")
    for _ in range(40):
        sandbox.clock[0] += 0.25
        sandbox.traffic.tick(0.25)
    base = sandbox.urls["auth-service"]
    async with sandbox.http.get(base + "/actuator/prometheus") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"http_server_requests_seconds", "process_uptime_seconds"} <= names
    assert 'pod="auth-1"' in text and 'pod="auth-2"' in text

    async with sandbox.http.get(
        base + "/actuator/prometheus", headers={"X-Sandbox-Pod": "auth-2"}
    ) as resp:
        text = await resp.text()
    assert 'pod="auth-2"' in text and 'pod="auth-1"' not in text


async def test_stop_closes_ports() -> None:
    cluster = FakeCluster()
    traffic = Traffic(services=[AUTH], view=cluster, seed=1, clock=time.time)
    endpoints = ServiceEndpoints(services=[AUTH], view=cluster, traffic=traffic)
    urls = await endpoints.start()
    await endpoints.stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(urls["auth-service"] + "/actuator/health")


async def test_hang_pod_accepts_and_never_answers_health(sandbox: Sandbox) -> None:
    sandbox.cluster.add("auth-service", "auth-wedged", behaviour="hang")
    base = sandbox.urls["auth-service"]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            async with sandbox.http.get(base + "/actuator/health"):
                pass
    # Only health hangs: the metrics a scraper reads still answer.
    async with sandbox.http.get(base + "/actuator/prometheus") as resp:
        assert resp.status == 200
