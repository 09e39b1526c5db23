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
    """Until every replica has replayed what the primary has written so far (the roles)."""
    target = world.sql("SELECT pg_current_wal_lsn()::text")

    def replayed(server: str) -> object:
        with psycopg.connect(world.cluster.dsn(server), autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (str(target),)
            ).fetchone()
            return row is not None and row[0]

    for server in world.cluster.servers[1:]:
        name = server.name
        wait_until(
            lambda: replayed(name),  # noqa: B023 - called before the loop moves on
            timeout,
            f"{server.name} to replay the setup",
            interval=0.05,
        )


def start_world(replicas: int = 1) -> PgWorld:
    cluster = PgCluster(replicas=replicas)
    cluster.start()  # fails loudly (PgSetupError) when PostgreSQL cannot run here
    try:
        world = PgWorld(cluster)
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
        wait_streaming(cluster)
        wait_replayed(world)
        return world
    except BaseException:
        cluster.stop()
        raise
