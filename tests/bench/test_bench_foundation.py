"""The foundation benchmark: how fast the sandbox starts, rolls, watches and lists.

Printed figures, never asserted thresholds: a test here fails only when the thing it times
never happens (a rollout that never completes, a watch that never delivers). Run with

    cd /work/main && python -m pytest tests/bench/test_bench_foundation.py -m bench -s \
        -p no:xdist -o addopts=""

and read the table printed at the end. Sections run in file order and share two sandboxes
(the built-in 5-service platform at speed 1, and a generated 200 x 10 platform, what
`bva sandbox --scale 200x10` runs); the whole module takes about 2.5 minutes on a 2-core
machine.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.bench.helpers import (
    MERGE,
    STRATEGIC_MERGE,
    Table,
    default_platform,
    idle_cpu_pct,
    kube_client,
    median,
    ms,
    percentile,
    pod_is_ready,
    raw,
    raw_json,
    rss_kib,
    runs,
    scale_platform,
    secs,
)
from tests.support.sandbox_proc import RunningSandbox, start_sandbox

pytestmark = pytest.mark.bench

START_RUNS = 5
ROLLOUT_RUNS = 3
ROLLOUT_SERVICE = "auth-service"
WATCH_PATCHES = 200
WATCH_RATE_HZ = 20.0
SCALE_SERVICES = 200
SCALE_REPLICAS = 10
SCALE_PODS = SCALE_SERVICES * SCALE_REPLICAS
LIST_CALLS = 20
TABLE_LIST_CALLS = 5
IDLE_WINDOW_S = 10.0
LONG_IDLE_WINDOW_S = 60.0  # the scale sandbox only: a minute is cheap next to its start
SETTLE_S = 3.0
ADAPTER_CALLS = 10
PING_CALLS = 100
PING_GAP_S = 0.03

TABLE = Table()


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print("\n\n" + TABLE.render("bva foundation benchmark (sandbox at speed 1)"), flush=True)


@pytest.fixture(scope="module")
def small_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """The built-in 5-service platform at default speed, shared by the rollout and watch runs."""
    sb = start_sandbox(
        tmp_path_factory.mktemp("small"), speed=1.0, seed=7, config=default_platform()
    )
    try:
        yield sb
    finally:
        sb.stop()


@dataclass
class ScaleRun:
    sandbox: RunningSandbox
    start_s: float
    all_ready_s: float  # from launch
    ready_polls: int


@pytest.fixture(scope="module")
def scale_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleRun]:
    """200 services x 10 replicas; started once, timed to its ready line and to all pods Ready."""
    tmp = tmp_path_factory.mktemp("scale")
    config = scale_platform(tmp / "scale.toml", SCALE_SERVICES, SCALE_REPLICAS)
    t0 = time.perf_counter()
    sb = start_sandbox(tmp, speed=1.0, seed=7, config=config, timeout=180.0)
    start_s = time.perf_counter() - t0
    try:
        kube = kube_client(sb.kubeconfig)
        try:
            all_ready_s, polls = _wait_all_pods_ready(kube, sb.namespace, t0, timeout=180.0)
        finally:
            kube.close()
        yield ScaleRun(sb, start_s, all_ready_s, polls)
    finally:
        sb.stop()


def _wait_all_pods_ready(kube: Any, ns: str, t0: float, *, timeout: float) -> tuple[float, int]:
    """Poll the Deployments (cheap) until their readyReplicas add up, then confirm on the pods."""
    deadline = time.monotonic() + timeout
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        deps = raw_json(kube.apps.list_namespaced_deployment(ns, _preload_content=False))
        ready = sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in deps["items"])
        if ready >= SCALE_PODS:
            seen = time.perf_counter() - t0
            pods = raw_json(kube.core.list_namespaced_pod(ns, _preload_content=False))["items"]
            if sum(1 for p in pods if pod_is_ready(p)) >= SCALE_PODS:
                return seen, polls
        time.sleep(0.2)
    raise AssertionError(f"{SCALE_PODS} pods were not all Ready within {timeout:.0f}s")


# -- 1. start ---------------------------------------------------------------------------


def test_start_to_ready(tmp_path: Path) -> None:
    starts: list[float] = []
    stops: list[float] = []
    for i in range(START_RUNS):
        t0 = time.perf_counter()
        sb = start_sandbox(tmp_path / f"run{i}", speed=1.0, seed=7, config=default_platform())
        starts.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        code = sb.stop()
        stops.append(time.perf_counter() - t1)
        assert code == 0, f"sandbox exited {code} on SIGTERM:\n" + "\n".join(sb.output)
    TABLE.add(
        "1. start (5 services)",
        f"launch -> 'sandbox ready', median of {START_RUNS}",
        secs(median(starts)),
        runs(starts),
    )
    TABLE.add("1. start (5 services)", "SIGTERM -> exit, median", secs(median(stops)), runs(stops))


def test_idle_small(small_sandbox: RunningSandbox) -> None:
    """For comparison with the scale run: the built-in platform's footprint when idle."""
    time.sleep(SETTLE_S)
    _idle_rows("1. start (5 services)", small_sandbox)


# -- 2. rolling update ------------------------------------------------------------------


def _rollout_complete(d: dict[str, Any]) -> bool:
    spec, status, meta = d["spec"], d.get("status") or {}, d["metadata"]
    want = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(status.get("updatedReplicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want  # old ReplicaSets scaled to zero
    )


def test_rolling_update(small_sandbox: RunningSandbox) -> None:
    sb = small_sandbox
    kube = kube_client(sb.kubeconfig)
    try:
        d = raw_json(
            kube.apps.read_namespaced_deployment(
                ROLLOUT_SERVICE, sb.namespace, _preload_content=False
            )
        )
        strategy = d["spec"]["strategy"]["rollingUpdate"]
        replicas = d["spec"]["replicas"]
        container = d["spec"]["template"]["spec"]["containers"][0]
        repo = container["image"].rsplit(":", 1)[0]
        times: list[float] = []
        polls: list[int] = []
        for i in range(1, ROLLOUT_RUNS + 1):
            body = {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": container["name"], "image": f"{repo}:1.0.{i}"}]
                        }
                    }
                }
            }
            t0 = time.perf_counter()
            raw(
                kube.apps.patch_namespaced_deployment(
                    ROLLOUT_SERVICE,
                    sb.namespace,
                    body,
                    _content_type=STRATEGIC_MERGE,
                    _preload_content=False,
                )
            )
            n = 0
            while True:
                n += 1
                d = raw_json(
                    kube.apps.read_namespaced_deployment(
                        ROLLOUT_SERVICE, sb.namespace, _preload_content=False
                    )
                )
                if _rollout_complete(d):
                    break
                elapsed = time.perf_counter() - t0
                assert elapsed < 90, f"rollout {i} not complete after 90s: {d.get('status')}"
                time.sleep(0.02)
            times.append(time.perf_counter() - t0)
            polls.append(n)
    finally:
        kube.close()
    TABLE.add(
        "2. rolling update",
        f"{ROLLOUT_SERVICE} {replicas} replicas, median of {ROLLOUT_RUNS}",
        secs(median(times)),
        f"{runs(times)}; maxSurge {strategy.get('maxSurge')}, "
        f"maxUnavailable {strategy.get('maxUnavailable')}; polled every 20 ms",
    )


# -- 3. watch latency -------------------------------------------------------------------


def test_watch_latency(small_sandbox: RunningSandbox) -> None:
    from kubernetes.watch import watch as kube_watch

    iter_resp_lines: Any = kube_watch.iter_resp_lines  # unannotated
    sb = small_sandbox
    watcher = kube_client(sb.kubeconfig)
    patcher = kube_client(sb.kubeconfig)
    sent: dict[str, float] = {}
    patch_rtt: list[float] = []
    received: dict[str, float] = {}
    other_events = 0
    errors: list[BaseException] = []
    try:
        listing = raw_json(
            watcher.apps.list_namespaced_deployment(sb.namespace, _preload_content=False)
        )
        rv = listing["metadata"]["resourceVersion"]
        # Returns once the response headers arrive: the watch is registered on the server.
        stream = watcher.apps.list_namespaced_deployment(
            sb.namespace,
            watch=True,
            resource_version=rv,
            timeout_seconds=120,
            _preload_content=False,
            _request_timeout=(5, 60),
        )

        def read() -> None:
            nonlocal other_events
            try:
                for line in iter_resp_lines(stream):
                    now = time.perf_counter()
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    meta = obj.get("metadata") or {}
                    value = (meta.get("annotations") or {}).get("bench")
                    if (
                        event.get("type") == "MODIFIED"
                        and meta.get("name") == ROLLOUT_SERVICE
                        and value is not None
                        and value not in received
                    ):
                        received[value] = now
                        if len(received) >= WATCH_PATCHES:
                            return
                    else:
                        other_events += 1
            except BaseException as exc:  # reported below; the thread must not die silently
                if len(received) < WATCH_PATCHES:
                    errors.append(exc)

        def send() -> None:
            try:
                start = time.perf_counter()
                for n in range(WATCH_PATCHES):
                    delay = start + n / WATCH_RATE_HZ - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    body = {"metadata": {"annotations": {"bench": str(n)}}}
                    t = time.perf_counter()
                    sent[str(n)] = t
                    raw(
                        patcher.apps.patch_namespaced_deployment(
                            ROLLOUT_SERVICE,
                            sb.namespace,
                            body,
                            _content_type=MERGE,
                            _preload_content=False,
                        )
                    )
                    patch_rtt.append(time.perf_counter() - t)
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read, name="bench-watch", daemon=True)
        sender = threading.Thread(target=send, name="bench-patch", daemon=True)
        t_begin = time.perf_counter()
        reader.start()
        sender.start()
        sender.join(60)
        send_s = time.perf_counter() - t_begin
        reader.join(10)
        stream.close()
        stream.release_conn()
    finally:
        watcher.close()
        patcher.close()
    assert not errors, f"watch benchmark failed: {errors[0]!r}"
    lat = [received[k] - sent[k] for k in sent if k in received]
    missing = len(sent) - len(lat)
    assert lat, "no MODIFIED event carrying the bench annotation arrived"
    section = "3. watch latency"
    what = f"{len(sent)} merge patches at {len(sent) / send_s:.1f}/s"
    TABLE.add(section, "patch sent -> MODIFIED received, p50", ms(percentile(lat, 50)), what)
    TABLE.add(section, "  p99", ms(percentile(lat, 99)))
    TABLE.add(
        section,
        "  max",
        ms(max(lat)),
        f"{missing} missing; {other_events} other events on the stream",
    )
    TABLE.add(
        section,
        "patch request round trip p50 / p99",
        f"{ms(percentile(patch_rtt, 50))} / {ms(percentile(patch_rtt, 99))}",
    )
    assert missing == 0, f"{missing} of {len(sent)} patches never showed up on the watch"


# -- 4. scale ---------------------------------------------------------------------------


def _stats(sb: RunningSandbox, window_s: float) -> dict[str, Any]:
    url = f"{sb.api_url}/sandbox/v1/stats?window={window_s:g}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def _tick_rows(section: str, stats: dict[str, Any], window_s: float) -> None:
    """The sandbox's own timing of its periodic jobs over the idle window: a loop turn (the
    controllers' pass, plus traffic and logs when their 250 ms step is due)."""
    ticks = stats.get("ticks") or {}

    def figures(job: str) -> str:
        w = (ticks.get(job) or {}).get("window") or {}
        if not w.get("count"):
            return "n/a"
        return f"{w['p50_ms']:.2f} / {w['p99_ms']:.2f} / {w['max_ms']:.2f} ms"

    turn = ticks.get("tick") or {}
    TABLE.add(
        section,
        f"loop turn p50 / p99 / max (idle {window_s:.0f} s)",
        figures("tick"),
        f"{(turn.get('window') or {}).get('count', 0)} turns; since start "
        f"{turn.get('count', 0)} turns, max {turn.get('max_ms', math.nan):.0f} ms",
    )
    for job in ("controllers", "traffic", "logs"):
        TABLE.add(section, f"  {job} p50 / p99 / max", figures(job))


def _idle_rows(section: str, sb: RunningSandbox, *, long_window_s: float = 0.0) -> None:
    """RSS, CPU over an untouched window, the resourceVersion churn in it, the sandbox's own
    tick timings in it, and how long the API takes to answer a trivial GET while the
    simulation ticks (event-loop stalls)."""
    rss, hwm = rss_kib(sb.proc.pid)
    TABLE.add(
        section, "RSS after settle", f"{rss / 1024:.0f} MiB", f"peak (VmHWM) {hwm / 1024:.0f} MiB"
    )
    rv0 = int(sb.stats()["resourceVersion"])
    cpu = idle_cpu_pct(sb.proc.pid, IDLE_WINDOW_S)
    stats = _stats(sb, IDLE_WINDOW_S)
    rv1 = int(stats["resourceVersion"])
    TABLE.add(
        section,
        f"CPU while idle ({IDLE_WINDOW_S:.0f} s, no requests)",
        f"{cpu:.1f} % of a core",
        f"resourceVersion +{rv1 - rv0} during the window",
    )
    _tick_rows(section, stats, IDLE_WINDOW_S)
    if long_window_s:
        cpu = idle_cpu_pct(sb.proc.pid, long_window_s)
        stats = _stats(sb, long_window_s)
        turn = ((stats.get("ticks") or {}).get("tick") or {}).get("window") or {}
        TABLE.add(
            section,
            f"CPU while idle ({long_window_s:.0f} s, no requests)",
            f"{cpu:.1f} % of a core",
            f"loop turn p99 / max {turn.get('p99_ms', math.nan):.2f} / "
            f"{turn.get('max_ms', math.nan):.2f} ms over {turn.get('count', 0)} turns",
        )
    pings: list[float] = []
    for _ in range(PING_CALLS):
        t = time.perf_counter()
        with urllib.request.urlopen(f"{sb.api_url}/version", timeout=10) as resp:
            resp.read()
        pings.append(time.perf_counter() - t)
        time.sleep(PING_GAP_S)
    TABLE.add(
        section,
        f"GET /version p50 / p99 / max of {PING_CALLS}",
        f"{ms(percentile(pings, 50))} / {ms(percentile(pings, 99))} / {ms(max(pings))}",
        f"one every {PING_GAP_S * 1000:.0f} ms: shows event-loop stalls",
    )


def _time_calls(fn: Any, n: int) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(n):
        t = time.perf_counter()
        size = len(fn())
        times.append(time.perf_counter() - t)
    return times, size


def test_scale(scale_sandbox: ScaleRun) -> None:
    run = scale_sandbox
    sb = run.sandbox
    section = f"4. scale ({SCALE_SERVICES} x {SCALE_REPLICAS})"
    TABLE.add(section, "launch -> 'sandbox ready'", secs(run.start_s))
    TABLE.add(
        section,
        f"launch -> all {SCALE_PODS} pods Ready",
        secs(run.all_ready_s),
        f"{run.all_ready_s - run.start_s:.2f} s after the ready line; {run.ready_polls} poll(s)",
    )
    time.sleep(SETTLE_S)
    _idle_rows(section, sb, long_window_s=LONG_IDLE_WINDOW_S)

    kube = kube_client(sb.kubeconfig)
    ns = sb.namespace
    one = f"svc-{SCALE_SERVICES // 2:03d}"
    table_accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    cases: list[tuple[str, Any, int]] = [
        (
            "list all pods (JSON)",
            lambda: raw(kube.core.list_namespaced_pod(ns, _preload_content=False)),
            LIST_CALLS,
        ),
        (
            "list deployments",
            lambda: raw(kube.apps.list_namespaced_deployment(ns, _preload_content=False)),
            LIST_CALLS,
        ),
        (
            f"list pods labelSelector app={one}",
            lambda: raw(
                kube.core.list_namespaced_pod(
                    ns, label_selector=f"app={one}", _preload_content=False
                )
            ),
            LIST_CALLS,
        ),
        (
            "list all pods as Table (kubectl get pods)",
            lambda: raw(
                kube.core.list_namespaced_pod(ns, _headers=table_accept, _preload_content=False)
            ),
            TABLE_LIST_CALLS,
        ),
    ]
    try:
        for name, fn, n in cases:
            times, size = _time_calls(fn, n)
            TABLE.add(
                section,
                f"{name}, p50 / p99 of {n}",
                f"{ms(percentile(times, 50))} / {ms(percentile(times, 99))}",
                f"{size / 1024:.0f} KiB per response",
            )
        stats = sb.stats()
    finally:
        kube.close()
    TABLE.add(
        section,
        "sandbox stats after the run",
        f"{stats.get('pods')} pods",
        f"requests {stats.get('requests')}, mutations {stats.get('mutations')}, "
        f"resourceVersion {stats.get('resourceVersion')}",
    )


# -- 5. the adapter at scale ------------------------------------------------------------


def test_kube_adapter_at_scale(scale_sandbox: ScaleRun) -> None:
    section = f"5. KubeAdapter ({SCALE_SERVICES} x {SCALE_REPLICAS})"
    try:
        from backends.kube.adapter import KubeAdapter
    except ImportError as exc:
        TABLE.add(
            section, "list_workloads() p50", "n/a", f"backends.kube.adapter not importable: {exc}"
        )
        TABLE.add(section, "list_pods() p50", "n/a")
        return
    sb = scale_sandbox.sandbox

    async def measure() -> dict[str, tuple[list[float], int, float]]:
        try:
            adapter = KubeAdapter(namespace=sb.namespace, kubeconfig=str(sb.kubeconfig))
        except TypeError as exc:
            raise _NotYet(f"KubeAdapter signature differs: {exc}") from exc
        out: dict[str, tuple[list[float], int, float]] = {}
        try:
            for name in ("list_workloads", "list_pods"):
                call = getattr(adapter, name, None)
                if call is None:
                    raise _NotYet(f"KubeAdapter has no {name}()")
                t = time.perf_counter()
                items = await call()  # first call: loads the client, not counted
                first = time.perf_counter() - t
                times = []
                for _ in range(ADAPTER_CALLS):
                    t = time.perf_counter()
                    items = await call()
                    times.append(time.perf_counter() - t)
                out[name] = (times, len(items), first)
        finally:
            close = getattr(adapter, "close", None)
            if close is not None:
                await close()
        return out

    try:
        results = asyncio.run(measure())
    except _NotYet as exc:
        TABLE.add(section, "list_workloads() p50", "n/a", str(exc))
        TABLE.add(section, "list_pods() p50", "n/a")
        return
    for name, (times, count, first) in results.items():
        TABLE.add(
            section,
            f"{name}() p50 of {ADAPTER_CALLS}",
            ms(percentile(times, 50)),
            f"{count} items; max {ms(max(times))}; first call {ms(first)}",
        )


class _NotYet(Exception):
    pass
