"""`bva db backup`, `bva db backups [--json]`, `bva db prune [--yes]`: pg_dump backups of the
platform's database in the environment's backup dir, against its RPO and retention. Every
backup and removal is journalled; read-only refuses before a secret is read."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING

from backends.sanitize import sanitize_text

if TYPE_CHECKING:
    from backends.db.admin import DatabaseAdmin
    from backends.db.restore_models import Backup, Progress
    from backends.journal.store import Journal
    from backends.platform import Platform

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _size(n: int) -> str:
    from backends.db.models import human_bytes

    return human_bytes(n)


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def cmd_db_backup(args: argparse.Namespace) -> int:
    from tui.cli_platform import run_on_platform

    async def work(platform: Platform) -> int:
        admin = platform.database_admin
        if admin is None:
            print(f"bva: environment {platform.env_name} has no database", file=sys.stderr)
            return EXIT_USAGE
        if args.db_command == "backup":
            return await _backup(admin, args.reason)
        if args.db_command == "backups":
            return _list(admin, as_json=args.json)
        return await _prune(admin, yes=args.yes)

    return run_on_platform(args, work, read_only=args.read_only, unopened=EXIT_FAIL)


def _journal(admin: DatabaseAdmin) -> Journal:
    from backends.journal.store import Journal, journal_path

    return Journal(journal_path(admin.environment), admin.environment)


async def _backup(admin: DatabaseAdmin, reason: str) -> int:
    from backends.config.values import ConfigError
    from backends.db.backup import BackupError, take_backup
    from backends.errors import ReadOnlyError
    from backends.journal.records import JournalError

    try:
        dsn = admin.dsn("backup")
    except (ReadOnlyError, ConfigError) as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAIL
    tty = sys.stderr.isatty()

    def progress(p: Progress) -> None:
        if tty:
            line = f"\r  {_size(p.bytes_written):>9}  {p.objects} tables  {p.last[:40]:<40}"
            print(line, end="", file=sys.stderr, flush=True)

    target = f"database@{admin.environment}"
    try:
        async with _journal(admin).arecord(
            "db.backup", target, {"reason": sanitize_text(reason, 80)}
        ) as entry:
            backup = await take_backup(
                dsn,
                admin.backup_dir,
                environment=admin.environment,
                reason=reason,
                pg_bin=admin.pg_bin,
                on_progress=progress,
            )
            entry.details.update(
                path=backup.path,
                size=backup.size,
                duration_s=round(backup.duration_s, 2),
                server_version=backup.server_version,
                start_lsn=backup.start_lsn,
                entries=backup.entries,
            )
    except (BackupError, JournalError) as exc:
        if tty:
            print(file=sys.stderr)
        print(f"bva: backup failed: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if tty:
        print(file=sys.stderr)
    print(
        f"backup {backup.path}: {_size(backup.size)} in {backup.duration_s:.1f}s, "
        f"verified ({backup.entries} entries), server {backup.server_version}, "
        f"WAL {backup.start_lsn}"
    )
    return EXIT_OK


def _list(admin: DatabaseAdmin, *, as_json: bool) -> int:
    from dataclasses import asdict

    from backends.db.backup import list_backups

    now = time.time()
    backups = list_backups(admin.backup_dir)
    fresh = next((b for b in backups if b.verified), None)
    within_rpo = fresh is not None and fresh.age(now) <= admin.rpo_s
    if as_json:
        doc = {
            "schema": "bva.db.backups/v1",
            "environment": admin.environment,
            "directory": str(admin.backup_dir),
            "rpo_s": admin.rpo_s,
            "retention_s": admin.retention_s,
            "within_rpo": within_rpo,
            "backups": [
                {**asdict(b), "age_s": round(b.age(now), 1), "past_retention": _old(b, admin, now)}
                for b in backups
            ],
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK if within_rpo else EXIT_FAIL
    print(f"backups of {admin.environment} in {admin.backup_dir}")
    rows = [("AGE", "SIZE", "VERIFIED", "REASON", "FILE")]
    for b in backups:
        mark = "✔" if b.verified else "✖ no"
        old = " (past retention)" if _old(b, admin, now) else ""
        rows.append(
            (_age(b.age(now)), _size(b.size), mark, sanitize_text(b.reason, 40), b.name + old)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if fresh is None:
        print(f"! no verified backup: the RPO ({_age(admin.rpo_s)}) is not met")
    elif not within_rpo:
        print(
            f"! the freshest verified backup is {_age(fresh.age(now))} old, "
            f"older than the RPO ({_age(admin.rpo_s)})"
        )
    else:
        print(f"✔ freshest verified backup {_age(fresh.age(now))} old, within the RPO")
    return EXIT_OK if within_rpo else EXIT_FAIL


def _old(b: Backup, admin: DatabaseAdmin, now: float) -> bool:
    return b.age(now) > admin.retention_s


async def _prune(admin: DatabaseAdmin, *, yes: bool) -> int:
    from backends.db.backup import list_backups, newest_verified, past_retention, remove_backup
    from backends.journal.records import JournalError

    if admin.read_only:
        print("bva: read-only: prune refused", file=sys.stderr)
        return EXIT_FAIL
    now = time.time()
    backups = list_backups(admin.backup_dir)
    old = past_retention(backups, admin.retention_s, now)
    keep = newest_verified(backups)
    if keep is not None and _old(keep, admin, now):
        print(
            f"keeping {keep.name} ({_age(keep.age(now))} old, past the retention): "
            "it is the newest verified backup"
        )
    if not old:
        print(f"nothing past the retention ({_age(admin.retention_s)}) in {admin.backup_dir}")
        return EXIT_OK
    for b in old:
        print(f"  {b.name}  {_size(b.size)}  {_age(b.age(now))} old")
    if not yes:
        text = f"prune@{admin.environment}"
        try:
            typed = await asyncio.to_thread(input, f"type {text} to remove {len(old)}: ")
        except EOFError:
            typed = ""
        if typed.strip() != text:
            print("bva: not confirmed; nothing was removed", file=sys.stderr)
            return EXIT_FAIL
    try:
        async with _journal(admin).arecord(
            "db.prune", f"backups@{admin.environment}", {"files": [b.name for b in old]}
        ):
            for b in old:
                remove_backup(b)
    except (JournalError, OSError) as exc:
        print(f"bva: {sanitize_text(str(exc), 300)}", file=sys.stderr)
        return EXIT_FAIL
    print(f"removed {len(old)} backup(s) past the retention")
    return EXIT_OK
