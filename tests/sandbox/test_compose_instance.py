"""One Compose sandbox instance: in this process ("ok", "unhealthy", "hang", "crash" images, its
configuration), then as the CMD of an image built by ``build_images``, in containers of a
private Docker Engine (HEALTHCHECK, a crash loop under restart "always", ``docker stop``)."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.sandbox.compose_images import (
    REPO_ROOT,
    build_images,
    image_changes,
    instance_mounts,
    tags_for,
)
from backends.sandbox.compose_instance import Instance, InstanceConfig
from tests.support.dockerd import Dockerd, start_dockerd
from tests.support.dockerd import start as start_container
from tests.support.waiting import until as until_async

pytestmark = pytest.mark.xdist_group("dockerd")

OK, CRASH = tags_for("auth-service", ["1.0.0", "2.0.0-crash"])
PLAIN_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z +(INFO|WARN|ERROR|DEBUG) 1 --- "
    r"\[auth-service\] \[.{15}\] \S.{39} : "
)
HEALTH_PATH = "/api/auth/register/health"


def config(image: str, **over: Any) -> InstanceConfig:
    base: dict[str, Any] = {
        "service": "auth-service",
        "image": image,
        "pod": "auth-service-1",
        "port": 0,
        "health_paths": (HEALTH_PATH,),
        "speed": 10.0,
    }
    return InstanceConfig(**{**base, **over})


class Running:
    def __init__(self, instance: Instance, out: io.StringIO, http: aiohttp.ClientSession) -> None:
        self.instance, self.out, self.http = instance, out, http

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.instance.port}"

    async def get(self, path: str, method: str = "GET") -> tuple[int, Any, str]:
        async with self.http.request(method, self.url + path) as resp:
            text = await resp.text()
            body = json.loads(text) if "json" in resp.headers["Content-Type"] else text
            return resp.status, body, resp.headers["Content-Type"]

    def samples(self, text: str, name: str) -> list[Any]:
        return [
            s
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        ]


@pytest.fixture
async def start() -> AsyncIterator[Any]:
    running: list[Running] = []

    async def go(cfg: InstanceConfig) -> Running:
        out = io.StringIO()
        instance = Instance(cfg, host="127.0.0.1", out=out)
        await instance.start()
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        running.append(Running(instance, out, http))
        return running[-1]

    yield go
    for r in running:
        await r.http.close()
        r.instance.stop()
        await r.instance.wait()


async def test_an_ok_instance_is_up_with_metrics_and_spring_boot_logs(start: Any) -> None:
    run = await start(config(OK, track="canary"))
    status, body, ctype = await run.get("/actuator/health")
    assert status == 200 and ctype == "application/vnd.spring-boot.actuator.v3+json"
    assert body["status"] == "UP" and body["components"]["db"]["status"] == "UP"
    assert (await run.get("/actuator/health/db"))[:2] == (200, body["components"]["db"])
    for probe in ("liveness", "readiness"):
        assert (await run.get(f"/actuator/health/{probe}"))[:2] == (200, {"status": "UP"})
    assert (await run.get(HEALTH_PATH))[:2] == (200, {"status": "UP", "service": "auth-service"})
    assert (await run.get("/actuator/health/nope"))[0] == 404
    status, body, _ = await run.get("/api/auth/login")
    assert status == 404 and body["error"] == "Not Found" and body["path"] == "/api/auth/login"
    assert (await run.get("/actuator/health", "POST"))[0] == 405

    run.instance.traffic.tick(60.0)  # a minute of requests, as its own ticks would add up
    status, text, ctype = await run.get("/actuator/prometheus")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    counts = run.samples(text, "http_server_requests_seconds_count")
    assert sum(s.value for s in counts) > 800
    assert {(s.labels["pod"], s.labels["track"]) for s in counts} == {("auth-service-1", "canary")}
    errors = sum(s.value for s in counts if s.labels["outcome"] == "SERVER_ERROR")
    assert errors / sum(s.value for s in counts) < 0.05
    assert run.samples(text, "process_uptime_seconds")[0].labels["pod"] == "auth-service-1"

    run.instance.stop()
    assert await run.instance.wait() == 0
    lines = run.out.getvalue().splitlines()
    heads = [line for line in lines if line[:4].isdigit()]
    assert heads and all(PLAIN_LINE.match(line) for line in heads), heads[:3]
    assert "Started AuthServiceApplication" in run.out.getvalue()
    assert lines[0].endswith("Starting AuthServiceApplication v1.0.0 using Java 17.0.10 "
                             "with PID 1 (/app/app.jar started by spring in /app)")  # fmt: skip
    assert any("Graceful shutdown complete" in line for line in lines[-6:])


async def test_an_unhealthy_instance_is_down_slow_and_failing(start: Any) -> None:
    run = await start(config(OK.replace("1.0.0", "2.0.0-unhealthy"), log_format="json"))
    t0 = time.monotonic()
    status, body, _ = await run.get("/actuator/health")
    assert time.monotonic() - t0 >= 0.03  # 0.3-0.9 s at speed 1
    assert status == 503 and body["status"] == "DOWN"
    assert "HikariPool-1" in body["components"]["db"]["details"]["error"]
    assert (await run.get(HEALTH_PATH))[:2] == (503, {"status": "DOWN", "service": "auth-service"})
    # Still alive and taking traffic, as in the Kubernetes sandbox.
    assert (await run.get("/actuator/health/liveness"))[:2] == (200, {"status": "UP"})

    run.instance.traffic.tick(60.0)
    text = (await run.get("/actuator/prometheus"))[1]
    counts = run.samples(text, "http_server_requests_seconds_count")
    total = sum(s.value for s in counts)
    errors = sum(s.value for s in counts if s.labels["outcome"] == "SERVER_ERROR")
    assert 0.1 < errors / total < 0.4
    latency = sum(s.value for s in run.samples(text, "http_server_requests_seconds_sum"))
    assert latency / total > 0.3  # several times a healthy one's ~50 ms

    # At speed 10 the sick chatter comes at some 30 lines a second.
    await until_async(
        lambda: "HikariPool-1 - Connection is not available" in run.out.getvalue(),
        10,
        "the unhealthy instance to log a pool timeout",
    )
    run.instance.stop()
    assert await run.instance.wait() == 0
    docs = [json.loads(line) for line in run.out.getvalue().splitlines()]
    assert all(d["@version"] == "1" and d["level"] for d in docs)
    assert any("HikariPool-1 - Connection is not available" in d["message"] for d in docs)
    assert docs[-1]["message"] == "HikariPool-1 - Shutdown completed."


async def test_a_hanging_instance_accepts_health_requests_and_never_answers(start: Any) -> None:
    run = await start(config(OK.replace("1.0.0", "2.0.0-hang")))
    short = aiohttp.ClientTimeout(total=0.3)
    for path in ("/actuator/health", "/actuator/health/liveness", HEALTH_PATH):
        with pytest.raises(TimeoutError):
            async with run.http.get(run.url + path, timeout=short) as resp:
                await resp.read()
    assert (await run.get("/actuator/prometheus"))[0] == 200

    # A request still hanging when SIGTERM comes does not hold up the shutdown.
    async def wedged() -> None:
        async with run.http.get(run.url + "/actuator/health") as resp:
            await resp.read()

    pending = asyncio.create_task(wedged())
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    run.instance.stop()
    assert await run.instance.wait() == 0
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(aiohttp.ClientError):
        await pending
    assert "Graceful shutdown complete" in run.out.getvalue()


async def test_a_crashing_instance_logs_a_failed_start_and_exits_1() -> None:
    out = io.StringIO()
    instance = Instance(config(CRASH, speed=5.0), host="127.0.0.1", out=out)
    t0 = time.monotonic()
    await instance.start()
    assert instance.port == 0  # never listened
    assert await instance.wait() == 1
    assert 0.25 < time.monotonic() - t0 < 1.0  # 1.5 s at speed 1
    text = out.getvalue()
    assert "Starting AuthServiceApplication v2.0.0-crash" in text
    assert re.search(r"ERROR 1 --- .* : Application run failed", text)
    assert "\tat " in text and "Graceful shutdown" not in text


def test_the_configuration_comes_from_the_environment() -> None:
    env = {
        "BVA_SANDBOX_IMAGE": "bharathva/tweet-service:2.0.0-hang",
        "BVA_SANDBOX_SERVICE": "tweet-service",
        "BVA_SANDBOX_PORT": "8082",
        "BVA_SANDBOX_HEALTH_PATHS": "/a/health, /b/health,",
        "BVA_SANDBOX_SPEED": "2.5",
        "BVA_SANDBOX_SEED": "7",
        "BVA_SANDBOX_TRACK": "canary",
        "BVA_SANDBOX_LOG_FORMAT": "json",
        "HOSTNAME": "3f2a9c1b7d0e",
    }
    cfg = InstanceConfig.from_env(env)
    assert cfg == InstanceConfig(
        service="tweet-service",
        image="bharathva/tweet-service:2.0.0-hang",
        pod="3f2a9c1b7d0e",
        port=8082,
        health_paths=("/a/health", "/b/health"),
        speed=2.5,
        seed=7,
        track="canary",
        log_format="json",
    )
    assert cfg.behaviour == "hang"
    plain = InstanceConfig.from_env({"BVA_SANDBOX_SERVICE": "user-service"})
    assert (plain.port, plain.track, plain.log_format, plain.behaviour) == (
        8080,
        "stable",
        "plain",
        "ok",
    )
    for bad, word in (
        ({}, "BVA_SANDBOX_SERVICE"),
        ({"BVA_SANDBOX_PORT": "http"}, "BVA_SANDBOX_PORT"),
        ({"BVA_SANDBOX_SPEED": "0"}, "BVA_SANDBOX_SPEED"),
        ({"BVA_SANDBOX_TRACK": "blue"}, "BVA_SANDBOX_TRACK"),
        ({"BVA_SANDBOX_LOG_FORMAT": "xml"}, "BVA_SANDBOX_LOG_FORMAT"),
    ):
        with pytest.raises(ValueError, match=word):
            InstanceConfig.from_env({"BVA_SANDBOX_SERVICE": "s", **bad} if bad else bad)


def test_the_image_changes_and_the_mounts() -> None:
    changes = image_changes(OK, python_prefix="/opt/py", repo_root="/src/bva", speed=2.0)
    assert changes[:3] == [
        f"ENV BVA_SANDBOX_IMAGE={OK}",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        "ENV PYTHONPATH=/src/bva",
    ]
    assert changes[3].startswith("HEALTHCHECK --interval=500ms ") and "--retries=3" in changes[3]
    assert "http://127.0.0.1:${BVA_SANDBOX_PORT:-8080}/actuator/health/liveness" in changes[3]
    assert changes[4:] == [
        "STOPSIGNAL SIGTERM",
        'CMD ["/opt/py/bin/python3", "-m", "backends.sandbox.compose_instance"]',
    ]
    mounts = instance_mounts(sys.base_prefix, REPO_ROOT)
    assert "/usr:/usr:ro" in mounts and f"{REPO_ROOT}:{REPO_ROOT}:ro" in mounts
    targets = [m.split(":")[1] for m in mounts]
    assert len(targets) == len(set(targets))
    assert instance_mounts("/usr", "/usr/src/bva") == instance_mounts("/usr", "/usr")


# --- in containers of a real Docker Engine ------------------------------------------------------

NETWORK = "t_default"
SPEED = "4"


@pytest.fixture(scope="module")
def engine() -> Iterator[Dockerd]:
    running = start_dockerd()
    try:
        with running.client() as api:
            build_images(
                api, [OK, CRASH], python_prefix=sys.prefix, repo_root=REPO_ROOT, speed=float(SPEED)
            )
            api.create_network(NETWORK)
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(engine: Dockerd) -> Iterator[Any]:
    with engine.client() as client:
        try:
            yield client
        finally:
            for c in client.containers(all=True):
                client.remove_container(c["Id"], force=True)


def run_instance(api: Any, image: str, *, restart: str = "no") -> str:
    container = api.create_container(
        image,
        environment={
            "BVA_SANDBOX_SERVICE": "auth-service",
            "BVA_SANDBOX_PORT": "8080",
            "BVA_SANDBOX_SPEED": SPEED,
            "BVA_SANDBOX_HEALTH_PATHS": HEALTH_PATH,
        },
        ports=[8080],
        host_config=api.create_host_config(
            binds=instance_mounts(sys.prefix, REPO_ROOT),
            port_bindings={8080: ("127.0.0.1", None)},
            restart_policy={"Name": restart},
        ),
        networking_config=api.create_networking_config(
            {NETWORK: api.create_endpoint_config(aliases=["auth-service"])}
        ),
    )
    start_container(api, container["Id"])
    return str(container["Id"])


def until(what: str, check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.1)


def test_a_container_serves_health_turns_healthy_and_stops_gracefully(api: Any) -> None:
    image = api.inspect_image(OK)["Config"]
    assert f"BVA_SANDBOX_IMAGE={OK}" in image["Env"]
    assert image["Healthcheck"]["Retries"] == 3 and "liveness" in image["Healthcheck"]["Test"][1]
    cid = run_instance(api, OK)
    port = api.port(cid, 8080)[0]["HostPort"]

    def health() -> Any:
        try:
            resp = httpx.get(f"http://127.0.0.1:{port}/actuator/health", timeout=2)
        except httpx.HTTPError:
            return None
        return resp if resp.status_code == 200 else None

    resp = until("/actuator/health answering", health, 10)
    assert resp.json()["status"] == "UP"
    hostname = api.inspect_container(cid)["Config"]["Hostname"]
    assert resp.headers["X-Sandbox-Pod"] == hostname
    state = until(
        "the HEALTHCHECK healthy",
        lambda: api.inspect_container(cid)["State"]["Health"]["Status"] == "healthy",
    )
    assert state
    metrics = httpx.get(f"http://127.0.0.1:{port}/actuator/prometheus", timeout=2).text
    uptime = [
        s
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "process_uptime_seconds"
    ]
    assert [(s.labels["pod"], s.labels["track"]) for s in uptime] == [(hostname, "stable")]

    t0 = time.monotonic()
    api.stop(cid, timeout=10)
    assert time.monotonic() - t0 < 3.0
    state = api.inspect_container(cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    logs = api.logs(cid).decode()
    assert "Started AuthServiceApplication" in logs
    assert logs.rstrip().endswith("HikariPool-1 - Shutdown completed.")


def test_a_crashing_container_exits_1_and_restarts_under_restart_always(api: Any) -> None:
    cid = run_instance(api, CRASH, restart="always")
    until(
        "two restarts",
        lambda: api.inspect_container(cid)["RestartCount"] >= 2,
    )
    state = api.inspect_container(cid)["State"]
    assert state["ExitCode"] == 1
    assert "Application run failed" in api.logs(cid).decode()
