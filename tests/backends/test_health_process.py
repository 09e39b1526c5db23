"""The prober child gives the same answers as HealthProber, from its own process (the gain
for the console's keys is measured by tests/bench/test_bench_health.py)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

from backends.health.models import ProbeStatus, Unreachable
from backends.health.process import ProcessProber
from tests.support import bad_servers as bs
from tests.support.bad_servers import ServerPool


@pytest.fixture
async def servers() -> AsyncIterator[ServerPool]:
    pool = ServerPool()
    try:
        yield pool
    finally:
        await pool.stop_all()


async def _child(prober: ProcessProber) -> asyncio.subprocess.Process:
    task = prober._proc
    assert task is not None
    return await task


async def test_same_answers_from_its_own_process(servers: ServerPool) -> None:
    up, down = await servers.start(bs.actuator_up()), await servers.start(bs.actuator_down())
    hang = await servers.start(bs.hang)
    prober = ProcessProber(timeout=0.5)
    try:
        result = await prober.sweep(
            [("a", [up]), ("b", [down]), ("c", [hang]), ("d", [bs.refused_url(), up])]
        )
        assert [h.status for h in result] == [
            ProbeStatus.UP,
            ProbeStatus.DOWN,
            ProbeStatus.UNREACHABLE,
            ProbeStatus.UNREACHABLE,
        ]
        assert result[2].probes[0].reason is Unreachable.TIMEOUT
        assert result[2].probes[0].detail == "timed out after 0.5s"
        assert [p.status for p in result[3].probes] == [ProbeStatus.UNREACHABLE, ProbeStatus.UP]
        assert result[0].probes[0].components == result[3].probes[1].components != ()
        single = await prober.probe("a", up)
        assert single.status is ProbeStatus.UP and single.latency_ms is not None
        child = await _child(prober)
        assert child.pid != os.getpid() and child.returncode is None
    finally:
        await prober.aclose()
    assert child.returncode is not None


async def test_sweeps_overlap_and_a_dead_child_is_replaced(servers: ServerPool) -> None:
    up, hang = await servers.start(bs.actuator_up()), await servers.start(bs.hang)
    prober = ProcessProber(timeout=1.0)
    try:
        slow = asyncio.ensure_future(prober.sweep([("c", [hang])]))
        quick = await prober.sweep([("a", [up])])  # not queued behind the hanging one
        assert quick[0].status is ProbeStatus.UP and not slow.done()
        first = await _child(prober)
        os.kill(first.pid, signal.SIGKILL)
        lost = await slow
        # A sweep never raises: the endpoints it could not ask about say why.
        assert lost[0].status is ProbeStatus.UNREACHABLE
        assert "health prober exited" in lost[0].probes[0].detail
        again = await prober.sweep([("a", [up])])
        assert again[0].status is ProbeStatus.UP
        assert (await _child(prober)).pid != first.pid
    finally:
        await prober.aclose()
