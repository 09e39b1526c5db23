"""The threaded prober gives the same answers as HealthProber, from its own thread (the
gain for the UI loop is measured by tests/bench/test_bench_health.py)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest

from backends.health.models import ProbeStatus, Unreachable
from backends.health.thread import ThreadedProber
from tests.support import bad_servers as bs
from tests.support.bad_servers import ServerPool


@pytest.fixture
async def servers() -> AsyncIterator[ServerPool]:
    pool = ServerPool()
    try:
        yield pool
    finally:
        await pool.stop_all()


async def test_same_answers_on_its_own_thread(servers: ServerPool) -> None:
    up, down = await servers.start(bs.actuator_up()), await servers.start(bs.actuator_down())
    hang = await servers.start(bs.hang)
    prober = ThreadedProber(timeout=0.5)
    try:
        result = await prober.sweep(
            [("a", [up]), ("b", [down]), ("c", [hang]), ("d", [bs.refused_url()])]
        )
        assert [h.status for h in result] == [
            ProbeStatus.UP,
            ProbeStatus.DOWN,
            ProbeStatus.UNREACHABLE,
            ProbeStatus.UNREACHABLE,
        ]
        assert result[2].probes[0].reason is Unreachable.TIMEOUT
        single = await prober.probe("a", up)
        assert single.status is ProbeStatus.UP
        assert any(t.name == "bva-health" for t in threading.enumerate())
    finally:
        await prober.aclose()
    assert not any(t.name == "bva-health" for t in threading.enumerate())
