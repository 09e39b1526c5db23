"""A deterministic database picture behind the DatabaseSource contract, for screen snapshots
only (the adapter itself is tested against real PostgreSQL servers)."""

from __future__ import annotations

from backends.db.models import (
    Connections,
    DatabasePicture,
    Flyway,
    Migration,
    MigrationState,
    Problem,
    ReplicaStatus,
    Role,
    ServerReading,
    ServerState,
    Session,
    Standby,
)

POOL = 20
_APPS = (("tweet-service", 4), ("auth-service", 3), ("user-service", 2))


def _sessions(idle_extra: int = 0, *, blocked: bool = False) -> tuple[Session, ...]:
    out: list[Session] = []
    pid = 4100
    for app, n in _APPS:
        for i in range(n):
            pid += 1
            active = i == 0
            out.append(
                Session(
                    pid=pid,
                    application=app,
                    user="bharathva_app",
                    state="active" if active else "idle",
                    wait="",
                    query_s=1.8 - 0.4 * len(out) if active else 12.0,
                    xact_s=1.8 if active else None,
                    query=f"SELECT * FROM {app.split('-')[0]}s WHERE id = $1"
                    if active
                    else "COMMIT",
                    blocked_by=(),
                )
            )
    if blocked:
        out.append(
            Session(
                4200,
                "auth-service",
                "bharathva_app",
                "active",
                "Lock:transactionid",
                4.2,
                4.3,
                "UPDATE auth.sessions SET seen_at = now() WHERE id = $1",
                (4102,),
            )
        )
    for i in range(idle_extra):
        out.append(
            Session(
                4300 + i,
                "drill-idle",
                "postgres",
                "idle",
                "Client:ClientRead",
                30.0,
                None,
                "SELECT 1",
                (),
            )
        )
    return tuple(out)


def _connections(sessions: tuple[Session, ...]) -> Connections:
    by_app: dict[str, int] = {}
    for s in sessions:
        by_app[s.application] = by_app.get(s.application, 0) + 1
    return Connections(
        total=len(sessions),
        active=sum(s.state == "active" for s in sessions),
        idle=sum(s.state == "idle" for s in sessions),
        idle_in_transaction=0,
        waiting=sum(s.waiting for s in sessions),
        by_application=tuple(sorted(by_app.items(), key=lambda kv: (-kv[1], kv[0]))),
        max_connections=100,
        pool_size=POOL,
    )


def _flyway(failed: bool) -> Flyway:
    rows = [
        ("1", "create auth schema"),
        ("2", "create users schema"),
        ("3", "create tweets schema"),
        ("4", "add likes"),
        ("5", "sessions index"),
        ("6", "profiles bio"),
    ]
    migrations = [
        Migration(
            v,
            d,
            "SQL",
            f"V{v}__{d.replace(' ', '_')}.sql",
            MigrationState.SUCCESS,
            int(v),
            1_799_000_000.0 + int(v) * 3600,
            40 + int(v),
        )
        for v, d in rows
    ]
    if failed:
        migrations.append(
            Migration(
                "7",
                "tweets hashtags",
                "SQL",
                "V7__tweets_hashtags.sql",
                MigrationState.FAILED,
                7,
                1_799_990_000.0,
                1250,
            )
        )
    else:
        migrations.append(
            Migration(
                "7", "tweets hashtags", "SQL", "V7__tweets_hashtags.sql", MigrationState.PENDING
            )
        )
    return Flyway(tuple(migrations), files_read=True)


def database_picture(now: float, *, degraded: bool = False) -> DatabasePicture:
    sessions = _sessions(idle_extra=9 if degraded else 0, blocked=degraded)
    lag1 = 4.6 if degraded else 0.02
    primary_problems: tuple[Problem, ...] = ()
    if degraded:
        primary_problems = (
            Problem("connections 19/20 = 95% of the pool (over 80%)"),
            Problem("failed migration: 7", critical=True),
        )
    primary = ServerReading(
        name="primary",
        role=Role.PRIMARY,
        target="127.0.0.1:5432/bharathva",
        state=ServerState.DEGRADED if degraded else ServerState.UP,
        problems=primary_problems,
        error=None,
        last_good=now - 1,
        version="18.1",
        started_at=now - 7200,
        in_recovery=False,
        connections=_connections(sessions),
        sessions=sessions,
        standbys=(
            Standby(
                "replica-1",
                "127.0.0.1",
                "streaming",
                "async",
                0.001,
                0.002,
                lag1,
                48_000_000 if degraded else 1_024,
            ),
            Standby("replica-2", "127.0.0.1", "streaming", "async", 0.001, 0.001, 0.01, 512),
        ),
        flyway=_flyway(failed=degraded),
        lag_history=(0.01, 0.02, 0.5, 1.2, 2.4, 3.1, 4.0, lag1) if degraded else (0.02,) * 8,
        round_trip_ms=1.9,
    )
    replica_sessions = _sessions()[:4]
    r1 = ServerReading(
        name="replica-1",
        role=Role.REPLICA,
        target="127.0.0.1:5433/bharathva",
        state=ServerState.DEGRADED if degraded else ServerState.UP,
        problems=(Problem("replay paused"), Problem(f"replication lag {lag1:.1f}s (over 1s)"))
        if degraded
        else (),
        error=None,
        last_good=now - 1,
        version="18.1",
        in_recovery=True,
        connections=_connections(replica_sessions),
        sessions=replica_sessions,
        replica=ReplicaStatus(
            "0/5A000000",
            "0/571E0000" if degraded else "0/5A000000",
            48_000_000 if degraded else 0,
            lag1,
            degraded,
            "streaming",
        ),
        lag_history=(0.01, 0.02, 0.5, 1.2, 2.4, 3.1, 4.0, lag1) if degraded else (0.0,) * 8,
        round_trip_ms=1.4,
    )
    r2_up = ServerReading(
        name="replica-2",
        role=Role.REPLICA,
        target="127.0.0.1:5434/bharathva",
        state=ServerState.UP,
        problems=(),
        error=None,
        last_good=now - 1,
        version="18.1",
        in_recovery=True,
        connections=_connections(replica_sessions[:2]),
        sessions=replica_sessions[:2],
        replica=ReplicaStatus("0/5A000000", "0/5A000000", 0, 0.0, False, "streaming"),
        lag_history=(0.0,) * 8,
        round_trip_ms=1.3,
    )
    r2 = r2_up
    if degraded:
        why = "Connection refused"
        r2 = ServerReading(
            name="replica-2",
            role=Role.REPLICA,
            target=r2_up.target,
            state=ServerState.DOWN,
            problems=(Problem(f"unreachable: {why}", critical=True),),
            error=why,
            last_good=now - 75,
            version="18.1",
            in_recovery=True,
            connections=r2_up.connections,
            replica=r2_up.replica,
            lag_history=(0.0,) * 8,
        )
    return DatabasePicture((primary, r1, r2), POOL, 80.0, 1.0, now)


class FakeDatabase:
    def __init__(self, now: float, *, degraded: bool = False) -> None:
        self._picture = database_picture(now, degraded=degraded)
        self.refreshes = 0

    async def refresh(self) -> DatabasePicture:
        self.refreshes += 1
        return self._picture

    async def aclose(self) -> None:
        return None
