"""Restoring the database from a backup: the plan (what will be lost, who is connected), and
the guarded execution — a fresh safety backup first, the application's connections drained,
``pg_restore --clean --if-exists --single-transaction`` into the same database, then a check.

Restored in place in one transaction rather than into a new database and swapped: the swap
needs a rename while nobody is connected plus the owner's CREATEDB right, and leaves the
services' grants and the replicas' slots to redo by hand; in one transaction a failed restore
changes nothing (PostgreSQL rolls it back whole), and the replicas replay it like any write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from backends.db.backup import Backup, BackupError, one_line, take_backup
from backends.db.tools import find_tool, libpq_env
from backends.sanitize import sanitize_text


class RestoreError(Exception):
    """The restore did not run or was rolled back; ``str()`` is one line."""


@dataclass(frozen=True, slots=True)
class Connected:
    application: str
    sessions: int


@dataclass(frozen=True, slots=True)
class RestorePlan:
    database: str
    environment: str
    backup: Backup
    wal_since_backup: int | None  # bytes of WAL written since the backup began; None: unknown
    connected: tuple[Connected, ...]  # the application's sessions on the database now
    replicas: int

    @property
    def confirmation_text(self) -> str:
        return f"{self.database}@{self.environment}"

    @property
    def drained(self) -> bool:
        return not self.connected

    def loss_words(self, now: float) -> str:
        age = max(0.0, now - self.backup.taken_at)
        lost = f"every write of the last {int(age // 60)} min {int(age % 60)} s"
        if self.wal_since_backup is None:
            return f"{lost} (how much: unknown)"
        return f"{lost} ({self.wal_since_backup:,} bytes of WAL since the backup began)"


_PLAN_SQL = """
SELECT current_database(),
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)::bigint END,
       (SELECT count(*) FROM pg_stat_replication),
       coalesce((SELECT json_agg(json_build_object('app', app, 'n', n)) FROM (
           SELECT coalesce(nullif(application_name, ''), '(none)') AS app, count(*) AS n
             FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              -- Another role's backend_type reads NULL without pg_read_all_stats.
              AND coalesce(backend_type, 'client backend') = 'client backend'
            GROUP BY 1 ORDER BY 2 DESC, 1) s), '[]')
"""


async def plan_restore(dsn: str, backup: Backup, environment: str) -> RestorePlan:
    if not backup.verified:
        raise RestoreError(f"{backup.name} was never verified: bva restores only verified backups")
    if not Path(backup.path).is_file():
        raise RestoreError(f"{backup.name}: the file is gone")
    lsn = backup.start_lsn or "0/0"
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=5, application_name="bva"
        ) as conn:
            cur = await conn.execute(_PLAN_SQL, (lsn,))
            row = await cur.fetchone()
    except psycopg.Error as exc:
        raise RestoreError(f"cannot reach the database: {one_line(str(exc), dsn)}") from None
    assert row is not None
    database, wal, replicas, connected = row
    if backup.database not in ("?", database):
        raise RestoreError(f"{backup.name} is a backup of {backup.database}, not of {database}")
    return RestorePlan(
        database=str(database),
        environment=environment,
        backup=backup,
        wal_since_backup=int(wal) if wal is not None and backup.start_lsn else None,
        connected=tuple(
            Connected(sanitize_text(str(c["app"]), 64), int(c["n"])) for c in connected
        ),
        replicas=int(replicas or 0),
    )


@dataclass(frozen=True, slots=True)
class RestoreResult:
    safety: Backup
    duration_s: float
    tables: tuple[tuple[str, int], ...]  # schema.table -> rows, after the restore


async def restore(
    plan: RestorePlan,
    dsn: str,
    directory: Path,
    *,
    pg_bin: str | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> RestoreResult:
    """Safety backup, restore, check. Refuses while the application is connected."""
    fresh = await plan_restore(dsn, plan.backup, plan.environment)
    if not fresh.drained:
        who = ", ".join(f"{c.application} ({c.sessions})" for c in fresh.connected)
        raise RestoreError(f"the application is still connected: {who}; drain it first")
    on_step("safety backup")
    try:
        safety = await take_backup(
            dsn,
            directory,
            environment=plan.environment,
            reason="safety-before-restore",
            pg_bin=pg_bin,
        )
    except BackupError as exc:
        raise RestoreError(f"no safety backup, so no restore: {exc}") from None
    on_step(f"safety backup {safety.name} ({safety.size} bytes)")
    on_step(f"restoring {plan.backup.name}")
    t0 = time.monotonic()
    await _pg_restore(find_tool("pg_restore", pg_bin), dsn, Path(plan.backup.path), plan.database)
    duration = time.monotonic() - t0
    on_step(f"restored in {duration:.1f}s; checking")
    return RestoreResult(safety, duration, await _table_rows(dsn))


async def _pg_restore(pg_restore: Path, dsn: str, dump: Path, database: str) -> None:
    with libpq_env(dsn) as env:
        proc = await asyncio.create_subprocess_exec(
            str(pg_restore),
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={database}",
            str(dump),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
    if proc.returncode != 0:
        lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        raise RestoreError(f"pg_restore failed, nothing was changed: {one_line(why, dsn)}")


async def _table_rows(dsn: str) -> tuple[tuple[str, int], ...]:
    """Exact row counts of every user table (the check a human would run by hand)."""
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, connect_timeout=5, application_name="bva"
    ) as conn:
        cur = await conn.execute(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1"
        )
        names = [str(r[0]) for r in await cur.fetchall()]
        out = []
        for name in names:
            count = await (await conn.execute(f"SELECT count(*) FROM {name}")).fetchone()
            out.append((name, int(count[0]) if count else 0))
    return tuple(out)
