"""A real primary and replica for the database adapter's tests: database ``bharathva``, a
pg_monitor role, a plain role, and a Flyway history table."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg

from backends.sandbox.pgcluster import PgCluster, wait_streaming
from backends.sandbox.pgschema import FLYWAY_TABLE_DDL
from tests.support.waiting import wait_until

DB = "bharathva"


@dataclass
class PgWorld:
    cluster: PgCluster
    monitor_password: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    plain_password: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)

    def dsn(self, server: str = "primary", user: str = "bva_monitor") -> str:
        """A libpq URL as the platform file's secret reference would hold it."""
        password = self.monitor_password if user == "bva_monitor" else self.plain_password
        port = self.cluster.server(server).port
        return f"postgresql://{user}:{quote(password)}@127.0.0.1:{port}/{DB}"

    def admin(self, server: str = "primary") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.cluster.dsn(server, DB), autocommit=True, connect_timeout=5)

    def sql(self, statement: str, server: str = "primary") -> object:
        with self.admin(server) as conn:
            cur = conn.execute(statement)
            row = cur.fetchone() if cur.description else None
            return row[0] if row else None

    @contextmanager
    def idle_connections(self, n: int, app: str = "drill-idle") -> Iterator[None]:
        conns = [
            psycopg.connect(self.cluster.dsn("primary", DB), application_name=app, autocommit=True)
            for _ in range(n)
        ]
        try:
            yield
        finally:
            for c in conns:
                c.close()


def wait_replayed(world: PgWorld, timeout: float = 30.0) -> None:
    """Until every replica has replayed everything the primary has written so far.

    The cluster runs with ``synchronous_commit = off``: a commit returns before its WAL is
    written, and ``pg_current_wal_lsn()`` (the *write* position) can still be short of it
    until the walwriter gets round to it, which a loaded machine delays. So flush first: the
    synchronous commit of a transaction that wrote WAL (a transactional logical message: no
    table touched) flushes all WAL before it, and the flush position after that (what the
    walsender streams) covers every earlier commit. A transaction with only an xid would not
    do: PostgreSQL commits one that wrote nothing asynchronously."""
    with world.admin() as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("SELECT pg_logical_emit_message(true, 'bva-tests', 'replay mark')")
        row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    target = str(row[0])

    def replay_lsn(server: str) -> str | None:
        with psycopg.connect(world.cluster.dsn(server), autocommit=True, connect_timeout=5) as c:
            got = c.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
            return None if got is None or got[0] is None else str(got[0])

    def replayed(server: str) -> bool:
        with psycopg.connect(world.cluster.dsn(server), autocommit=True, connect_timeout=5) as c:
            got = c.execute(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", (target,)
            ).fetchone()
            return got is not None and bool(got[0])

    for server in world.cluster.servers[1:]:
        name = server.name
        wait_until(
            lambda: replayed(name),  # noqa: B023 - called before the loop moves on
            timeout,
            f"{name} to replay the primary's WAL up to {target}",
            interval=0.05,
            detail=lambda: f"{name} has replayed up to {replay_lsn(name)}",  # noqa: B023
        )


def _seed(world: PgWorld) -> None:
    """The database, the two roles and the Flyway history, on the primary."""
    cluster = world.cluster
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB}")
        for role, password, monitor in (
            ("bva_monitor", world.monitor_password, True),
            ("plain", world.plain_password, False),
        ):
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
                )
            )
            if monitor:
                conn.execute("GRANT pg_monitor TO bva_monitor")
    with world.admin() as conn:
        conn.execute(FLYWAY_TABLE_DDL)  # the sandbox's: Flyway's own layout
        conn.execute("CREATE TABLE public.tweets (id serial PRIMARY KEY, body text)")
        conn.execute("GRANT SELECT ON flyway_schema_history TO bva_monitor")
        conn.execute(
            "INSERT INTO flyway_schema_history VALUES "
            "(1, '1', 'create auth schema', 'SQL', 'V1__create_auth_schema.sql', 11, "
            " 'app', now(), 12, true),"
            "(2, '1.1', 'add sessions', 'SQL', 'V1_1__add_sessions.sql', 22, "
            " 'app', now(), 8, true)"
        )


def start_world(replicas: int = 1) -> PgWorld:
    """Seeded on the primary before the replicas are copied from it (as the sandbox does), so
    each replica starts from a base backup that already holds the roles; then streaming, and
    replayed up to the primary's flushed WAL."""
    cluster = PgCluster(replicas=replicas)
    world = PgWorld(cluster)
    # Fails loudly (PgSetupError) when PostgreSQL cannot run here; a failed start cleans up.
    cluster.start(on_primary=lambda: _seed(world))
    try:
        wait_streaming(cluster)
        wait_replayed(world)
        return world
    except BaseException:
        cluster.stop()
        raise
