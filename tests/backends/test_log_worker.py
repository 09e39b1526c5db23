"""The log tail in a child process (what the Logs screen uses), against a real sandbox: the
same merged, sanitised lines and counters as in-process, errors as one line, a spare child
taken up, and no child left behind by a close or by a parent that goes away."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.errors import BvaError
from backends.kube.adapter import KubeAdapter
from backends.logs.models import LineRow, LogFilter, LogLine
from backends.logs.worker import Batch, WorkerLogSource
from backends.platform import open_platform
from tests.support.log_follow import follow
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.waiting import wait_until

CFG = load_platform(builtin_platform_path())
SERVICES = [s.name for s in CFG.services]


def kube_on(sandbox: RunningSandbox) -> KubeAdapter:
    state = read_sandbox_state(sandbox.runtime_dir)
    return open_platform(CFG, "sandbox", sandbox=state, read_only=True).orchestrator


def exited(pid: int) -> bool:
    """Exited (a zombie nobody has reaped yet counts: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def wait_gone(pid: int, what: str, within: float = 5.0) -> None:
    wait_until(lambda: exited(pid), within, what)


async def test_child_streams_merged_lines_and_counters(sandbox: RunningSandbox) -> None:
    source = WorkerLogSource(kube_on(sandbox), None, follow=True, tail=20, service_order=SERVICES)
    pids: list[int] = []

    def enough(lines: list[LogLine]) -> bool:
        if source.pid is not None:
            pids.append(source.pid)
        return len(lines) >= 150

    lines = await follow(source, enough, 30, "150 lines")
    assert pids
    wait_gone(pids[0], "the close to stop the child")
    services = {x.service for x in lines if not x.is_notice}
    assert {"auth-service", "gateway-service"} <= services
    assert source.stats.pods >= len(SERVICES)
    # The reorder window keeps the merge in time order within what one batch hands out.
    stamps = [x.ts for x in lines if not x.is_notice]
    assert sum(1 for a, b in itertools.pairwise(stamps) if b < a) < len(stamps) // 10
    assert all(isinstance(x.extra, tuple) for x in lines)
    assert source.stats.received > 0 and source.stats.emitted >= len(lines) - 250


async def test_a_spare_child_is_taken_up_and_a_close_stops_it(sandbox: RunningSandbox) -> None:
    spare = asyncio.ensure_future(WorkerLogSource.spawn("kubernetes"))
    proc = await spare
    source = WorkerLogSource(kube_on(sandbox), ["auth-service"], process=spare, follow=True, tail=5)
    got: list[LineRow] = []
    ran: list[int | None] = []

    async def run() -> None:
        async for batch in source.stream():
            got.extend(batch)
            if source.stats.streams:
                ran.append(source.pid)
                break

    await asyncio.wait_for(run(), 30)
    await source.aclose()
    assert source.stats.streams == 0
    assert ran == [proc.pid], "the spare was the child that ran"
    wait_gone(proc.pid, "the close to stop it")
    assert {LogLine(*x).service for x in got if not LogLine(*x).is_notice} <= {"auth-service"}


async def test_an_unused_spare_is_discarded() -> None:
    spare = asyncio.ensure_future(WorkerLogSource.spawn("kubernetes"))
    proc = await spare
    await WorkerLogSource.discard(spare)
    assert proc.returncode == 0


async def test_errors_arrive_as_one_line(tmp_path: Path) -> None:
    kube = KubeAdapter(namespace="bharathva", kubeconfig=str(tmp_path / "missing.yaml"))
    source = WorkerLogSource(kube, None, follow=True)
    with pytest.raises(BvaError) as caught:
        await follow(source, bool, 30, "an error")
    text = str(caught.value)
    assert "missing.yaml" in text and "\n" not in text and "Traceback" not in text


def test_child_stops_when_its_parent_goes(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """A parent killed outright: the child sees stdin close and exits (no orphan readers)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import asyncio, json, sys\n"
        "from backends.orchestrator import reconnect\n"
        "from backends.logs.worker import WorkerLogSource\n"
        "async def main():\n"
        "    kube = reconnect(json.loads(sys.argv[1]))\n"
        "    source = WorkerLogSource(kube, None, follow=True, tail=1)\n"
        "    async for _ in source.stream():\n"
        "        print(source.pid, flush=True)\n"
        "        await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen(
        [sys.executable, str(script), json.dumps(kube_on(sandbox).connection())],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_gone(child, f"log reader {child} to exit with its parent")
    finally:
        with contextlib.suppress(ProcessLookupError):
            parent.kill()


async def test_child_judges_lines_by_the_filter_last_set(sandbox: RunningSandbox) -> None:
    """The regex runs in the child: its verdicts equal the filter's own, and batches judged
    by a filter since replaced are left for the caller to judge."""
    source = WorkerLogSource(kube_on(sandbox), None, follow=True, tail=50)
    first = LogFilter.build(include="login|token")
    second = LogFilter.build(min_level="warn", exclude="timed out")
    source.set_filter(first)
    judged: list[tuple[LogFilter, list[LineRow], list[LineRow]]] = []

    async def run() -> None:
        current = first
        async for batch in source.stream():
            verdict = source.matched(batch)
            if verdict is None:
                continue  # judged by the filter just replaced
            judged.append((current, list(batch), verdict))
            if len(judged) == 3:
                current = second
                source.set_filter(second)
            if len(judged) >= 8 and current is second:
                return

    try:
        await asyncio.wait_for(run(), 60)
    finally:
        await source.aclose()
    for f, batch, verdict in judged:
        # Rows, as decoded: plain tuples, which the collector stops tracking.
        assert all(type(x) is tuple for x in batch)
        assert verdict == [x for x in batch if f.matches(LogLine(*x))]
    assert any(verdict for _, _, verdict in judged), "some lines passed"
    assert any(len(verdict) < len(batch) for _, batch, verdict in judged), "some did not"
    assert any(f is second for f, _, _ in judged), "the new filter reached the child"
    source.set_filter(None)
    assert source.matched(Batch([], 0, b"")) is None  # an old version: caller judges
