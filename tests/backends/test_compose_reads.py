"""The compose adapter's reads against a real Docker Engine: a project made through the Engine
API with compose's labels is found as compose would show it (one-off containers left out),
healthchecks make readiness, a crash-looping service is a failed rollout at once, and the
watch follows the Engine's events, through the engine being killed and started again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from backends.compose import labels as L
from backends.compose.reads import ComposeReads
from backends.compose.watch import Watcher
from backends.models import RolloutState, WatchEvent
from tests.support.dockerd import Dockerd, import_image, restart, start, start_dockerd

pytestmark = pytest.mark.xdist_group("dockerd")

PROJECT = "shop"
IMAGE = "bharathva/web:1.0.0"
HEALTH = {
    "Test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"],
    "Interval": 200_000_000,
    "Timeout": 1_000_000_000,
    "Retries": 3,
    "StartPeriod": 0,
}


@pytest.fixture(scope="module")
def engine() -> Iterator[Dockerd]:
    running = start_dockerd()
    try:
        with running.client() as api:
            import_image(api, IMAGE)
        yield running
    finally:
        running.stop()


def labels(service: str, number: int, *, oneoff: bool = False) -> dict[str, str]:
    return {
        L.PROJECT: PROJECT,
        L.SERVICE: service,
        L.NUMBER: str(number),
        L.ONEOFF: "True" if oneoff else "False",
    }


def up(api: Any, service: str, number: int, cmd: list[str], **extra: Any) -> str:
    """One container as `docker compose up` makes it: compose's labels and name, the
    project's network, started."""
    host = api.create_host_config(
        restart_policy=extra.pop("restart", None), port_bindings={8080: ("127.0.0.1", None)}
    )
    name = extra.pop("name", f"{PROJECT}-{service}-{number}")
    c = api.create_container(
        IMAGE,
        cmd,
        name=name,
        labels=labels(service, number, oneoff=extra.pop("oneoff", False)),
        host_config=host,
        ports=[8080],
        networking_config=api.create_networking_config(
            {f"{PROJECT}_default": api.create_endpoint_config(aliases=[service])}
        ),
        environment={"SERVER_PORT": "8080", "DB_PASSWORD": "hunter2"},
        **extra,
    )
    start(api, c["Id"])
    return str(c["Id"])


@pytest.fixture
def project(engine: Dockerd) -> Iterator[Any]:
    with engine.client() as api:
        api.create_network(f"{PROJECT}_default", labels={L.PROJECT: PROJECT})
        web = ["httpd", "-f", "-p", "8080", "-h", "/www"]
        for n in (1, 2):
            up(api, "web", n, web, healthcheck=HEALTH)
        up(api, "worker", 1, ["sleep", "3600"])
        up(api, "web", 3, ["sleep", "3600"], oneoff=True, name=f"{PROJECT}-web-run-1")
        try:
            yield api
        finally:
            for c in api.containers(all=True, filters={"label": f"{L.PROJECT}={PROJECT}"}):
                api.remove_container(c["Id"], force=True)
            api.remove_network(f"{PROJECT}_default")


@pytest.fixture
async def reads(engine: Dockerd) -> AsyncIterator[ComposeReads]:
    adapter = ComposeReads(project=PROJECT, host=engine.host, services=[("web", "web")])
    yield adapter
    await adapter.close()


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_project_made_with_composes_labels_is_found_as_compose_shows_it(
    project: Any, reads: ComposeReads
) -> None:
    async def healthy() -> Any:
        ws = {w.name: w for w in await reads.list_workloads()}
        return ws if ws.get("web") and ws["web"].ready == 2 else None

    workloads = await until(healthy, 20, "both web containers healthy")
    assert set(workloads) == {"web", "worker"}  # the one-off run is not a replica
    web = workloads["web"]
    assert (web.desired, web.replicas, web.updated, web.track) == (2, 2, 2, "stable")
    assert web.images == {"web": IMAGE} and web.namespace == PROJECT
    pods = await reads.list_instances("web")
    assert [p.name for p in pods] == ["shop-web-1", "shop-web-2"]
    assert all(p.is_ready and p.status == "Running" and p.ready == "1/1" for p in pods)
    assert all(p.ip and p.ip.startswith("10.") for p in pods)
    status = await reads.rollout_status("web")
    assert status.state is RolloutState.COMPLETE, status
    assert status.message == 'service "web" successfully rolled out'
    env = await reads.workload_env("web")
    assert {e.name for e in env} >= {"SERVER_PORT", "DB_PASSWORD"}
    assert "hunter2" not in repr(env)  # names only
    current = await reads.current_revision("web")
    assert current is not None and current.images == {"web": IMAGE}
    assert await reads.list_autoscalers() == []


async def test_a_crash_looping_service_is_a_failed_rollout_at_once(
    project: Any, reads: ComposeReads
) -> None:
    crash = ["sh", "-c", "echo starting; sleep 0.2; exit 3"]
    up(project, "crasher", 1, crash, restart={"Name": "always"})

    async def failed() -> Any:
        s = await reads.rollout_status("crasher")
        return s if s.state is RolloutState.FAILED else None

    status = await until(failed, 30, "the crash loop to fail the rollout")
    assert "shop-crasher-1" in status.message and "restarts" in status.message

    async def crashed() -> Any:
        # Between a restart and the next crash the Engine reports exit code 0 again: the
        # code shows while the container is down, which is most of a backed-off loop.
        (pod,) = await reads.list_instances("crasher")
        return pod if pod.restarts >= 2 and pod.last_exit_code == 3 else None

    pod = await until(crashed, 30, "the crash loop's exit code 3")
    assert not pod.is_ready
    events = await reads.events("Pod", "shop-crasher-1")
    dies = [e for e in events if e.reason == "die"]
    assert dies and dies[0].type == "Warning" and "exit code 3" in dies[0].message


async def test_the_watch_follows_the_engines_events(project: Any, reads: ComposeReads) -> None:
    stream = reads.watch_instances("worker")
    try:
        first: WatchEvent[Any] = await asyncio.wait_for(anext(stream), 10)
        assert first.kind == "RESYNC" and [p.name for p in first.items] == ["shop-worker-1"]
        up(project, "worker", 2, ["sleep", "3600"])
        added = await asyncio.wait_for(anext(stream), 10)
        assert added.kind == "ADDED" and added.obj is not None
        assert added.obj.name == "shop-worker-2"
        project.stop("shop-worker-2", timeout=0)
        changed = await asyncio.wait_for(anext(stream), 10)
        while changed.obj is not None and changed.obj.status == "Running":
            changed = await asyncio.wait_for(anext(stream), 10)
        assert changed.kind == "MODIFIED" and changed.obj is not None
        assert changed.obj.status.startswith("Exited")
        project.remove_container("shop-worker-2", force=True)
        gone = await asyncio.wait_for(anext(stream), 10)
        assert gone.kind == "DELETED" and gone.obj is not None and gone.obj.name == "shop-worker-2"
    finally:
        await stream.aclose()


async def test_health_check_probes_do_not_make_the_watch_relist(
    project: Any, reads: ComposeReads
) -> None:
    """Each probe of a HEALTHCHECK is three exec_* events; relisting on them was most of an
    idle console's CPU. Only a change of state relists."""
    await until(lambda: _all_ready(reads), 15, "the web containers to pass their health checks")
    lists = 0

    async def counted() -> list[Any]:
        nonlocal lists
        lists += 1
        return await reads.list_instances("web")

    stream = Watcher(reads.engine, PROJECT, counted, lambda p: p.name).events()
    nxt: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    nxt.set_result(None)
    try:
        first = await asyncio.wait_for(anext(stream), 10)
        assert first.kind == "RESYNC" and lists == 1
        nxt = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.5)  # the stream's connect relists once: events before it count
        settled = lists
        # Wait on the Engine's own word that the probes ran: ten exec_die from each container.
        await asyncio.to_thread(_probe_events, project, 20)
        assert lists == settled <= 2 and not nxt.done()
        project.stop(f"{PROJECT}-web-2", timeout=0)
        changed = await asyncio.wait_for(nxt, 10)
        while changed.obj is not None and changed.obj.status == "Running":
            changed = await asyncio.wait_for(anext(stream), 10)
        assert changed.kind == "MODIFIED" and changed.obj is not None
        assert changed.obj.name == f"{PROJECT}-web-2" and lists > settled
    finally:
        if not nxt.done():
            nxt.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await nxt
        await stream.aclose()


def _probe_events(api: Any, count: int) -> None:
    """Blocks until the Engine has sent ``count`` health-check exec_die events of the web
    containers (each probe of a HEALTHCHECK is one); fails after 20 s."""
    since = time.time()
    stream = api.events(
        decode=True, since=since, until=since + 20,
        filters={"type": ["container"], "event": ["exec_die"],
                 "label": [f"{L.SERVICE}=web"]},
    )  # fmt: skip
    seen = 0
    try:
        for _ in stream:
            seen += 1
            if seen >= count:
                return
    finally:
        stream.close()
    raise AssertionError(f"only {seen} health-check probes in 20 s")


async def _all_ready(reads: ComposeReads) -> bool:
    pods = await reads.list_instances("web")
    return len(pods) == 2 and all(p.is_ready for p in pods)


async def test_the_engine_killed_and_started_again_under_a_watch(
    engine: Dockerd, project: Any, reads: ComposeReads
) -> None:
    stream = reads.watch_workloads()
    try:
        first = await asyncio.wait_for(anext(stream), 10)
        assert first.kind == "RESYNC"
        engine.kill()
        error = await asyncio.wait_for(anext(stream), 15)
        assert error.kind == "ERROR" and "Docker Engine" in error.message
        assert error.last_good is not None
        restart(engine)
        # Once per outage: the next event is the whole list again, not another ERROR.
        again = await asyncio.wait_for(anext(stream), 30)
        assert again.kind == "RESYNC", again
        assert {w.name for w in again.items} >= {"web", "worker"}
    finally:
        await stream.aclose()


async def test_the_adapter_rebuilds_itself_in_another_process(engine: Dockerd) -> None:
    from backends.compose.adapter import ComposeAdapter
    from backends.orchestrator import reconnect

    adapter = ComposeAdapter(project=PROJECT, host=engine.host, read_only=True,
                             services=[("web", "web")])  # fmt: skip
    again = reconnect(adapter.connection())
    try:
        assert isinstance(again, ComposeAdapter) and again.kind == "compose"
        assert again.connection() == adapter.connection()
        assert again.read_only and again.target == f"project {PROJECT} on {engine.host}"
        assert "unix://" in json.dumps(adapter.connection())  # the Engine by address only
    finally:
        await adapter.close()
        await again.close()
