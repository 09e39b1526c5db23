"""The database picture: one immutable reading of every server, as screens and the CLI see it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"


class ServerState(enum.StrEnum):
    UP = "up"  # answered, and in the role the platform file gives it
    DEGRADED = "degraded"  # answered, but lagging, not streaming, paused or in the wrong role
    DOWN = "down"  # no answer


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a server is not UP, one line; critical ones (unreachable, not streaming, wrong
    role, a failed migration) page someone, the others (over a threshold) warn."""

    text: str
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """One client backend from pg_stat_activity (bva's own connection excluded)."""

    pid: int
    application: str
    user: str
    state: str  # active, idle, idle in transaction, ... ("" when hidden from this role)
    wait: str  # "Lock:transactionid", "" when not waiting
    query_s: float | None  # seconds since the current (or last) query started
    xact_s: float | None  # seconds since the transaction started
    query: str  # truncated, sanitised; "<insufficient privilege>" without pg_monitor
    blocked_by: tuple[int, ...]
    database: str = ""

    @property
    def waiting(self) -> bool:
        return self.wait.split(":", 1)[0] in ("Lock", "LWLock", "BufferPin")


@dataclass(frozen=True, slots=True)
class Connections:
    total: int
    active: int
    idle: int
    idle_in_transaction: int
    waiting: int
    by_application: tuple[tuple[str, int], ...]  # most first
    max_connections: int
    pool_size: int

    @property
    def pool_pct(self) -> float:
        return 100.0 * self.total / self.pool_size if self.pool_size else 0.0

    @property
    def max_pct(self) -> float:
        return 100.0 * self.total / self.max_connections if self.max_connections else 0.0


@dataclass(frozen=True, slots=True)
class Standby:
    """A standby as the primary sees it (pg_stat_replication)."""

    name: str  # application_name
    client: str
    state: str  # streaming, catchup, ...
    sync_state: str
    write_lag_s: float | None  # None: no WAL to replay lately ("no traffic"), not broken
    flush_lag_s: float | None
    replay_lag_s: float | None
    replay_gap_bytes: int | None  # pg_wal_lsn_diff(current, replay)


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """What a standby says about itself."""

    receive_lsn: str | None
    replay_lsn: str | None
    gap_bytes: int | None  # received but not yet replayed
    lag_s: float  # 0 when everything received is replayed, else since the last replay
    replay_paused: bool
    receiver: str  # pg_stat_wal_receiver.status, "" when no receiver runs


class MigrationState(enum.StrEnum):
    """The states `flyway info` prints, for the ones bva can tell."""

    SUCCESS = "Success"
    FAILED = "Failed"
    PENDING = "Pending"
    BASELINE = "Baseline"
    MISSING = "Missing"  # applied, but no file for it
    FUTURE = "Future"  # applied, newer than every file
    OUTDATED = "Outdated"  # a repeatable whose file changed
    IGNORED = "Ignored"  # a file older than the newest applied version, never applied
    DELETED = "Deleted"


@dataclass(frozen=True, slots=True)
class Migration:
    version: str | None  # None for repeatables
    description: str
    type: str
    script: str
    state: MigrationState
    installed_rank: int | None = None  # None when pending
    installed_on: float | None = None
    execution_ms: int | None = None
    checksum: int | None = None  # the history row's
    file_checksum: int | None = None  # the file's, computed as Flyway does; None without one


@dataclass(frozen=True, slots=True)
class Flyway:
    migrations: tuple[Migration, ...]  # installed_rank order, then the pending ones
    files_read: bool  # the platform file named a migrations directory and it was read

    @property
    def applied(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.migrations if m.installed_rank is not None)

    @property
    def failed(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.migrations if m.state is MigrationState.FAILED)

    @property
    def pending(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.migrations if m.state is MigrationState.PENDING)

    @property
    def problems(self) -> tuple[str, ...]:
        """What `flyway validate` would fail on (future versions and pending ones it accepts)."""
        out: list[str] = []
        for m in self.migrations:
            name = m.version or f"repeatable {m.description!r}"
            if m.state is MigrationState.FAILED:
                out.append(f"{name}: failed")
            elif m.state is MigrationState.MISSING:
                out.append(f"{name}: applied, but its file is missing")
            elif m.state is MigrationState.IGNORED:
                out.append(f"{name}: never applied, older than the newest applied version")
            elif (
                m.version is not None
                and m.checksum is not None
                and m.file_checksum is not None
                and m.checksum != m.file_checksum
            ):
                out.append(
                    f"{name}: checksum mismatch (applied {m.checksum}, file {m.file_checksum})"
                )
        return tuple(out)

    @property
    def latest(self) -> Migration | None:
        done = [
            m
            for m in self.applied
            if m.version is not None and m.state is not MigrationState.FAILED
        ]
        return done[-1] if done else None


@dataclass(frozen=True, slots=True)
class ServerReading:
    """One server's latest answer, or why there is none (with the last good one kept)."""

    name: str  # "primary", "replica-1", ...
    role: Role
    target: str  # host:port/dbname, never the password
    state: ServerState
    problems: tuple[Problem, ...]  # why it is not UP
    error: str | None  # the last refresh's failure; None when it answered
    last_good: float | None  # wall time of the last answer
    version: str = ""
    started_at: float | None = None
    in_recovery: bool | None = None
    connections: Connections | None = None
    sessions: tuple[Session, ...] = ()
    standbys: tuple[Standby, ...] = ()
    replica: ReplicaStatus | None = None
    flyway: Flyway | None = None
    missing: tuple[str, ...] = ()  # what this role may not read (no pg_monitor, ...)
    lag_history: tuple[float, ...] = ()
    round_trip_ms: float | None = None

    @property
    def problem_texts(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.problems)

    @property
    def lag_s(self) -> float | None:
        """The replication lag bva judges: a replica's own, or the worst standby's replay lag."""
        if self.replica is not None:
            # Not streaming, a replica has replayed all it received and reads 0 s behind
            # while the primary moves on: its lag is then unknown, not zero.
            return self.replica.lag_s if self.replica.receiver == "streaming" else None
        lags = [s.replay_lag_s for s in self.standbys if s.replay_lag_s is not None]
        return max(lags) if lags else None

    @property
    def gap_bytes(self) -> int | None:
        if self.replica is not None:
            return self.replica.gap_bytes
        gaps = [s.replay_gap_bytes for s in self.standbys if s.replay_gap_bytes is not None]
        return max(gaps) if gaps else None

    @property
    def blocked(self) -> tuple[Session, ...]:
        return tuple(s for s in self.sessions if s.blocked_by)


@dataclass(frozen=True, slots=True)
class DatabasePicture:
    servers: tuple[ServerReading, ...]
    pool_size: int
    connections_pct_limit: float
    lag_limit_s: float
    taken_at: float
    problems: tuple[str, ...] = field(default=())

    @property
    def primary(self) -> ServerReading | None:
        return next((s for s in self.servers if s.role is Role.PRIMARY), None)

    @property
    def replicas(self) -> tuple[ServerReading, ...]:
        return tuple(s for s in self.servers if s.role is Role.REPLICA)

    @property
    def flyway(self) -> Flyway | None:
        p = self.primary
        return p.flyway if p is not None else None

    @property
    def ok(self) -> bool:
        return all(s.state is ServerState.UP for s in self.servers) and not self.problems


def human_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def flyway_words(f: Flyway | None) -> str:
    if f is None:
        return "no flyway_schema_history"
    latest = f.latest
    parts = [f"latest {latest.version}" if latest else "nothing applied"]
    parts.append(f"{len(f.pending)} pending" if f.files_read else "pending unknown")
    if f.failed:
        parts.append(f"{len(f.failed)} FAILED ({', '.join(m.version or '?' for m in f.failed)})")
    return ", ".join(parts)
