"""Backups of the platform's database: ``pg_dump -Fc`` into the environment's backup dir,
verified with ``pg_restore --list``, described by a JSON sidecar; listing, RPO and retention.

A dump is written under a temporary name and only renamed to its final name once pg_dump
succeeded and pg_restore read its table of contents back: a failed or partial dump never looks
like a backup, and its file is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from backends.config.values import mask_dsn
from backends.db.tools import (
    ToolError,
    find_tool,
    libpq_env,
    server_version_tuple,
    tool_version,
)
from backends.sanitize import sanitize_text

SUFFIX = ".dump"
_PARTIAL = ".partial"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BackupError(Exception):
    """The backup did not happen (nothing was kept); ``str()`` is one line."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: str
    database: str
    environment: str
    reason: str  # the release id, "manual", or "safety" before a restore
    taken_at: float  # wall time the dump started
    duration_s: float
    size: int
    server_version: str
    dump_version: str
    start_lsn: str
    verified: bool
    entries: int  # pg_restore --list table-of-contents entries

    @property
    def name(self) -> str:
        return Path(self.path).name

    def age(self, now: float) -> float:
        return max(0.0, now - self.taken_at)


@dataclass(frozen=True, slots=True)
class Progress:
    bytes_written: int
    objects: int  # tables whose contents pg_dump --verbose has said it dumps
    last: str  # the last object named, sanitised


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
) -> Backup:
    """Dump, verify, keep; or raise BackupError having kept nothing."""
    pg_dump, pg_restore = find_tool("pg_dump", pg_bin), find_tool("pg_restore", pg_bin)
    try:
        dump_version = tool_version(pg_dump)
    except ToolError as exc:
        raise BackupError(str(exc)) from None
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
    t0 = time.monotonic()
    try:
        await _dump(pg_dump, dsn, partial, on_progress)
        entries = await _verify(pg_restore, partial)
        partial.chmod(0o600)  # the dump holds every table: the owner's eyes only
        partial.rename(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
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
    sidecar = _sidecar(final)
    sidecar.write_text(json.dumps(asdict(backup), indent=2))
    sidecar.chmod(0o600)
    return backup


async def _dump(
    pg_dump: Path, dsn: str, out: Path, on_progress: Callable[[Progress], None] | None
) -> None:
    with libpq_env(dsn) as env:
        proc = await asyncio.create_subprocess_exec(
            str(pg_dump),
            "--format=custom",
            "--verbose",
            "--no-password",
            f"--file={out}",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        objects, last, errors = 0, "", []
        try:
            async for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if "dumping contents of table" in line:
                    objects += 1
                    last = sanitize_text(line.rsplit("table", 1)[-1].strip(' "'), 80)
                elif "error:" in line or "FATAL" in line:
                    errors.append(line)
                if on_progress is not None:
                    size = out.stat().st_size if out.exists() else 0
                    on_progress(Progress(size, objects, last))
            code = await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
    if code != 0:
        why = errors[-1].split("error:", 1)[-1].strip() if errors else f"exit code {code}"
        raise BackupError(f"pg_dump failed: {one_line(why, dsn)}")


async def _verify(pg_restore: Path, dump: Path) -> int:
    proc = await asyncio.create_subprocess_exec(
        str(pg_restore),
        "--list",
        str(dump),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    entries = sum(
        1 for line in out.decode("utf-8", "replace").splitlines() if line and line[0] != ";"
    )
    if proc.returncode != 0 or entries == 0:
        why = (
            sanitize_text(err.decode("utf-8", "replace").strip().splitlines()[-1], 160)
            if err.strip()
            else "no entries"
        )
        raise BackupError(f"the dump did not verify (pg_restore --list: {why})")
    return entries


def list_backups(directory: Path) -> list[Backup]:
    """The backups in ``directory``, newest first; a dump without its sidecar (copied in by
    hand) is listed unverified from its file alone."""
    if not directory.is_dir():
        return []
    out: list[Backup] = []
    for dump in directory.glob(f"*{SUFFIX}"):
        try:
            data = json.loads(_sidecar(dump).read_text())
            backup = Backup(**data)
            if Path(backup.path).name != dump.name or backup.size != dump.stat().st_size:
                raise ValueError("the sidecar describes another file")
        except (OSError, ValueError, TypeError):
            st = dump.stat()
            backup = Backup(
                str(dump), "?", "?", "?", st.st_mtime, 0.0, st.st_size, "", "", "", False, 0
            )
        out.append(backup)
    return sorted(out, key=lambda b: b.taken_at, reverse=True)


def past_retention(backups: list[Backup], retention_s: float, now: float) -> list[Backup]:
    return [b for b in backups if b.age(now) > retention_s]


def remove_backup(backup: Backup) -> None:
    Path(backup.path).unlink(missing_ok=True)
    _sidecar(Path(backup.path)).unlink(missing_ok=True)
