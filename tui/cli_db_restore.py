"""`bva db restore BACKUP [--scale-down] [--yes]`: the guarded restore. It prints the plan
(which database, which backup, what will be lost, who is connected, that the replicas follow),
asks for `<database>@<environment>` typed, drains the application (with `--scale-down`, the
connected services go to 0 replicas and come back afterwards), takes a safety backup, restores
in one transaction and shows the row counts. Every step is journalled."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from backends.sanitize import sanitize_text

if TYPE_CHECKING:
    from backends.db.admin import DatabaseAdmin
    from backends.db.restore_models import Backup, RestoreEvent, RestorePlan
    from backends.journal.store import Journal
    from backends.platform import Platform

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def cmd_db_restore(args: argparse.Namespace) -> int:
    from tui.cli_platform import run_on_platform

    async def work(platform: Platform) -> int:
        return await _restore(platform, args)

    return run_on_platform(args, work, read_only=args.read_only, unopened=EXIT_FAIL)


def find_backup(admin: DatabaseAdmin, given: str) -> Backup | None:
    from backends.db.backup import list_backups

    backups = list_backups(admin.backup_dir)
    if given == "latest":
        return next((b for b in backups if b.verified), None)
    path = Path(given).expanduser()
    for b in backups:
        if b.name == given or Path(b.path) == path:
            return b
    if path.is_file():
        return next((b for b in list_backups(path.parent) if Path(b.path) == path), None)
    return None


async def _restore(platform: Platform, args: argparse.Namespace) -> int:
    from backends.db.backup import BackupError
    from backends.db.restore import RestoreError
    from backends.errors import BvaError
    from backends.journal.records import JournalError

    try:
        return await _guarded(platform, args)
    except (RestoreError, BackupError, BvaError, JournalError, OSError) as exc:
        # The backends say what went wrong in one line; the CLI never shows a traceback.
        print(f"bva: restore failed: {sanitize_text(str(exc), 300)}", file=sys.stderr)
        return EXIT_FAIL


async def _guarded(platform: Platform, args: argparse.Namespace) -> int:
    from backends.config.values import ConfigError
    from backends.db.restore import RestoreError, plan_restore
    from backends.errors import ReadOnlyError

    admin = platform.database_admin
    if admin is None:
        print(f"bva: environment {platform.env_name} has no database", file=sys.stderr)
        return EXIT_USAGE
    try:
        dsn = admin.dsn("restore")
    except (ReadOnlyError, ConfigError) as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAIL
    backup = find_backup(admin, args.backup)
    if backup is None:
        print(
            f"bva: no backup {sanitize_text(args.backup, 120)} in {admin.backup_dir}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        plan = await plan_restore(dsn, backup, admin.environment)
    except RestoreError as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print_plan(plan, platform, scale_down=args.scale_down)
    if not plan.drained and not args.scale_down:
        print(
            "bva: the application is connected; drain it (or pass --scale-down): "
            "nothing was changed",
            file=sys.stderr,
        )
        return EXIT_FAIL
    if not args.yes:
        text = plan.confirmation_text
        try:
            typed = await asyncio.to_thread(input, f"type {text} to restore: ")
        except EOFError:
            typed = ""
        if typed.strip() != text:
            print("bva: not confirmed; nothing was changed", file=sys.stderr)
            return EXIT_FAIL
    return await _execute(platform, admin, plan, dsn, scale_down=args.scale_down)


def print_plan(plan: RestorePlan, platform: Platform, *, scale_down: bool) -> None:
    now = time.time()
    b = plan.backup
    print(f"restore {plan.database}@{plan.environment}")
    print(f"  from    {b.name}")
    minutes = int((now - b.taken_at) // 60)
    print(
        f"          taken {minutes} min ago for {sanitize_text(b.reason, 60)},"
        f" {b.size:,} bytes, server {b.server_version}, verified"
    )
    print(f"  loses   {plan.loss_words(now)}")
    print(f"  replicas ({plan.replicas}) follow the primary: they replay the restore")
    if plan.connected:
        who = ", ".join(f"{c.application} ({c.sessions})" for c in plan.connected)
        services = _services_of(plan, platform)
        print(f"  connected: {who}")
        if scale_down:
            print(f"  drains by scaling to 0 and back afterwards: {', '.join(services) or 'none'}")
    else:
        print("  connected: nobody")
    print("  new connections are refused until it is done; first a safety backup of the")
    print("  database as it is now; the restore is one transaction (pg_restore --clean")
    print("  --if-exists --single-transaction, and tables created since the backup are")
    print("  dropped): it all lands or nothing changes")


def _services_of(plan: RestorePlan, platform: Platform) -> list[str]:
    from backends.db.restore_flow import connected_services

    return connected_services(plan, dict(platform.services()))


def _journal(admin: DatabaseAdmin) -> Journal:
    from backends.journal.store import Journal, journal_path

    return Journal(journal_path(admin.environment), admin.environment)


def print_event(event: RestoreEvent) -> None:
    from backends.db.restore_models import EventLevel

    if event.level is EventLevel.ERROR:
        print(f"bva: {event.text}", file=sys.stderr)
    else:
        print(f"  {event.text}")


async def _execute(
    platform: Platform, admin: DatabaseAdmin, plan: RestorePlan, dsn: str, *, scale_down: bool
) -> int:
    from backends.db.restore_flow import run_restore

    outcome = await run_restore(
        platform.orchestrator,
        dict(platform.services()),
        admin,
        plan,
        dsn,
        _journal(admin),
        scale_down=scale_down,
        on_event=print_event,
    )
    if outcome.result is None:
        return EXIT_FAIL
    for table, n in outcome.result.tables:
        print(f"  {table:<40} {n:>10,} rows")
    print(f"restored {plan.database}@{plan.environment} from {plan.backup.name}")
    # A service left at 0 is a failure even though the data is back: somebody must act.
    return EXIT_OK if outcome.ok else EXIT_FAIL
