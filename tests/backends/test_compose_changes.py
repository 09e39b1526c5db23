"""The compose adapter's changes against a real Docker Engine: a rolling recreate waits for
each copy's HEALTHCHECK and keeps the service's config; a crash-looping image stops the
rollout with the old containers serving; rollback goes to the previous image; scaling; the
canary containers and their release state; the lock and sign-offs with compare-and-swap; and
read-only sends nothing (counted through the Engine's own events)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from backends.checklist.models import SignOff, SignoffRecord
from backends.compose import labels as L
from backends.compose.changes import ComposeChanges
from backends.errors import Conflict, ReadOnlyError
from backends.models import LockRecord, RolloutState
from tests.support.dockerd import Dockerd, import_image, start, start_dockerd

pytestmark = pytest.mark.xdist_group("dockerd")

PROJECT = "bharathva"
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]
V1, V2, CRASH = (
    "bharathva/auth-service:1.0.0",
    "bharathva/auth-service:1.1.0",
    "bharathva/auth-service:2.0.0-crash",
)
HEALTH = {
    "Test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"],
    "Interval": 200_000_000,
    "Timeout": 1_000_000_000,
    "Retries": 2,
    "StartPeriod": 0,
}


@pytest.fixture(scope="module")
def engine() -> Iterator[Dockerd]:
    running = start_dockerd()
    try:
        with running.client() as api:
            import_image(api, V1, {"APP_VERSION": "1.0.0"}, HTTPD)
            import_image(api, V2, {"APP_VERSION": "1.1.0"}, HTTPD)
            import_image(api, CRASH, {"APP_VERSION": "2.0.0"}, ["sh", "-c", "sleep 0.3; exit 3"])
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(engine: Dockerd) -> Iterator[Any]:
    """auth-service with two replicas, as `docker compose up --scale auth-service=2` makes it:
    compose's labels, the project network with the service's alias, a healthcheck, restart
    always, an ephemeral published port, its own environment."""
    with engine.client() as client:
        client.create_network(f"{PROJECT}_default", labels={L.PROJECT: PROJECT})
        for n in (1, 2):
            c = client.create_container(
                V1,
                name=f"{PROJECT}-auth-service-{n}",
                labels={L.PROJECT: PROJECT, L.SERVICE: "auth-service", L.NUMBER: str(n),
                        L.ONEOFF: "False"},
                environment={"SPRING_PROFILES_ACTIVE": "prod", "JWT_SECRET": "s3cr3t"},
                ports=[8080],
                healthcheck=HEALTH,
                stop_timeout=1,  # stop_grace_period: 1s (busybox httpd ignores SIGTERM)
                host_config=client.create_host_config(
                    restart_policy={"Name": "always"},
                    port_bindings={8080: ("127.0.0.1", None)},
                ),
                networking_config=client.create_networking_config(
                    {f"{PROJECT}_default": client.create_endpoint_config(aliases=["auth-service"])}
                ),
            )  # fmt: skip
            start(client, c["Id"])
        try:
            yield client
        finally:
            for c in client.containers(all=True):
                client.remove_container(c["Id"], force=True)
            client.remove_network(f"{PROJECT}_default")


@pytest.fixture
async def compose(engine: Dockerd, api: Any) -> AsyncIterator[ComposeChanges]:
    adapter = ComposeChanges(
        project=PROJECT, host=engine.host, services=[("auth-service", "auth-service")],
        progress_deadline=30.0,
    )  # fmt: skip
    yield adapter
    await adapter.close()


async def rolled(
    compose: ComposeChanges, name: str, want: RolloutState, timeout: float = 40
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await compose.rollout_status(name)
        if status.state is want:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} never reached {want}: {status}")


async def healthy(compose: ComposeChanges) -> None:
    await rolled(compose, "auth-service", RolloutState.COMPLETE)


async def test_a_rolling_release_waits_for_health_and_keeps_the_config(
    compose: ComposeChanges, api: Any
) -> None:
    await healthy(compose)
    before = {c["Names"][0] for c in api.containers()}
    workload = await compose.set_image("auth-service", "auth-service", V2, "bva release r-1: 1.1.0")
    assert workload.image == V2  # the newest container already runs it
    status = await rolled(compose, "auth-service", RolloutState.COMPLETE)
    assert status.updated == 2 and status.available == 2
    containers = [api.inspect_container(c["Id"]) for c in api.containers()]
    assert len(containers) == 2 and not before & {"/" + c["Name"].lstrip("/") for c in containers}
    for c in containers:
        config = c["Config"]
        assert config["Image"] == V2
        env = dict(e.split("=", 1) for e in config["Env"])
        # The service's own environment kept; the image's own ENV is the new image's.
        assert env["SPRING_PROFILES_ACTIVE"] == "prod" and env["JWT_SECRET"] == "s3cr3t"
        assert env["APP_VERSION"] == "1.1.0"
        assert (
            config["Labels"][L.PROJECT] == PROJECT and config["Labels"][L.SERVICE] == "auth-service"
        )
        assert config["Healthcheck"]["Test"] == HEALTH["Test"]
        assert config["StopTimeout"] == 1
        assert c["HostConfig"]["RestartPolicy"]["Name"] == "always"
        aliases = c["NetworkSettings"]["Networks"][f"{PROJECT}_default"]["Aliases"]
        assert "auth-service" in aliases
        assert c["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    history = await compose.history("auth-service")
    assert [(r.revision, r.images["auth-service"]) for r in history] == [(1, V1), (2, V2)]
    assert history[-1].is_current and history[-1].change_cause == "bva release r-1: 1.1.0"

    # Back to revision 1 with the same recreate, and again healthy.
    said = await compose.undo("auth-service")
    assert said == "service/auth-service rolled back"
    await rolled(compose, "auth-service", RolloutState.COMPLETE)
    assert (await compose.get_workload("auth-service")).image == V1
    assert [r.revision for r in await compose.history("auth-service")] == [1, 2, 3]


async def test_a_crash_looping_image_stops_the_rollout_with_the_old_ones_serving(
    compose: ComposeChanges, api: Any
) -> None:
    await healthy(compose)
    await compose.set_image("auth-service", "auth-service", CRASH)
    status = await rolled(compose, "auth-service", RolloutState.FAILED)
    assert "restarts" in status.message or "Exited" in status.message
    # The rollout task has given up (not merely not got further yet): then count.
    await asyncio.wait_for(compose._rollouts["auth-service"], 40)
    images = sorted(
        api.inspect_container(c["Id"])["Config"]["Image"] for c in api.containers(all=True)
    )
    # One copy tried (crash-looping), both old ones still there and serving.
    assert images.count(V1) == 2 and images.count(CRASH) == 1
    pods = await compose.list_instances("auth-service")
    assert sum(1 for p in pods if p.is_ready) == 2
    assert "auth-service" in compose.problems


async def test_scale_up_and_down(compose: ComposeChanges, api: Any) -> None:
    await healthy(compose)
    await compose.scale("auth-service", 4)
    await rolled(compose, "auth-service", RolloutState.COMPLETE)
    names = sorted(c["Names"][0] for c in api.containers())
    assert names == [f"/{PROJECT}-auth-service-{n}" for n in (1, 2, 3, 4)]
    await compose.scale("auth-service", 1)
    assert [c["Names"][0] for c in api.containers()] == [f"/{PROJECT}-auth-service-1"]


async def test_scale_to_zero_and_back_keeps_the_service(compose: ComposeChanges, api: Any) -> None:
    """What a database restore's drain does: the service at 0, then back."""
    await healthy(compose)
    await compose.scale("auth-service", 0)
    stopped = await compose.get_workload("auth-service")
    assert (stopped.desired, stopped.ready) == (0, 0)
    assert (await compose.rollout_status("auth-service")).state is RolloutState.COMPLETE
    assert len(api.containers(all=True, filters={"label": f"{L.SERVICE}=auth-service"})) == 2
    assert api.containers(filters={"label": f"{L.SERVICE}=auth-service"}) == []  # none running
    await compose.scale("auth-service", 2)
    await rolled(compose, "auth-service", RolloutState.COMPLETE)
    back = await compose.get_workload("auth-service")
    assert (back.desired, back.ready) == (2, 2)


async def test_canary_containers_and_their_release_state(compose: ComposeChanges, api: Any) -> None:
    await healthy(compose)
    canary = await compose.create_canary(
        "auth-service", "auth-service", container="auth-service", image=V2, replicas=1,
        marks={"bva.io/release-id": "r-1", "bva.io/phase": "0"},
    )  # fmt: skip
    assert canary.name == "auth-service-canary" and canary.desired == 1
    assert canary.marks == {"bva.io/release-id": "r-1", "bva.io/phase": "0"}
    pods = await compose.list_instances("auth-service")
    assert sorted(p.track for p in pods) == ["canary", "stable", "stable"]
    await compose.scale_canary("auth-service-canary", 2)
    await compose.mark_canary("auth-service-canary", {"bva.io/phase": "1"})
    got = (await compose.canaries([("auth-service", "auth-service")]))["auth-service"]
    assert got.desired == 2 and got.marks["bva.io/phase"] == "1"
    assert got.marks["bva.io/release-id"] == "r-1" and got.images == {"auth-service": V2}
    # Two writers at once both land (compare-and-swap, retried).
    await asyncio.gather(
        compose.mark_canary("auth-service-canary", {"a": "1"}),
        compose.mark_canary("auth-service-canary", {"b": "2"}),
    )
    marks = (await compose.canaries([("auth-service", "auth-service")]))["auth-service"].marks
    assert marks["a"] == "1" and marks["b"] == "2"
    await compose.remove_canary("auth-service-canary")
    assert await compose.canaries([("auth-service", "auth-service")]) == {}
    assert all(L.track_of(c["Labels"]) == "stable" for c in api.containers(all=True)
               if c["Labels"].get(L.PROJECT))  # fmt: skip


async def test_the_lock_and_signoffs_compare_and_swap(compose: ComposeChanges) -> None:
    assert await compose.read_lock() is None
    now = time.time()
    held = await compose.create_lock(LockRecord("asha@vm pid 1", "r-1", now, now, 15))
    with pytest.raises(Conflict):
        await compose.create_lock(LockRecord("ravi@vm pid 2", "r-2", now, now, 15))
    renewed = await compose.replace_lock(
        LockRecord("asha@vm pid 1", "r-1", now, now + 5, 15, held.version)
    )
    with pytest.raises(Conflict):  # a stale version loses
        await compose.replace_lock(LockRecord("ravi@vm pid 2", "r-2", now, now, 15, held.version))
    read = await compose.read_lock()
    assert read is not None and read.holder == "asha@vm pid 1" and read.version == renewed.version
    await compose.delete_lock()
    assert await compose.read_lock() is None
    first = await compose.write_signoffs(
        SignoffRecord("1.1.0", (SignOff("tests", "asha", now, ""),))
    )
    with pytest.raises(Conflict):
        await compose.write_signoffs(SignoffRecord("1.1.0", (), ""))
    await compose.write_signoffs(
        SignoffRecord(
            "1.1.0", (*first.signoffs, SignOff("review", "ravi", now, "ok")), first.version
        )
    )
    kept = await compose.read_signoffs()
    assert kept is not None and [s.who for s in kept.signoffs] == ["asha", "ravi"]


async def test_read_only_sends_nothing_to_the_engine(engine: Dockerd, api: Any) -> None:
    ro = ComposeChanges(project=PROJECT, host=engine.host, read_only=True)
    await asyncio.sleep(1.1)  # the fixture's own starts fall in an earlier second
    since = int(time.time())
    try:
        attempts = [
            ro.set_image("auth-service", "auth-service", V2),
            ro.scale("auth-service", 3),
            ro.undo("auth-service"),
            ro.create_canary("auth-service", "auth-service", container="auth-service",
                             image=V2, replicas=1, marks={}),
            ro.scale_canary("auth-service-canary", 2),
            ro.mark_canary("auth-service-canary", {}),
            ro.remove_canary("auth-service-canary"),
            ro.create_lock(LockRecord("x", "r", None, None, 15)),
            ro.delete_lock(),
            ro.write_signoffs(SignoffRecord("1", ())),
        ]  # fmt: skip
        for attempt in attempts:
            with pytest.raises(ReadOnlyError):
                await attempt
        assert len(await ro.list_workloads()) == 1  # reading still works
    finally:
        await ro.close()
    until = int(time.time()) + 1
    changes = [
        e for e in api.events(since=since, until=until, decode=True)
        if e.get("Action") in ("create", "start", "stop", "kill", "destroy", "die", "connect")
    ]  # fmt: skip
    assert changes == []
