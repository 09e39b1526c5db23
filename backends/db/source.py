"""PgDatabase: the platform's PostgreSQL servers read with psycopg 3, one statement each.

Each server keeps one autocommit connection opened with ``default_transaction_read_only`` and
a ``statement_timeout``, so bva can only read and a slow catalog cannot pin it. A refresh is
one round trip per server, all servers at once, under an outer deadline: a vanished server
(even a half-open TCP peer, where statement_timeout does nothing) costs one timeout, its
connection is dropped and the next refresh dials again. The password of a DSN never leaves
this module: errors are masked and sanitised before anyone sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from backends.config.values import mask_dsn
from backends.db.flyway import MigrationFile, merge, read_migrations
from backends.db.models import (
    Connections,
    DatabasePicture,
    Flyway,
    Problem,
    ReplicaStatus,
    Role,
    ServerReading,
    ServerState,
    Session,
    Standby,
)
from backends.db.queries import flyway_probe_sql, refresh_sql
from backends.sanitize import sanitize_text

LAG_HISTORY = 30
_LIBPQ_PREFIX = re.compile(
    r'^connection failed: connection to server at "[^"]*"(?:\s*\([^)]*\))?, port \d+ failed:\s*'
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass(frozen=True, slots=True)
class DbServer:
    name: str
    role: Role
    dsn: str = field(repr=False)
    unusable: str | None = None  # why there is no DSN to dial (a secret that did not resolve)


@dataclass
class _Link:
    server: DbServer
    target: str
    conn: psycopg.AsyncConnection[Any] | None = None
    flyway_table: bool = False
    last: ServerReading | None = None
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_HISTORY))


def describe_target(dsn: str) -> str:
    """host:port/dbname of a DSN (libpq defaults where it names none), never its password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable DSN)"
    host = str(parts.get("host") or parts.get("hostaddr") or "$PGHOST")
    port = str(parts.get("port") or "5432")
    db = str(parts.get("dbname") or "$PGDATABASE")
    return sanitize_text(f"{host.split(',')[0]}:{port}/{db}", 120)


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _as_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


class PgDatabase:
    """DatabaseSource over real PostgreSQL servers (the primary first, then its replicas)."""

    def __init__(
        self,
        servers: Sequence[DbServer],
        *,
        pool_size: int,
        connections_pct_limit: float = 80.0,
        lag_limit_s: float = 1.0,
        migrations: Path | None = None,
        flyway_table: str = "public.flyway_schema_history",
        connect_timeout: float = 3.0,
        statement_timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _IDENT.match(flyway_table):
            raise ValueError(f"not a table name: {flyway_table!r}")
        self._links = [_Link(s, describe_target(s.dsn)) for s in servers]
        self._secrets = [p for s in servers if (p := _password(s.dsn))]
        self._pool_size = pool_size
        self._conn_limit = connections_pct_limit
        self._lag_limit = lag_limit_s
        self._migrations = migrations
        self._flyway_table = flyway_table
        self._connect_timeout = max(1, round(connect_timeout))
        self._statement_ms = max(1, round(statement_timeout * 1000))
        self._deadline = connect_timeout + statement_timeout + 1.0
        self._clock = clock

    async def refresh(self) -> DatabasePicture:
        files, problems = self._read_files()
        readings = await asyncio.gather(*(self._refresh(link, files) for link in self._links))
        return DatabasePicture(
            servers=tuple(readings),
            pool_size=self._pool_size,
            connections_pct_limit=self._conn_limit,
            lag_limit_s=self._lag_limit,
            taken_at=self._clock(),
            problems=problems,
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(self._drop(link) for link in self._links))

    # -- one server ----------------------------------------------------------------------

    async def _refresh(self, link: _Link, files: list[MigrationFile] | None) -> ServerReading:
        if link.server.unusable is not None:
            return self._failed(link, link.server.unusable)
        t0 = time.perf_counter()
        try:
            answer = await asyncio.wait_for(self._ask(link), self._deadline)
        except TimeoutError:
            await self._drop(link)
            return self._failed(link, f"no answer within {self._deadline:g}s")
        except psycopg.Error as exc:
            await self._drop(link)
            return self._failed(link, self._say(exc))
        ms = (time.perf_counter() - t0) * 1000.0
        try:
            reading = self._reading(link, answer, files, ms)
        except (KeyError, TypeError, ValueError) as exc:
            # A server (or a proxy in front of it) that answers something else: say so, and
            # keep the console running.
            return self._failed(link, f"unreadable answer ({type(exc).__name__})")
        link.last = reading
        return reading

    async def _ask(self, link: _Link) -> Mapping[str, Any]:
        if link.conn is None or link.conn.closed:
            link.conn = await psycopg.AsyncConnection.connect(
                link.server.dsn,
                autocommit=True,
                **connect_options(link.server.dsn, self._connect_timeout, self._statement_ms),
            )
            if link.server.role is Role.PRIMARY:
                # Asked once per connection, so the first refresh already reads the history.
                cur = await link.conn.execute(flyway_probe_sql(self._flyway_table))
                row = await cur.fetchone()
                link.flyway_table = bool(row and row[0] == "readable")
        with_flyway = link.server.role is Role.PRIMARY and link.flyway_table
        sql = refresh_sql(flyway_table=self._flyway_table, with_flyway=with_flyway)
        try:
            cur = await link.conn.execute(sql)
        except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
            # The history table went away (or its grant) since the last refresh: ask without it.
            link.flyway_table = False
            sql = refresh_sql(flyway_table=self._flyway_table, with_flyway=False)
            cur = await link.conn.execute(sql)
        row = await cur.fetchone()
        answer = row[0] if row else None
        if not isinstance(answer, dict):
            raise psycopg.DataError("the server returned no reading")
        return answer

    async def _drop(self, link: _Link) -> None:
        conn, link.conn = link.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)

    def _say(self, exc: BaseException) -> str:
        text = str(exc).strip() or type(exc).__name__
        # libpq repeats the host and port the row already shows; keep what went wrong.
        text = _LIBPQ_PREFIX.sub("", text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return sanitize_text(mask_dsn(text.splitlines()[0] if text else text), 200)

    def _failed(self, link: _Link, why: str) -> ServerReading:
        base = link.last
        empty = ServerReading(
            name=link.server.name,
            role=link.server.role,
            target=link.target,
            state=ServerState.DOWN,
            problems=(),
            error=None,
            last_good=None,
        )
        return replace(
            base or empty,
            state=ServerState.DOWN,
            problems=(Problem(f"unreachable: {why}", critical=True),),
            error=why,
            round_trip_ms=None,
            lag_history=tuple(link.lags),
        )

    # -- files ---------------------------------------------------------------------------

    def _read_files(self) -> tuple[list[MigrationFile] | None, tuple[str, ...]]:
        if self._migrations is None:
            return None, ()
        try:
            return read_migrations(self._migrations), ()
        except OSError as exc:
            why = sanitize_text(exc.strerror or type(exc).__name__, 80)
            return None, (f"migrations directory {self._migrations}: {why}",)

    # -- the answer ----------------------------------------------------------------------

    def _reading(
        self, link: _Link, a: Mapping[str, Any], files: list[MigrationFile] | None, ms: float
    ) -> ServerReading:
        table = a.get("flyway_table")
        link.flyway_table = table == "readable"
        role = link.server.role
        sessions = tuple(_session(s) for s in a.get("sessions") or [])
        conns = _connections(
            sessions,
            _as_int(a.get("max_connections")) or 0,
            self._pool_size,
            str(a.get("database") or ""),
        )
        standbys = tuple(_standby(s) for s in a.get("standbys") or [])
        replica = _replica(a["replica"]) if isinstance(a.get("replica"), dict) else None
        flyway: Flyway | None = None
        if role is Role.PRIMARY and isinstance(a.get("flyway"), list):
            flyway = merge(a["flyway"], files)
        reading = ServerReading(
            name=link.server.name,
            role=role,
            target=link.target,
            state=ServerState.UP,
            problems=(),
            error=None,
            last_good=self._clock(),
            version=sanitize_text(str(a.get("version") or ""), 40),
            started_at=_as_float(a.get("started")),
            in_recovery=bool(a.get("in_recovery")),
            connections=conns,
            sessions=sessions,
            standbys=standbys,
            replica=replica,
            flyway=flyway,
            missing=_missing(a, role, self._flyway_table),
            round_trip_ms=ms,
        )
        lag = reading.lag_s
        if lag is not None:
            link.lags.append(lag)
        problems = self._problems(reading)
        return replace(
            reading,
            state=ServerState.DEGRADED if problems else ServerState.UP,
            problems=problems,
            lag_history=tuple(link.lags),
        )

    def _problems(self, r: ServerReading) -> tuple[Problem, ...]:
        out: list[Problem] = []
        if r.role is Role.PRIMARY and r.in_recovery:
            out.append(Problem("in recovery: this is a standby, not the primary", critical=True))
        if r.role is Role.REPLICA and not r.in_recovery:
            out.append(Problem("not in recovery: promoted, or not a replica", critical=True))
        c = r.connections
        if c is not None and c.pool_pct > self._conn_limit:
            out.append(
                Problem(
                    f"connections {c.total}/{c.pool_size} = {c.pool_pct:.0f}% of the pool "
                    f"(over {self._conn_limit:g}%)"
                )
            )
        rep = r.replica
        if rep is not None:
            if rep.receiver != "streaming":
                why = f"not streaming (WAL receiver: {rep.receiver or 'none'})"
                out.append(Problem(why, critical=True))
            if rep.replay_paused:
                out.append(Problem("replay paused"))
        lag = r.lag_s
        # A replica's lag is that replica's problem; the primary judges its standbys' only
        # when bva watches no replica itself.
        watched = any(link.server.role is Role.REPLICA for link in self._links)
        judged = r.role is Role.REPLICA or not watched
        if judged and lag is not None and lag > self._lag_limit:
            out.append(Problem(f"replication lag {lag:.1f}s (over {self._lag_limit:g}s)"))
        if r.flyway is not None and r.flyway.failed:
            names = ", ".join(m.version or m.description for m in r.flyway.failed[:3])
            out.append(Problem(f"failed migration: {names}", critical=True))
        return tuple(out)


def connect_options(dsn: str, connect_timeout: int, statement_ms: int) -> dict[str, Any]:
    """psycopg connect arguments for a monitor connection: read-only by default, statements
    bounded, the DSN's own ``options`` kept."""
    try:
        given = str(conninfo_to_dict(dsn).get("options") or "")
    except psycopg.ProgrammingError:
        given = ""
    ours = f"-c default_transaction_read_only=on -c statement_timeout={statement_ms}"
    return {
        "connect_timeout": connect_timeout,
        "application_name": "bva",
        "options": f"{given} {ours}".strip(),
        # A dead peer is noticed by TCP in seconds, not the kernel's two hours.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
    }


_NO_MONITOR = "not a pg_monitor member: other sessions' queries and replication are hidden"


def _missing(a: Mapping[str, Any], role: Role, table: str) -> tuple[str, ...]:
    out = [] if a.get("monitor") else [_NO_MONITOR]
    if role is Role.PRIMARY and a.get("flyway_table") == "denied":
        out.append(f"no SELECT on {table}: migrations unknown")
    return tuple(out)


def _password(dsn: str) -> str | None:
    try:
        value = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return None
    return str(value) if value else None


def _session(s: Mapping[str, Any]) -> Session:
    blocked = s.get("blocked_by") or []
    return Session(
        pid=_as_int(s.get("pid")) or 0,
        application=sanitize_text(str(s.get("app") or ""), 64),
        user=sanitize_text(str(s.get("usr") or ""), 64),
        state=sanitize_text(str(s.get("state") or ""), 32),
        wait=sanitize_text(str(s.get("wait") or ""), 64),
        query_s=_as_float(s.get("query_s")),
        xact_s=_as_float(s.get("xact_s")),
        query=sanitize_text(" ".join(str(s.get("query") or "").split()), 300),
        blocked_by=tuple(int(p) for p in blocked if isinstance(p, int)),
        database=sanitize_text(str(s.get("db") or ""), 64),
    )


def _connections(
    sessions: Sequence[Session], max_connections: int, pool: int, database: str = ""
) -> Connections:
    """The application's share of the pool: its own database's sessions only, and none of
    bva's (other consoles' monitors, pg_dump): neither is drawn from the services' pool."""
    sessions = [
        s
        for s in sessions
        if s.application != "bva" and (not database or s.database in (database, ""))
    ]
    by_app: dict[str, int] = {}
    for s in sessions:
        by_app[s.application or "(none)"] = by_app.get(s.application or "(none)", 0) + 1
    return Connections(
        total=len(sessions),
        active=sum(1 for s in sessions if s.state == "active"),
        idle=sum(1 for s in sessions if s.state == "idle"),
        idle_in_transaction=sum(1 for s in sessions if s.state.startswith("idle in transaction")),
        waiting=sum(1 for s in sessions if s.waiting),
        by_application=tuple(sorted(by_app.items(), key=lambda kv: (-kv[1], kv[0]))),
        max_connections=max_connections,
        pool_size=pool,
    )


def _standby(s: Mapping[str, Any]) -> Standby:
    return Standby(
        name=sanitize_text(str(s.get("name") or ""), 64),
        client=sanitize_text(str(s.get("client") or ""), 64),
        state=sanitize_text(str(s.get("state") or ""), 32),
        sync_state=sanitize_text(str(s.get("sync_state") or ""), 16),
        write_lag_s=_as_float(s.get("write_lag")),
        flush_lag_s=_as_float(s.get("flush_lag")),
        replay_lag_s=_as_float(s.get("replay_lag")),
        replay_gap_bytes=_as_int(s.get("gap")),
    )


def _replica(r: Mapping[str, Any]) -> ReplicaStatus:
    return ReplicaStatus(
        receive_lsn=str(r["receive"]) if r.get("receive") else None,
        replay_lsn=str(r["replay"]) if r.get("replay") else None,
        gap_bytes=_as_int(r.get("gap")),
        lag_s=_as_float(r.get("lag")) or 0.0,
        replay_paused=bool(r.get("paused")),
        receiver=sanitize_text(str(r.get("receiver") or ""), 32),
    )
