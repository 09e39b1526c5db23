"""PgDatabase against a real primary and streaming replica: the picture, the thresholds, the
drills (paused replay, a stopped replica, connections over the line), a failed migration, a
role without pg_monitor, and a password that never shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from backends.db.models import MigrationState, Role, ServerState
from backends.db.source import DbServer, PgDatabase, connect_options
from tests.support.pg_world import PgWorld
from tests.support.waiting import until

pytestmark = pytest.mark.xdist_group("pg-world")


@pytest.fixture(scope="module")
def world(pg_world: PgWorld) -> PgWorld:
    return pg_world


def source_for(world: PgWorld, user: str = "bva_monitor", **kw: object) -> PgDatabase:
    servers = [
        DbServer("primary", Role.PRIMARY, world.dsn("primary", user)),
        DbServer("replica-1", Role.REPLICA, world.dsn("replica-1", user)),
    ]
    return PgDatabase(servers, pool_size=10, lag_limit_s=1.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def db(world: PgWorld) -> AsyncIterator[PgDatabase]:
    source = source_for(world)
    try:
        yield source
    finally:
        await source.aclose()


async def test_healthy_primary_and_streaming_replica(db: PgDatabase, world: PgWorld) -> None:
    with world.idle_connections(2, app="auth-service"):
        picture = await db.refresh()
    primary, replica = picture.servers
    assert picture.ok, [s.problem_texts for s in picture.servers]
    assert primary.role is Role.PRIMARY and primary.in_recovery is False
    assert primary.version.startswith(f"{world.cluster.version[0]}")
    assert primary.target == f"127.0.0.1:{world.cluster.primary.port}/bharathva"
    assert primary.connections is not None
    assert dict(primary.connections.by_application)["auth-service"] == 2
    assert primary.connections.max_connections == 100 and primary.connections.pool_size == 10
    assert [s.name for s in primary.standbys] == ["replica-1"]
    assert primary.standbys[0].state == "streaming"
    assert replica.in_recovery is True and replica.replica is not None
    assert replica.replica.receiver == "streaming" and not replica.replica.replay_paused
    assert not primary.missing
    assert primary.round_trip_ms is not None and primary.round_trip_ms > 0


async def test_connections_over_80_percent_of_the_pool(db: PgDatabase, world: PgWorld) -> None:
    with world.idle_connections(9):
        primary = (await db.refresh()).primary
    assert primary is not None and primary.connections is not None
    assert primary.connections.total >= 9 and primary.connections.idle >= 9
    assert primary.state is ServerState.DEGRADED
    assert any("of the pool (over 80%)" in p for p in primary.problem_texts), primary.problems
    after = (await db.refresh()).primary
    assert after is not None and after.state is ServerState.UP, after.problems


async def test_the_pool_counts_the_applications_sessions_only(
    db: PgDatabase, world: PgWorld
) -> None:
    """Another database's clients and bva's own (other consoles, pg_dump) are not drawn from
    the services' pool; the sessions list still shows them all."""
    before = (await db.refresh()).primary
    assert before is not None and before.connections is not None
    others = [
        psycopg.connect(world.cluster.dsn("primary", "postgres"), application_name="elsewhere"),
        psycopg.connect(world.cluster.dsn("primary", "bharathva"), application_name="bva"),
    ]
    try:
        with world.idle_connections(2, app="tweet-service"):
            primary = (await db.refresh()).primary
    finally:
        for c in others:
            c.close()
    assert primary is not None and primary.connections is not None
    assert primary.connections.total == before.connections.total + 2
    apps = {s.application: s.database for s in primary.sessions}
    assert apps["elsewhere"] == "postgres" and apps["bva"] == "bharathva"


async def test_paused_replay_grows_the_lag_and_resume_shrinks_it(
    db: PgDatabase, world: PgWorld
) -> None:
    world.sql("SELECT pg_wal_replay_pause()", server="replica-1")
    stop = asyncio.Event()

    async def writes() -> None:
        while not stop.is_set():
            await asyncio.to_thread(world.sql, "INSERT INTO tweets (body) VALUES ('hi')")
            await asyncio.sleep(0.1)

    writer = asyncio.create_task(writes())
    try:

        async def lagging() -> object:
            r = (await db.refresh()).replicas[0]
            return r if r.lag_s is not None and r.lag_s > 1.0 else None

        replica = await until(lagging, 20, "the replica's lag to pass 1 s", interval=0.3)
        assert replica.state is ServerState.DEGRADED
        assert "replay paused" in replica.problem_texts
        assert any(p.startswith("replication lag") for p in replica.problem_texts)
        assert replica.gap_bytes and replica.gap_bytes > 0
        assert max(replica.lag_history) > 1.0
    finally:
        world.sql("SELECT pg_wal_replay_resume()", server="replica-1")
        stop.set()
        await writer

    async def caught_up() -> object:
        r = (await db.refresh()).replicas[0]
        return r if r.state is ServerState.UP else None

    replica = await until(caught_up, 20, "the replica to catch up", interval=0.3)
    assert replica.lag_s is not None and replica.lag_s < 1.0


async def test_a_stopped_replica_is_down_with_its_last_data_and_recovers(
    db: PgDatabase, world: PgWorld
) -> None:
    good = (await db.refresh()).replicas[0]
    assert good.state is ServerState.UP and good.last_good is not None
    world.cluster.stop_server("replica-1")
    try:
        down = (await db.refresh()).replicas[0]
        assert down.state is ServerState.DOWN and down.error
        assert down.problems[0].text.startswith("unreachable: ") and down.problems[0].critical
        assert down.last_good == good.last_good  # the age of the last good data is kept
        assert down.version == good.version
        primary = (await db.refresh()).primary
        assert primary is not None and primary.state is ServerState.UP
    finally:
        world.cluster.start_server("replica-1")

    async def back() -> object:
        r = (await db.refresh()).replicas[0]
        ok = r.state is ServerState.UP and r.replica is not None
        return r if ok and r.replica.receiver == "streaming" else None

    await until(back, 30, "the restarted replica to stream again", interval=0.3)


async def test_a_vanished_primary_costs_one_timeout_not_a_hang(world: PgWorld) -> None:
    # A listener that accepts and never answers: statement_timeout cannot help here.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = PgDatabase(
        [DbServer("primary", Role.PRIMARY, f"postgresql://u:p@127.0.0.1:{port}/x")],
        pool_size=10,
        connect_timeout=1.0,
        statement_timeout=0.5,
    )
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        primary = (await source.refresh()).primary
        took = loop.time() - t0
    finally:
        await source.aclose()
        server.close()
    assert primary is not None and primary.state is ServerState.DOWN
    assert took < 5.0, took
    assert primary.error is not None


async def test_failed_migration_and_pending_files(world: PgWorld, tmp_path: Path) -> None:
    for name in (
        "V1__create_auth_schema.sql",
        "V1_1__add_sessions.sql",
        "V1_2__add_likes.sql",
        "V2__tweets_index.sql",
    ):
        (tmp_path / name).write_text("SELECT 1;\n")
    world.sql(
        "INSERT INTO flyway_schema_history VALUES (3, '1.2', 'add likes', 'SQL', "
        "'V1_2__add_likes.sql', 33, 'app', now(), 5, false)"
    )
    source = source_for(world, migrations=tmp_path)
    try:
        first = (await source.refresh()).primary
        primary = (await source.refresh()).primary  # the table is known from the first answer
    finally:
        await source.aclose()
        world.sql("DELETE FROM flyway_schema_history WHERE installed_rank = 3")
    assert first is not None
    assert primary is not None and primary.flyway is not None
    fw = primary.flyway
    assert [(m.version, m.state) for m in fw.migrations] == [
        ("1", MigrationState.SUCCESS),
        ("1.1", MigrationState.SUCCESS),
        ("1.2", MigrationState.FAILED),
        ("2", MigrationState.PENDING),
    ]
    assert fw.latest is not None and fw.latest.version == "1.1"
    assert primary.state is ServerState.DEGRADED
    assert "failed migration: 1.2" in primary.problem_texts


async def test_a_role_without_pg_monitor_degrades_and_says_what_is_hidden(
    world: PgWorld,
) -> None:
    with world.idle_connections(1, app="user-service"):
        source = source_for(world, user="plain")
        try:
            primary = (await source.refresh()).primary
        finally:
            await source.aclose()
    assert primary is not None and primary.connections is not None
    assert primary.missing and "pg_monitor" in primary.missing[0]
    hidden = [s for s in primary.sessions if s.application == "user-service"]
    assert hidden and hidden[0].query == "<insufficient privilege>"


async def test_the_password_never_shows(world: PgWorld) -> None:
    wrong = "S3cret-not-this-one"
    port = world.cluster.primary.port
    source = PgDatabase(
        [
            DbServer(
                "primary",
                Role.PRIMARY,
                f"postgresql://bva_monitor:{wrong}@127.0.0.1:{port}/bharathva",
            )
        ],
        pool_size=10,
    )
    try:
        primary = (await source.refresh()).primary
    finally:
        await source.aclose()
    assert primary is not None and primary.state is ServerState.DOWN
    assert primary.error and "password authentication failed" in primary.error
    assert wrong not in repr(primary) and wrong not in repr(source)
    assert world.monitor_password not in repr(source_for(world))


def test_monitor_connections_are_read_only(world: PgWorld) -> None:
    dsn = world.dsn("primary")
    with psycopg.connect(dsn, autocommit=True, **connect_options(dsn, 3, 2000)) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO tweets (body) VALUES ('nope')")
        row = conn.execute("SHOW statement_timeout").fetchone()
        assert row is not None and row[0] == "2s"
