"""KubeAdapter against the real sandbox API, over HTTP, through the real kubernetes client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from backends.errors import (
    BvaError,
    Conflict,
    NotFound,
    ReadOnlyError,
    RolloutRefused,
    SourceUnavailable,
)
from backends.kube.adapter import KubeAdapter
from backends.kube.client import map_error
from backends.kube.watch import WatchConfig
from backends.models import RolloutState, RolloutStatus, WatchEvent, Workload
from tests.support.sandbox_proc import RunningSandbox
from tests.support.waiting import until

T = TypeVar("T")

AUTH = "auth-service"
FAST_WATCH = WatchConfig(server_timeout_s=3, backoff_initial_s=0.05, backoff_max_s=0.5)


def deployments(sandbox: RunningSandbox) -> dict[str, str]:
    """Service -> Deployment. The fixture maps services to their HTTP endpoints; in the
    sandbox (as in the BharathVA manifests) each Deployment is named after its service."""
    return {service: service for service in sandbox.services}


def make_adapter(sandbox: RunningSandbox, **kwargs: Any) -> KubeAdapter:
    return KubeAdapter(
        namespace=sandbox.namespace,
        kubeconfig=str(sandbox.kubeconfig),
        services=list(deployments(sandbox).items()),
        watch_config=FAST_WATCH,
        **kwargs,
    )


@pytest.fixture
async def adapter(sandbox: RunningSandbox) -> AsyncIterator[KubeAdapter]:
    kube = make_adapter(sandbox)
    # The sandbox prints "ready" as soon as it serves; its pods may still be starting.
    for deployment in deployments(sandbox).values():
        await wait_state(kube, deployment, RolloutState.COMPLETE)
    try:
        yield kube
    finally:
        await kube.close()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float = 30.0,
    what: str = "condition",
) -> T:
    """``probe()`` until ``accept`` takes its value, which is returned."""
    seen: list[T] = []

    async def accepted() -> bool:
        seen[:] = [await probe()]
        return accept(seen[0])

    await until(
        accepted,
        within,
        what,
        interval=0.1,
        detail=lambda: f"last value: {seen[0]!r}" if seen else "no value yet",
    )
    return seen[0]


async def wait_state(
    kube: KubeAdapter, deployment: str, state: RolloutState, within: float = 30.0
) -> RolloutStatus:
    return await eventually(
        lambda: kube.rollout_status(deployment),
        lambda s: s.state is state,
        within=within,
        what=f"{deployment} to be {state}",
    )


async def watch_until(
    kube: KubeAdapter, deployment: str, state: RolloutState, within: float = 30.0
) -> RolloutStatus:
    """Follow the Deployment's watch events, checking rollout status on each change."""
    async with asyncio.timeout(within), aclosing(kube.watch_workloads()) as events:
        async for event in events:
            changed = event.items if event.kind == "RESYNC" else (event.obj,)
            if any(w is not None and w.name == deployment for w in changed):
                status = await kube.rollout_status(deployment)
                if status.state is state:
                    return status
    raise AssertionError("watch ended")


async def next_event(events: AsyncIterator[WatchEvent[T]], within: float = 15.0) -> WatchEvent[T]:
    return await asyncio.wait_for(anext(events), within)


class Tap(Generic[T]):
    """Consumes a watch in its own task, so a test can wait for events with a timeout
    without cancelling (and thereby closing) the watch generator."""

    def __init__(self, events: AsyncGenerator[WatchEvent[T], None]) -> None:
        self._events = events
        self._queue: asyncio.Queue[WatchEvent[T]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for event in self._events:
            self._queue.put_nowait(event)

    async def __aenter__(self) -> Tap[T]:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._events.aclose()

    async def next(self, within: float = 15.0) -> WatchEvent[T]:
        return await asyncio.wait_for(self._queue.get(), within)


async def container_of(kube: KubeAdapter, deployment: str) -> str:
    return next(iter((await kube.get_workload(deployment)).images))


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bva-watch-")]


# -- reads ----------------------------------------------------------------------------------


async def test_lists_the_platform_workloads_and_pods(
    sandbox: RunningSandbox, adapter: KubeAdapter
) -> None:
    workloads = await adapter.list_workloads()
    assert [w.name for w in workloads] == list(deployments(sandbox).values())
    assert [w.service for w in workloads] == list(sandbox.services)
    for w in workloads:
        assert w.track == "stable"
        assert w.image_tag() == "1.0.0"
        assert w.image == f"bharathva/{w.service}:1.0.0"
        assert w.revision == 1
        assert w.desired == w.available == w.ready == w.updated == w.current >= 1
        assert w.namespace == sandbox.namespace
        assert w.created is not None and w.created <= time.time() + 1
        assert w.condition("Available") is not None

    pods = await adapter.list_instances()
    assert {p.service for p in pods} == set(sandbox.services)
    assert len(pods) == sum(w.desired for w in workloads)
    for p in pods:
        assert (p.status, p.ready, p.phase, p.track) == ("Running", "1/1", "Running", "stable")
        assert p.owner_replicaset and p.pod_template_hash
        assert p.owner_replicaset.endswith(p.pod_template_hash)
        assert p.created is not None and p.node

    auth = await adapter.list_instances(AUTH)
    assert auth and {p.service for p in auth} == {AUTH}
    assert len(auth) == (await adapter.get_workload(deployments(sandbox)[AUTH])).desired


async def test_get_workload_of_unknown_deployment_is_not_found(adapter: KubeAdapter) -> None:
    with pytest.raises(NotFound) as info:
        await adapter.get_workload("no-such-service")
    assert str(info.value) == 'deployments.apps "no-such-service" not found'


async def test_initial_history_and_status(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    deployment = deployments(sandbox)[AUTH]
    status = await adapter.rollout_status(deployment)
    assert status.done and status.message == f'deployment "{deployment}" successfully rolled out'
    history = await adapter.history(deployment)
    assert [(r.revision, r.is_current) for r in history] == [(1, True)]
    assert history[0].images == (await adapter.get_workload(deployment)).images
    assert "template=" not in repr(history[0]) and history[0].template["spec"]["containers"]


# -- set image, history, undo ------------------------------------------------------------


async def test_set_image_history_and_undo(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    deployment = deployments(sandbox)[AUTH]
    container = await container_of(adapter, deployment)
    old_image = "bharathva/auth-service:1.0.0"
    new_image = "bharathva/auth-service:1.1.0"

    updated = await adapter.set_image(deployment, container, new_image, "release 1.1.0")
    assert updated.images[container] == new_image
    assert updated.change_cause == "release 1.1.0"
    status = await watch_until(adapter, deployment, RolloutState.COMPLETE)
    assert status.done and status.updated == status.desired == status.available

    history = await adapter.history(deployment)
    assert [(r.revision, r.images[container], r.is_current) for r in history] == [
        (1, old_image, False),
        (2, new_image, True),
    ]
    assert history[1].change_cause == "release 1.1.0"
    assert history[0].template_hash != history[1].template_hash
    pods = await adapter.list_instances(AUTH)
    # Old pods may still be terminating (graceful shutdown) once the rollout is complete.
    assert {p.pod_template_hash for p in pods if not p.deleting} == {history[1].template_hash}
    assert all(p.status == "Terminating" for p in pods if p.deleting)

    # Undo to the previous revision: revision 1 comes back as revision 3.
    assert await adapter.undo(deployment) == f"deployment.apps/{deployment} rolled back"
    await watch_until(adapter, deployment, RolloutState.COMPLETE)
    workload = await adapter.get_workload(deployment)
    assert workload.images[container] == old_image
    assert workload.revision == 3
    history = await adapter.history(deployment)
    assert [(r.revision, r.images[container], r.is_current) for r in history] == [
        (2, new_image, False),
        (3, old_image, True),
    ]

    # Undo to a named revision.
    message = await adapter.undo(deployment, to_revision=2)
    assert message == f"deployment.apps/{deployment} rolled back"
    await watch_until(adapter, deployment, RolloutState.COMPLETE)
    workload = await adapter.get_workload(deployment)
    assert (workload.images[container], workload.revision) == (new_image, 4)
    # The restored ReplicaSet's change-cause comes back with it, as with kubectl.
    assert workload.change_cause == "release 1.1.0"

    # Undo to the revision that is already running: nothing to do.
    skipped = await adapter.undo(deployment, to_revision=4)
    assert skipped == (
        f"deployment.apps/{deployment} skipped rollback "
        "(current template already matches revision 4)"
    )
    assert (await adapter.get_workload(deployment)).revision == 4


async def test_undo_refusals(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    deployment = deployments(sandbox)[AUTH]
    with pytest.raises(RolloutRefused) as info:
        await adapter.undo(deployment)
    assert str(info.value) == f'no rollout history found for deployment "{deployment}"'
    with pytest.raises(RolloutRefused) as info:
        await adapter.undo(deployment, to_revision=9)
    assert str(info.value) == "unable to find specified revision 9 in history"

    container = await container_of(adapter, deployment)
    await adapter.set_image(deployment, container, "bharathva/auth-service:1.1.0")
    await wait_state(adapter, deployment, RolloutState.COMPLETE)
    await adapter.pause(deployment)
    before = sandbox.stats()["requests"]
    with pytest.raises(RolloutRefused) as info:
        await adapter.undo(deployment)
    assert str(info.value) == (
        "you cannot rollback a paused deployment; resume it first with "
        f"'kubectl rollout resume deployment/{deployment}' and try again"
    )
    # Only the two reads (Deployment, ReplicaSets); no patch was sent.
    assert sandbox.stats()["requests"] - before == 2
    await adapter.resume(deployment)
    assert await adapter.undo(deployment) == f"deployment.apps/{deployment} rolled back"
    await wait_state(adapter, deployment, RolloutState.COMPLETE)
    assert (await adapter.get_workload(deployment)).image_tag() == "1.0.0"


# -- scale, pause / resume, failure --------------------------------------------------------


async def test_scale(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    deployment = deployments(sandbox)[AUTH]
    await adapter.scale(deployment, 3)
    workload = await eventually(
        lambda: adapter.get_workload(deployment),
        lambda w: w.desired == w.available == w.current == 3,
        what="3 available replicas",
    )
    assert workload.revision == 1, "scaling is not a new revision"
    await eventually(
        lambda: adapter.list_instances(AUTH),
        lambda pods: len(pods) == 3 and all(p.status == "Running" for p in pods),
        what="3 running pods",
    )
    events = await adapter.events("Deployment", deployment)
    assert any(e.reason == "ScalingReplicaSet" for e in events), events
    assert all(e.object_name == deployment and e.object_kind == "Deployment" for e in events)
    assert [e.last_timestamp for e in events] == sorted(e.last_timestamp or 0 for e in events)
    assert len(await adapter.events("Deployment", deployment, limit=1)) == 1

    await adapter.scale(deployment, 1)
    await eventually(
        lambda: adapter.list_instances(AUTH),
        lambda pods: len(pods) == 1,
        what="scale down to one pod",
    )
    with pytest.raises(BvaError):
        await adapter.scale(deployment, -1)


async def test_pause_and_resume(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    deployment = deployments(sandbox)[AUTH]
    container = await container_of(adapter, deployment)
    await adapter.pause(deployment)
    assert (await adapter.get_workload(deployment)).paused
    assert (await adapter.rollout_status(deployment)).state is RolloutState.PAUSED

    await adapter.set_image(deployment, container, "bharathva/auth-service:1.2.0")
    status = await eventually(
        lambda: adapter.rollout_status(deployment),
        lambda s: s.observed,
        what="the paused spec change to be observed",
    )
    assert status.state is RolloutState.PAUSED and not status.done
    # Observed: the controller has handled the change, and made no new revision for it.
    assert [r.revision for r in await adapter.history(deployment)] == [1], "paused: no rollout"
    assert {p.pod_template_hash for p in await adapter.list_instances(AUTH)} == {
        (await adapter.history(deployment))[0].template_hash
    }

    await adapter.resume(deployment)
    assert not (await adapter.get_workload(deployment)).paused
    await watch_until(adapter, deployment, RolloutState.COMPLETE)
    assert (await adapter.get_workload(deployment)).image_tag() == "1.2.0"


async def test_crash_image_exceeds_progress_deadline(
    sandbox: RunningSandbox, adapter: KubeAdapter, kubectl: str
) -> None:
    deployment = deployments(sandbox)[AUTH]
    await asyncio.to_thread(
        subprocess.run,
        [
            kubectl,
            "-n",
            sandbox.namespace,
            "patch",
            "deployment",
            deployment,
            "-p",
            json.dumps({"spec": {"progressDeadlineSeconds": 5}}),
        ],
        env=sandbox.env,
        check=True,
        capture_output=True,
    )
    assert (await adapter.get_workload(deployment)).progress_deadline_s == 5
    container = await container_of(adapter, deployment)
    await adapter.set_image(deployment, container, "bharathva/auth-service:1.1.0-crash")
    status = await watch_until(adapter, deployment, RolloutState.FAILED, within=60)
    assert status.message == f'deployment "{deployment}" exceeded its progress deadline'
    assert not status.done
    progressing = (await adapter.get_workload(deployment)).condition("Progressing")
    assert progressing is not None
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    pods = await eventually(
        lambda: adapter.list_instances(AUTH),
        lambda pods: any(p.status == "CrashLoopBackOff" and p.restarts > 0 for p in pods),
        what="a crash-looping pod",
    )
    crashing = [p for p in pods if p.images.get(container, "").endswith("-crash")]
    assert crashing and all(p.ready_containers == 0 and not p.is_ready for p in crashing)
    assert any(p.last_termination_reason for p in crashing)
    # The old pods keep serving: a failed rollout is not an outage.
    assert any(p.status == "Running" and p.ready == "1/1" for p in pods)
    # And undo gets out of it.
    assert await adapter.undo(deployment) == f"deployment.apps/{deployment} rolled back"
    await wait_state(adapter, deployment, RolloutState.COMPLETE, within=60)


# -- watches ----------------------------------------------------------------------------


async def test_watch_workloads_starts_with_resync_then_changes(
    sandbox: RunningSandbox, adapter: KubeAdapter
) -> None:
    deployment = deployments(sandbox)[AUTH]
    async with aclosing(adapter.watch_workloads()) as events:
        first = await next_event(events)
        assert first.kind == "RESYNC"
        assert sorted(w.name for w in first.items) == sorted(deployments(sandbox).values())
        await adapter.scale(deployment, 2)
        seen: list[Workload] = []
        while not any(w.desired == 2 and w.available == 2 for w in seen):
            event = await next_event(events)
            assert event.kind == "MODIFIED", event
            assert event.obj is not None
            if event.obj.name == deployment:
                seen.append(event.obj)
    assert not watch_threads()


async def test_watch_pods_of_one_service(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    deployment = deployments(sandbox)[AUTH]
    async with aclosing(adapter.watch_instances(AUTH)) as events:
        first = await next_event(events)
        assert first.kind == "RESYNC" and first.items
        assert {p.service for p in first.items} == {AUTH}
        names = {p.name for p in first.items}
        await adapter.scale(deployment, len(names) + 1)
        while True:
            event = await next_event(events)
            assert event.obj is not None and event.obj.service == AUTH
            if event.kind == "ADDED":
                assert event.obj.name not in names
                break


async def test_watch_survives_the_api_going_away(
    sandbox: RunningSandbox, adapter: KubeAdapter
) -> None:
    deployment = deployments(sandbox)[AUTH]
    async with Tap(adapter.watch_workloads()) as events:
        first = await events.next()
        assert first.kind == "RESYNC"
        started = time.time()

        sandbox.stop_api()
        error = await events.next()
        assert error.kind == "ERROR", error
        assert sandbox.api_url in error.message and "\n" not in error.message
        assert error.last_good is not None and error.last_good >= started - 1
        # Backoff keeps retrying, but the outage is reported once.
        with pytest.raises(TimeoutError):
            await events.next(within=1.5)

        sandbox.start_api()
        back = await events.next()
        assert back.kind == "RESYNC", back
        assert sorted(w.name for w in back.items) == sorted(deployments(sandbox).values())

        await adapter.scale(deployment, 2)
        event = await events.next()
        assert event.kind == "MODIFIED" and event.obj is not None
        assert event.obj.name == deployment
    assert not watch_threads()


async def test_watch_relists_after_410_gone(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    listed = await adapter.list_workloads()
    # A resourceVersion the server no longer has in its history: it answers 410 Gone.
    async with aclosing(adapter.watch_workloads(resource_version="1")) as events:
        event = await next_event(events)
        assert event.kind == "RESYNC", event
        assert [w.name for w in sorted(event.items, key=lambda w: w.name)] == sorted(
            w.name for w in listed
        )


async def test_closing_a_watch_stops_its_thread(adapter: KubeAdapter) -> None:
    events = adapter.watch_instances()
    assert (await next_event(events)).kind == "RESYNC"
    assert len(watch_threads()) == 1
    began = time.monotonic()
    await events.aclose()
    assert time.monotonic() - began < 1.0
    assert not watch_threads()

    # Cancelling the task that iterates stops it too.
    kinds: list[str] = []

    async def consume() -> None:
        async for event in adapter.watch_workloads():
            kinds.append(event.kind)

    task = asyncio.create_task(consume())
    # Its RESYNC taken, the consumer is parked on the next event: cancelled there.
    await until(lambda: kinds and len(watch_threads()) == 1, 30, "the watch to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not watch_threads(), 2, "the cancelled watch's thread to stop")


async def test_adapter_close_ends_its_watches(sandbox: RunningSandbox) -> None:
    kube = make_adapter(sandbox)
    events = kube.watch_workloads()
    assert (await next_event(events)).kind == "RESYNC"
    await kube.close()
    # The consumer's loop ends rather than waiting forever on a closed adapter.
    with pytest.raises(StopAsyncIteration):
        await next_event(events, within=2)
    assert not watch_threads()


# -- read-only and errors -----------------------------------------------------------------


async def test_read_only_adapter_sends_nothing(sandbox: RunningSandbox) -> None:
    kube = make_adapter(sandbox, read_only=True)
    deployment = deployments(sandbox)[AUTH]
    before = sandbox.stats()["requests"]
    mutations: list[Callable[[], Awaitable[object]]] = [
        lambda: kube.set_image(deployment, "auth-service", "bharathva/auth-service:9.9.9"),
        lambda: kube.pause(deployment),
        lambda: kube.resume(deployment),
        lambda: kube.scale(deployment, 5),
        lambda: kube.undo(deployment),
        lambda: kube.undo(deployment, to_revision=1),
    ]
    for mutate in mutations:
        with pytest.raises(ReadOnlyError) as info:
            await mutate()
        assert "read-only" in str(info.value) and deployment in str(info.value)
    assert sandbox.stats()["requests"] == before
    # Reads still work.
    assert (await kube.get_workload(deployment)).image_tag() == "1.0.0"
    assert sandbox.stats()["requests"] == before + 1
    await kube.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_api_is_one_line_source_unavailable(
    sandbox: RunningSandbox, adapter: KubeAdapter
) -> None:
    sandbox.stop_api()
    with pytest.raises(SourceUnavailable) as info:
        await adapter.list_workloads()
    message = str(info.value)
    # A fresh connection is refused; a pooled keep-alive one that the outage cut is "lost".
    assert sandbox.api_url in message
    assert "connection refused" in message or "lost the connection" in message
    assert "\n" not in message and "Traceback" not in message
    sandbox.start_api()
    assert len(await adapter.list_workloads()) == len(sandbox.services)


async def test_bad_kubeconfig_is_a_bva_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    kube = KubeAdapter(namespace="bharathva", kubeconfig=str(missing))
    with pytest.raises(BvaError) as info:
        await kube.list_workloads()
    assert str(info.value).startswith(f"kubeconfig {missing}:")
    assert "\n" not in str(info.value)


async def test_timeout_is_source_unavailable(tmp_path: Path) -> None:
    # A server that accepts and never answers.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    kube = KubeAdapter(namespace="bharathva", kubeconfig=str(config), request_timeout=0.5)
    try:
        began = time.monotonic()
        with pytest.raises(SourceUnavailable) as info:
            await kube.get_workload("x")
        assert time.monotonic() - began < 3
        assert str(info.value) == f"the Kubernetes API at http://127.0.0.1:{port} timed out"
    finally:
        server.close()
        await kube.close()


def test_api_exceptions_map_to_one_line_errors() -> None:
    from kubernetes.client.exceptions import ApiException

    def api_error(status: int, message: str) -> ApiException:
        exc = ApiException(status=status, reason="Reason")
        exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
        return exc

    server = "http://127.0.0.1:1"
    conflict = map_error(api_error(409, "the object has been\nmodified"), server)
    assert isinstance(conflict, Conflict) and str(conflict) == "the object has been modified"
    assert isinstance(map_error(api_error(404, "gone"), server), NotFound)
    forbidden = map_error(api_error(403, "no"), server)
    assert type(forbidden) is BvaError and "HTTP 403" in str(forbidden)
    unavailable = map_error(api_error(503, "etcd down"), server)
    assert str(unavailable) == f"Kubernetes API at {server} answered HTTP 503: etcd down"
    plain = ApiException(status=500, reason="Internal Server Error")
    plain.body = "<html>\n<h1>oops</h1>"
    assert "\n" not in str(map_error(plain, server))
