"""The database as a release gate, against a real sandbox and a real primary and replica: a
lagging replica holds the phase back, an unreadable one pauses the release for a human."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.db.models import Role
from backends.db.source import DbServer, PgDatabase
from backends.journal.store import Journal
from backends.metrics.scrape import ScrapeMetrics
from backends.platform import Platform, open_platform
from backends.release.control import send_control
from backends.release.driver import ReleaseDriver
from backends.release.models import GateResult, ReleaseState
from backends.release.plan import make_plan
from tests.support.pg_world import PgWorld
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.sandbox_release import ready, release_driver
from tests.support.waiting import until

CFG = load_platform(builtin_platform_path())
pytestmark = pytest.mark.xdist_group("pg-release")
NOT_PROMOTING = "hold done, not promoting"


@pytest.fixture
async def platform(sandbox: RunningSandbox) -> AsyncIterator[Platform]:
    p = open_platform(CFG, "sandbox", sandbox=read_sandbox_state(sandbox.runtime_dir))
    try:
        yield p
    finally:
        await p.aclose()


@contextlib.asynccontextmanager
async def releasing(
    platform: Platform, world: PgWorld, tmp_path: Path, version: str, hold: float, *, load: bool
) -> AsyncIterator[ReleaseDriver]:
    """A release of auth-service gated on ``world``'s database, running; with ``load``,
    writes on the primary meanwhile (so a paused replica falls behind). Afterwards replay
    runs again and the release is over."""
    await ready(platform)
    db = PgDatabase(
        [
            DbServer("primary", Role.PRIMARY, world.dsn("primary")),
            DbServer("replica-1", Role.REPLICA, world.dsn("replica-1")),
        ],
        pool_size=20,
        connect_timeout=1.0,
        statement_timeout=1.0,
    )
    plan = make_plan(
        CFG,
        "sandbox",
        ["auth-service"],
        version,
        holds=[hold] * 3,
        gate_interval=0.5,
        failure_limit=1000,
    )
    urls = {"auth-service": platform.service_urls["auth-service"] + "/actuator/prometheus"}
    metrics = ScrapeMetrics(urls, min_window=0.5)
    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    driver = release_driver(platform, CFG, plan, metrics, journal, "tester@test", database=db)
    stop = asyncio.Event()

    async def writes() -> None:
        while load and not stop.is_set():
            await asyncio.to_thread(world.sql, "INSERT INTO tweets (body) VALUES ('load')")
            await asyncio.sleep(0.1)

    writer = asyncio.create_task(writes())
    await driver.start()
    run = asyncio.create_task(driver.run())
    try:
        yield driver
        if not run.done():
            world.sql("SELECT pg_wal_replay_resume()", server="replica-1")
        assert await asyncio.wait_for(run, 90) is ReleaseState.FINISHED, driver.reason
    finally:
        world.sql("SELECT pg_wal_replay_resume()", server="replica-1")
        stop.set()
        await writer
        if not run.done():
            await driver.abort("test cleanup")
            await asyncio.wait_for(run, 30)
        await metrics.aclose()
        await db.aclose()


def _timeline(driver: ReleaseDriver) -> list[str]:
    return [e.text for e in driver.timeline][-8:]


def _lag_failures(driver: ReleaseDriver) -> int:
    gates = {g.gate: g for p in driver.view().progress for g in p.gates}
    lag = gates.get("db replication lag")
    return lag.failed if lag is not None else 0


async def test_a_lagging_replica_holds_the_phase_until_it_catches_up(
    platform: Platform, pg_world: PgWorld, tmp_path: Path
) -> None:
    pg_world.sql("SELECT pg_wal_replay_pause()", server="replica-1")
    async with releasing(platform, pg_world, tmp_path, "1.1.0", 1.0, load=True) as driver:
        await until(
            lambda: _lag_failures(driver) >= 4,
            30,
            "the lag gate to fail four rounds",
            interval=0.1,
            detail=lambda: _timeline(driver),
        )
        view = driver.view()
        assert view.weight == 5  # the holds (1 s) are long over: the database holds it back
        gates = {g.gate: g for g in view.progress[0].gates}
        lag = gates["db replication lag"].last
        assert lag is not None and lag.result is GateResult.FAILED
        assert lag.value is not None and lag.value > 1.0
        conns = gates["db connections"].last
        assert conns is not None and conns.result is GateResult.PASSED
        pg_world.sql("SELECT pg_wal_replay_resume()", server="replica-1")


async def test_lag_at_the_end_of_a_passing_hold_keeps_the_weight(
    platform: Platform, pg_world: PgWorld, tmp_path: Path
) -> None:
    """Passing samples earlier in the phase do not carry a promotion onto a lagging replica."""
    async with releasing(platform, pg_world, tmp_path, "1.1.2", 4.0, load=True) as driver:
        await until(lambda: driver.passed > 0, 30, "a passing sample", interval=0.05)
        pg_world.sql("SELECT pg_wal_replay_pause()", server="replica-1")

        def said() -> bool:
            return any(t.startswith(NOT_PROMOTING) for t in _timeline(driver))

        await until(
            said,
            30,
            "the hold to end without a promotion",
            interval=0.1,
            detail=lambda: _timeline(driver),
        )
        assert driver.view().weight == 5
        pg_world.sql("SELECT pg_wal_replay_resume()", server="replica-1")
    assert sum(e.text.startswith(NOT_PROMOTING) for e in driver.timeline) == 1


async def test_an_unreadable_replica_pauses_the_release_for_a_human(
    platform: Platform, pg_world: PgWorld, tmp_path: Path
) -> None:
    pg_world.cluster.stop_server("replica-1")
    try:
        async with releasing(platform, pg_world, tmp_path, "1.1.1", 1.0, load=False) as driver:
            await until(
                lambda: driver.state is ReleaseState.PAUSED,
                30,
                "the release to pause",
                interval=0.1,
            )
            assert "db replication lag: no data" in driver.reason
            pg_world.cluster.start_server("replica-1")
            # The human looked, the replica is back: `bva release resume` from any terminal.
            await send_control(platform.orchestrator, platform.services(), "resume")
    finally:
        if not pg_world.cluster.server("replica-1").running:
            pg_world.cluster.start_server("replica-1")
