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
    from backends.db.backup import Backup
    from backends.db.restore import RestorePlan
    from backends.journal.store import Journal
    from backends.platform import Platform

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DRAIN_TIMEOUT_S = 120.0


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
    return await _execute(platform, admin, plan, dsn)


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
    print("  first a safety backup of the database as it is now; the restore is one")
    print("  transaction (pg_restore --clean --if-exists --single-transaction): it all lands or")
    print("  nothing changes")


def _services_of(plan: RestorePlan, platform: Platform) -> list[str]:
    names = {s for s, _ in platform.services()}
    return [c.application for c in plan.connected if c.application in names]


def _journal(admin: DatabaseAdmin) -> Journal:
    from backends.journal.store import Journal, journal_path

    return Journal(journal_path(admin.environment), admin.environment)


async def _execute(platform: Platform, admin: DatabaseAdmin, plan: RestorePlan, dsn: str) -> int:
    from backends.db.restore import RestoreError, plan_restore, restore
    from backends.errors import BvaError
    from backends.journal.records import JournalError

    journal = _journal(admin)
    target = plan.confirmation_text
    deployments = dict(platform.services())
    scaled: dict[str, int] = {}
    try:
        for service in _services_of(plan, platform):
            dep = deployments[service]
            desired = (await platform.orchestrator.get_workload(dep)).desired
            scaled[dep] = desired  # first: whatever happens next, the finally scales it back
            async with journal.arecord("db.restore.scale", f"{dep}@{admin.environment}", {"to": 0}):
                await platform.orchestrator.scale(dep, 0)
            print(f"  scaled {dep} {desired} -> 0")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not (await plan_restore(dsn, plan.backup, plan.environment)).drained:
            if time.monotonic() > deadline:
                raise RestoreError(f"still connected after {DRAIN_TIMEOUT_S:.0f}s of draining")
            await asyncio.sleep(0.5)
        details = {"backup": plan.backup.name, "backup_taken_at": plan.backup.taken_at}
        async with journal.arecord("db.restore", target, details) as entry:
            result = await restore(
                plan, dsn, admin.backup_dir, pg_bin=admin.pg_bin, on_step=lambda s: print(f"  {s}")
            )
            entry.details.update(
                safety_backup=result.safety.path, duration_s=round(result.duration_s, 2)
            )
        for table, n in result.tables:
            print(f"  {table:<40} {n:>10,} rows")
        print(f"restored {plan.database}@{plan.environment} from {plan.backup.name}")
        return EXIT_OK
    except (RestoreError, BvaError, JournalError) as exc:
        print(f"bva: restore failed: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        for dep, replicas in scaled.items():
            try:
                async with journal.arecord(
                    "db.restore.scale", f"{dep}@{admin.environment}", {"to": replicas}
                ):
                    await platform.orchestrator.scale(dep, replicas)
                print(f"  scaled {dep} back to {replicas}")
            except (BvaError, JournalError) as exc:
                print(f"bva: could not scale {dep} back to {replicas}: {exc}", file=sys.stderr)
