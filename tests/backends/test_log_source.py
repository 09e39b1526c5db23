"""The merged log tail against a real sandbox: order across pods, pods joining and leaving
during a rollout, a crash loop's previous logs, stack traces, filters, the stream limit, an
API outage, and a prompt close."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.logs.models import LogFilter, LogLine
from backends.logs.source import LogSource
from backends.platform import Platform, open_platform
from tests.support.log_follow import follow
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state, start_sandbox
from tests.support.waiting import until

CFG = load_platform(builtin_platform_path())
SERVICES = [s.name for s in CFG.services]


def platform_on(sandbox: RunningSandbox) -> Platform:
    state = read_sandbox_state(sandbox.runtime_dir)
    return open_platform(CFG, "sandbox", sandbox=state, read_only=True)


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox for the tests that only read (each mutating test starts its own)."""
    running = start_sandbox(tmp_path_factory.mktemp("logs-sandbox"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def shared(shared_sandbox: RunningSandbox) -> AsyncIterator[Platform]:
    p = platform_on(shared_sandbox)
    try:
        yield p
    finally:
        await p.aclose()


@pytest.fixture
async def fresh(sandbox: RunningSandbox) -> AsyncIterator[Platform]:
    p = platform_on(sandbox)
    try:
        yield p
    finally:
        await p.aclose()


def notices(lines: list[LogLine], text: str = "") -> list[LogLine]:
    return [line for line in lines if line.is_notice and text in line.message]


def entries(lines: list[LogLine]) -> list[LogLine]:
    return [line for line in lines if not line.is_notice]


def kubectl(sandbox: RunningSandbox, *args: str) -> None:
    subprocess.run(
        ["kubectl", "-n", sandbox.namespace, *args],
        env=sandbox.env,
        check=True,
        capture_output=True,
        timeout=30,
    )


async def settled(platform: Platform, service: str, count: int) -> set[str]:
    """The names of the service's pods once ``count`` of them run (a fresh sandbox starts
    its pods over the first seconds)."""
    seen: list[Any] = []

    async def running() -> set[str]:
        seen[:] = await platform.orchestrator.list_instances(service)
        names = {p.name for p in seen if p.status == "Running" and p.is_ready}
        return names if len(names) == count == len(seen) else set()

    return await until(
        running,
        30,
        f"{count} {service} pods running",
        interval=0.2,
        detail=lambda: f"{[(p.name, p.status) for p in seen]}",
    )


def in_background(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def set_image_once_following(
    sandbox: RunningSandbox,
    lines: list[LogLine],
    kicked: list[threading.Thread],
    service: str,
    tag: str,
) -> None:
    """Roll ``service`` to ``tag`` (in the background) once the tail says it is following."""
    if not kicked and notices(lines, "following"):
        kicked.append(
            in_background(
                lambda: kubectl(
                    sandbox,
                    "set",
                    "image",
                    f"deployment/{service}",
                    f"{service}=bharathva/{service}:{tag}",
                )
            )
        )


# --- reading --------------------------------------------------------------------------------


async def test_follow_merges_every_pod_in_time_order(shared: Platform) -> None:
    source = LogSource(shared.orchestrator, None, tail=5, service_order=SERVICES)

    def enough(lines: list[LogLine]) -> bool:
        return len({line.pod for line in entries(lines)}) == 12 and len(lines) > 400

    lines = await follow(source, enough, 30, "lines from all 12 pods")
    logs = entries(lines)
    stamps = [line.ts for line in logs]
    assert stamps == sorted(stamps), "the merged stream went back in time"
    assert source.stats.late == 0
    assert {line.service for line in logs} == set(SERVICES)
    assert {"plain", "json"} <= {line.raw_format for line in logs}
    # Unparsed text can only be a trace the tail cut into: at the start of a pod's lines (a
    # blank line Spring prints before a trace, then the orphaned rest of it).
    for line in logs:
        if line.raw_format == "unparsed":
            firsts = [x for x in logs if x.pod == line.pod][:2]
            assert line in firsts, line
    [started] = notices(lines, "following")
    assert started.message.startswith("following 12 of 12 container(s) in 12 pod(s)")
    seqs = [line.seq for line in lines]
    assert len(set(seqs)) == len(seqs)
    stats = source.stats
    assert stats.received >= stats.entries >= len(logs) and stats.dropped == 0
    assert stats.emitted == len(lines)


async def test_stack_traces_arrive_attached_while_following(shared: Platform) -> None:
    source = LogSource(shared.orchestrator, None, tail=0)

    def traced(lines: list[LogLine]) -> bool:
        return any(
            line.level == "ERROR" and any(t.startswith("    at ") for t in line.extra)
            for line in lines
        )

    lines = await follow(source, traced, 60, "an ERROR with a stack trace")
    traces = [line for line in lines if line.extra]
    assert traces and all(line.raw_format in ("plain", "json") for line in traces)
    # No frame of any trace escaped into a line of its own.
    strays = [line for line in entries(lines) if line.raw_format == "unparsed"]
    assert strays == []


async def test_snapshot_with_filters_and_grep(shared: Platform) -> None:
    # The module's sandbox may have just started: its pods come up over the first seconds.
    await settled(shared, "auth-service", 3)
    source = LogSource(shared.orchestrator, ["auth-service"], follow=False, tail=None)
    lines = await source.snapshot()
    logs = entries(lines)
    # Messages say what was seen: this test has failed once in a whole-suite run, unseen.
    pods = sorted({line.pod for line in logs})
    assert len(pods) == 3, f"pods in the log: {pods}"
    assert {line.service for line in logs} == {"auth-service"}
    assert [line.ts for line in logs] == sorted(line.ts for line in logs)
    # The startup lines of each pod are in the full log.
    started = [line.pod for line in logs if "Started AuthServiceApplication" in line.message]
    assert len(started) == 3, f"startup lines from {started}; pods {pods}; {len(logs)} entries"
    warn = LogFilter.build(min_level="warn")
    # The sandbox warns at random: judge the filter on every line, not on whether a WARN came.
    kept = [line for line in logs if warn.matches(line)]
    assert kept == [line for line in logs if line.level in ("WARN", "ERROR", "FATAL")]
    assert len(kept) < len(logs), "the INFO startup lines were kept"
    grep = LogFilter.build(include="login succeeded", exclude="id=1")
    found = [line for line in logs if grep.matches(line)]
    assert found and all("Login succeeded" in line.message for line in found)
    assert not any("id=1" in line.message for line in found)
    # tail counts raw lines per container, since counts time.
    tailed = entries(
        await LogSource(shared.orchestrator, ["auth-service"], follow=False, tail=4).snapshot()
    )
    assert 3 <= len(tailed) <= 12
    # A busy machine (the whole suite in parallel) can starve the sandbox's chatter for a
    # couple of seconds: ask again rather than call an empty window wrong.
    recent: list[LogLine] = []
    deadline = time.monotonic() + 15
    while not recent and time.monotonic() < deadline:
        asked = time.time()
        recent = entries(
            await LogSource(
                shared.orchestrator, ["gateway-service"], follow=False, since=2
            ).snapshot()
        )
    assert recent, "no gateway-service line within 2 s, for 15 s"
    assert min(line.ts for line in recent) >= asked - 10


async def test_stream_limit_says_what_it_left_out(shared: Platform) -> None:
    source = LogSource(
        shared.orchestrator, ["auth-service", "gateway-service"], tail=3, max_streams=2
    )

    def settled(lines: list[LogLine]) -> bool:
        return len(entries(lines)) >= 30

    lines = await follow(source, settled, 30, "lines from two streams")
    [warning] = notices(lines, "more containers match than the limit of 2 streams")
    assert warning.level == "WARN"
    assert len({line.pod for line in entries(lines)}) == 2
    assert notices(lines, "following 2 of 6 container(s) in 6 pod(s)")


async def test_close_is_prompt_and_leaves_no_threads(shared: Platform) -> None:
    source = LogSource(shared.orchestrator, None, tail=1)
    stream = source.stream()
    first = await asyncio.wait_for(anext(stream), 20)
    assert first
    assert any(t.name.startswith("bva-log-") for t in threading.enumerate())
    started = time.monotonic()
    await stream.aclose()
    assert time.monotonic() - started < 1.5
    assert source.stats.streams == 0
    assert not any(t.name.startswith("bva-log-") and t.is_alive() for t in threading.enumerate())


# --- pods that come and go ------------------------------------------------------------------


async def test_rollout_mid_tail_new_pods_join_old_ones_leave(
    sandbox: RunningSandbox, fresh: Platform
) -> None:
    old = await settled(fresh, "user-service", 2)
    source = LogSource(fresh.orchestrator, ["user-service"], tail=0)
    kicked: list[threading.Thread] = []

    def step(lines: list[LogLine]) -> bool:
        set_image_once_following(sandbox, lines, kicked, "user-service", "1.1.0")
        joined = {line.pod for line in notices(lines, "joined")}
        left = {line.pod for line in notices(lines, " left ")}
        started = {line.pod for line in entries(lines) if line.message.startswith("Started ")}
        return len(joined) == 2 and left == old and started >= joined

    lines = await follow(source, step, 60, "two new pods in, two old pods out")
    joined = notices(lines, "joined")
    assert {line.pod for line in joined}.isdisjoint(old)
    assert all("(stable, 1.1.0)" in line.message for line in joined)
    for pod in old:
        [left] = [line for line in notices(lines, " left ") if line.pod == pod]
        after = [line for line in entries(lines) if line.pod == pod and line.seq > left.seq]
        assert after == [], f"{pod} kept talking after it left"
    # The new pods joined from their start: their whole startup is there, in order.
    for line in joined:
        own = [x.message for x in entries(lines) if x.pod == line.pod]
        assert own[0].startswith("Starting UserServiceApplication v1.1.0")
        assert any(m.startswith("Started UserServiceApplication") for m in own)
    assert source.stats.pods == 2


async def test_crash_loop_exits_restarts_and_previous_logs(
    sandbox: RunningSandbox, fresh: Platform
) -> None:
    await settled(fresh, "auth-service", 3)
    source = LogSource(fresh.orchestrator, ["auth-service"], tail=0)
    kicked: list[threading.Thread] = []

    def step(lines: list[LogLine]) -> bool:
        set_image_once_following(sandbox, lines, kicked, "auth-service", "1.2.0-crash")
        return bool(notices(lines, "restarted")) and len(notices(lines, "exited")) >= 2

    lines = await follow(source, step, 90, "a crash, a restart and a second crash")
    [joined] = notices(lines, "joined")
    crashing = joined.pod
    exits = [line for line in notices(lines, "exited") if line.pod == crashing]
    assert exits and all("CrashLoopBackOff" in line.message for line in exits)
    assert all(line.level == "WARN" for line in exits)
    failures = [
        line
        for line in entries(lines)
        if line.pod == crashing and line.message == "Application run failed"
    ]
    assert len(failures) >= 2, "each run's failure, once"
    for failure in failures:
        assert failure.level == "ERROR"
        assert any(t.startswith("Caused by: ") for t in failure.extra)
        assert any(t.startswith("    at ") for t in failure.extra)

    previous = await LogSource(
        fresh.orchestrator, ["auth-service"], follow=False, previous=True
    ).snapshot()
    crashed = [line for line in entries(previous) if line.pod == crashing]
    assert crashed[0].message.startswith("Starting AuthServiceApplication v1.2.0-crash")
    assert crashed[-1].message == "Application run failed" and crashed[-1].extra
    # Pods that never restarted have no previous instance, which is said, not failed.
    healthy = notices(previous, "no previous instance")
    assert healthy and crashing not in {line.pod for line in healthy}
    assert {line.pod for line in entries(previous)} == {crashing}


async def test_api_outage_resumes_without_gaps_or_repeats(
    sandbox: RunningSandbox, fresh: Platform
) -> None:
    await settled(fresh, "gateway-service", 3)
    source = LogSource(fresh.orchestrator, ["gateway-service"], tail=0, settle=0.5)
    phase: list[str] = []
    outage: list[threading.Thread] = []

    def step(lines: list[LogLine]) -> bool:
        if not phase and len(entries(lines)) >= 20:
            phase.append("down")

            def bounce() -> None:
                sandbox.stop_api()
                time.sleep(2.0)
                sandbox.start_api()

            outage.append(in_background(bounce))
        if phase == ["down"] and not outage[0].is_alive():
            phase.append("up")
            phase.append(str(len(entries(lines))))
        if len(phase) == 3:
            watch_back = len(notices(lines, "pod watch: ")) == len(
                notices(lines, "pod watch resumed")
            )
            return watch_back and len(entries(lines)) >= int(phase[2]) + 40
        return False

    lines = await follow(source, step, 60, "lines again after the API came back")
    # Whether the pod watch saw the outage depends on when its retry fell; if it said so,
    # it said when it ended too.
    assert len(notices(lines, "pod watch: ")) == len(notices(lines, "pod watch resumed"))
    assert len({line.pod for line in entries(lines)[int(phase[2]) :]}) == 3
    # Each pod's lines, against its whole log over the same time: nothing missing from the
    # outage, nothing said twice by the reconnect. (The last timestamp is left out: lines
    # may still have been in flight when the test stopped reading.)
    truth = entries(
        await LogSource(fresh.orchestrator, ["gateway-service"], follow=False).snapshot()
    )
    for pod in {line.pod for line in entries(lines)}:
        got = [(x.ts, x.message) for x in entries(lines) if x.pod == pod]
        first, last = got[0][0], got[-1][0]
        want = [(x.ts, x.message) for x in truth if x.pod == pod and first <= x.ts < last]
        assert [g for g in got if g[0] < last] == want, pod


def test_sandbox_fixture_sanity(shared_sandbox: RunningSandbox) -> None:
    # The shared sandbox is the stock platform: the assertions above rely on its shape.
    assert sorted(shared_sandbox.services) == sorted(SERVICES)
    assert Path(shared_sandbox.kubeconfig).exists()
