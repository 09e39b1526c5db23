"""Backups of the platform's database: ``pg_dump -Fc`` into the environment's backup dir,
verified with ``pg_restore --list``, described by a JSON sidecar; listing, RPO and retention.

A dump is written under a temporary name and only renamed to its final name once pg_dump
succeeded and pg_restore read its table of contents back: a failed or partial dump never looks
like a backup, and its file is removed; so does a cancelled one (its child is killed and
waited for first).

Every connection is bounded: ``connect_timeout`` for bva's own and the tools' (through
PGCONNECT_TIMEOUT), and ``--lock-wait-timeout`` for pg_dump's share locks, so a backup behind a
long ALTER TABLE fails with a clear error instead of hanging a release.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import psycopg

from backends.config.values import mask_dsn

# Re-exported: the records live with the other restore models, callers name them here too.
from backends.db.restore_models import Backup as Backup
from backends.db.restore_models import Progress as Progress
from backends.db.tools import (
    ToolError,
    find_tool,
    first_error,
    libpq_env,
    reap,
    server_version_tuple,
    toc_listing,
    tool_version,
)
from backends.sanitize import sanitize_text

SUFFIX = ".dump"
_PARTIAL = ".partial"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BackupError(Exception):
    """The backup did not happen (nothing was kept); ``str()`` is one line."""


def backup_name(database: str, environment: str, taken_at: float, reason: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(taken_at))
    clean = _SAFE.sub("-", reason).strip("-") or "manual"
    return f"{_SAFE.sub('-', database)}-{_SAFE.sub('-', environment)}-{stamp}-{clean}{SUFFIX}"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


async def _server_facts(dsn: str, timeout: float) -> tuple[str, int, str, str]:
    """(database, server_version_num, server_version, current WAL LSN) in one round trip."""
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=max(1, round(timeout)), application_name="bva"
        ) as conn:
            cur = await conn.execute(
                "SELECT current_database(), current_setting('server_version_num')::int,"
                " current_setting('server_version'),"
                " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
                " ELSE pg_current_wal_insert_lsn()::text END"
            )
            row = await cur.fetchone()
    except psycopg.Error as exc:
        raise BackupError(f"cannot reach the database: {one_line(str(exc), dsn)}") from None
    assert row is not None
    return str(row[0]), int(row[1]), str(row[2]), str(row[3])


def one_line(text: str, dsn: str) -> str:
    password = None
    with contextlib.suppress(psycopg.ProgrammingError):
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    first = (text.strip().splitlines() or [""])[0]
    if password:
        first = first.replace(str(password), "***")
    return sanitize_text(mask_dsn(first), 200)


async def take_backup(
    dsn: str,
    directory: Path,
    *,
    environment: str,
    reason: str,
    pg_bin: str | None = None,
    connect_timeout: float = 5.0,
    on_progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.time,
    lock_wait_timeout: float = 30.0,
) -> Backup:
    """Dump, verify, keep; or raise BackupError having kept nothing."""
    try:
        return await _take_backup(
            dsn,
            directory,
            environment=environment,
            reason=reason,
            pg_bin=pg_bin,
            connect_timeout=connect_timeout,
            on_progress=on_progress,
            clock=clock,
            lock_wait_timeout=lock_wait_timeout,
        )
    except (ToolError, OSError, psycopg.Error) as exc:
        # Whatever the cause, the caller gets the one-line error it handles, not a traceback.
        raise BackupError(one_line(str(exc) or type(exc).__name__, dsn)) from None


async def _take_backup(
    dsn: str,
    directory: Path,
    *,
    environment: str,
    reason: str,
    pg_bin: str | None,
    connect_timeout: float,
    on_progress: Callable[[Progress], None] | None,
    clock: Callable[[], float],
    lock_wait_timeout: float,
) -> Backup:
    pg_dump, pg_restore = find_tool("pg_dump", pg_bin), find_tool("pg_restore", pg_bin)
    dump_version = tool_version(pg_dump)
    database, version_num, server_version, lsn = await _server_facts(dsn, connect_timeout)
    server = server_version_tuple(version_num)
    if dump_version[0] < server[0]:
        raise BackupError(
            f"pg_dump {dump_version[0]}.{dump_version[1]} is older than the server "
            f"({server_version}): it cannot dump it; set pg_bin to a newer client"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    taken_at = clock()
    final = directory / backup_name(database, environment, taken_at, reason)
    partial = final.with_name(final.name + _PARTIAL)
    sidecar = _sidecar(final)
    t0 = time.monotonic()
    try:
        await _dump(
            pg_dump,
            dsn,
            partial,
            on_progress,
            connect_timeout=connect_timeout,
            lock_wait_timeout=lock_wait_timeout,
        )
        entries = await _verify(pg_restore, partial)
        partial.chmod(0o600)  # the dump holds every table: the owner's eyes only
        partial.rename(final)
        backup = Backup(
            path=str(final),
            database=database,
            environment=environment,
            reason=reason,
            taken_at=taken_at,
            duration_s=time.monotonic() - t0,
            size=final.stat().st_size,
            server_version=server_version,
            dump_version=f"{dump_version[0]}.{dump_version[1]}",
            start_lsn=lsn,
            verified=True,
            entries=entries,
        )
        # Written to a private temporary first: a sidecar cut short would list the dump as
        # unverified, and one readable by others would tell them what the dump holds.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".sidecar-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(asdict(backup), indent=2))
            os.replace(tmp, sidecar)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except BaseException:
        # Nothing half-made stays: no dump without its sidecar, no partial file.
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise
    return backup


async def _dump(
    pg_dump: Path,
    dsn: str,
    out: Path,
    on_progress: Callable[[Progress], None] | None,
    *,
    connect_timeout: float,
    lock_wait_timeout: float,
) -> None:
    with libpq_env(dsn, connect_timeout=connect_timeout) as env:
        proc = await asyncio.create_subprocess_exec(
            str(pg_dump),
            "--format=custom",
            "--verbose",
            "--no-password",
            # Milliseconds without a unit: what every pg_dump version accepts.
            f"--lock-wait-timeout={max(1, round(lock_wait_timeout * 1000))}",
            f"--file={out}",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stderr is not None
            objects, last, errors, lock_wait = 0, "", [], False
            async for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if "dumping contents of table" in line:
                    objects += 1
                    last = sanitize_text(line.rsplit("table", 1)[-1].strip(' "'), 80)
                elif "error:" in line or "FATAL" in line:
                    errors.append(line)
                elif "Query was: LOCK TABLE" in line:
                    lock_wait = True  # pg_dump times its lock wait out as a statement timeout
                if on_progress is not None:
                    size = out.stat().st_size if out.exists() else 0
                    on_progress(Progress(size, objects, last))
            code = await proc.wait()
        finally:
            await reap(proc)
    if code != 0:
        why = first_error(errors, "error:") or (errors[0] if errors else f"exit code {code}")
        if lock_wait:
            why += f" (a table's lock was not granted within {lock_wait_timeout:g}s)"
        raise BackupError(f"pg_dump failed: {one_line(why, dsn)}")


async def _verify(pg_restore: Path, dump: Path) -> int:
    code, out, err = await toc_listing(pg_restore, dump)
    entries = sum(1 for line in out if line and line[0] != ";")
    if code != 0 or entries == 0:
        why = first_error(err, "error:") or (err[0] if err else "no entries")
        raise BackupError(f"the dump did not verify (pg_restore --list: {sanitize_text(why, 160)})")
    return entries


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "database": str,
    "environment": str,
    "reason": str,
    "taken_at": (int, float),
    "duration_s": (int, float),
    "size": int,
    "server_version": str,
    "dump_version": str,
    "start_lsn": str,
    "verified": bool,
    "entries": int,
}


def _from_sidecar(dump: Path) -> Backup:
    """The backup its sidecar describes, at the dump's own path: the sidecar's ``path`` is
    never followed, so a sidecar copied in (or written by someone else) cannot make bva
    restore or delete a file outside this directory."""
    data = json.loads(_sidecar(dump).read_text())
    if not isinstance(data, dict):
        raise ValueError("the sidecar is not an object")
    recorded = data.pop("path", None)
    if not isinstance(recorded, str) or Path(recorded).name != dump.name:
        raise ValueError("the sidecar describes another file")
    if set(data) != set(_FIELD_TYPES) or any(
        not isinstance(data[k], t) or (t is int and isinstance(data[k], bool))
        for k, t in _FIELD_TYPES.items()
    ):
        raise ValueError("the sidecar does not have a backup's fields")
    backup = Backup(path=str(dump), **data)
    if backup.size != dump.stat().st_size:
        raise ValueError("the dump is not the size its sidecar says")
    return backup


def list_backups(directory: Path) -> list[Backup]:
    """The backups in ``directory``, newest first; a dump without its sidecar (copied in by
    hand), or whose sidecar does not describe it, is listed unverified from its file alone."""
    if not directory.is_dir():
        return []
    out: list[Backup] = []
    for dump in directory.glob(f"*{SUFFIX}"):
        try:
            backup = _from_sidecar(dump)
        except (OSError, ValueError, TypeError):
            try:
                st = dump.stat()
            except OSError:
                continue  # removed while we looked
            backup = Backup(
                str(dump), "?", "?", "?", st.st_mtime, 0.0, st.st_size, "", "", "", False, 0
            )
        out.append(backup)
    return sorted(out, key=lambda b: b.taken_at, reverse=True)


def newest_verified(backups: list[Backup]) -> Backup | None:
    return max((b for b in backups if b.verified), key=lambda b: b.taken_at, default=None)


def past_retention(backups: list[Backup], retention_s: float, now: float) -> list[Backup]:
    """The backups older than the retention, except the newest verified one: however old,
    it is the only way back, and pruning it would leave nothing to restore."""
    keep = newest_verified(backups)
    return [b for b in backups if b.age(now) > retention_s and b is not keep]


def remove_backup(backup: Backup) -> None:
    Path(backup.path).unlink(missing_ok=True)
    _sidecar(Path(backup.path)).unlink(missing_ok=True)
