"""`bva db status [--json]`: the database picture alone — primary and replicas, connections,
replication, Flyway — read once, read-only. `bva db backup|backups|prune` are in
cli_db_backup.py.

Wired into tui/cli.py with ``add_db_parser(sub, _env_flags)`` and
``if args.command == "db": return cmd_db(args)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from tui.cli_errors import EnvFlags, Subcommands, UsageError

if TYPE_CHECKING:
    from backends.db.models import DatabasePicture
    from backends.platform import Platform

__all__ = ["add_db_parser", "cmd_db"]

EXIT_OK, EXIT_DEGRADED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
_UNSET = "not configured: "  # a DSN reference that did not resolve: the user's to fix


def add_db_parser(sub: Subcommands, env_flags: EnvFlags) -> None:
    db = sub.add_parser(
        "db",
        help="the database: primary and replicas, connections, replication lag, migrations",
        description="Read the platform's PostgreSQL servers once (read-only) and print them.",
        epilog="Exit codes: 0 all up, 1 degraded, 2 usage or config error, 3 primary unreachable.",
    )
    actions = db.add_subparsers(dest="db_command", metavar="ACTION")
    status = actions.add_parser("status", help="primary and replicas, once")
    env_flags(status, sub=True)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    migrations = actions.add_parser(
        "migrations", help="flyway info from bva's own reading, and validate's verdict"
    )
    env_flags(migrations, sub=True)
    migrations.add_argument("--json", action="store_true", help="machine-readable output")
    backup = actions.add_parser(
        "backup", help="pg_dump -Fc the database into the backup dir, verified and journalled"
    )
    env_flags(backup, sub=True)
    backup.add_argument("--reason", default="manual", help="what it is for (default: manual)")
    backups = actions.add_parser(
        "backups", help="the backups with age, size, verified; the freshest against the RPO"
    )
    env_flags(backups, sub=True)
    backups.add_argument("--json", action="store_true", help="machine-readable output")
    restore = actions.add_parser(
        "restore", help="restore the database from a backup (safety backup first, typed confirm)"
    )
    env_flags(restore, sub=True)
    restore.add_argument(
        "backup", metavar="BACKUP", help="a file, a name in the backup dir, or latest"
    )
    restore.add_argument(
        "--scale-down",
        action="store_true",
        help="scale the connected services to 0 for the restore and back afterwards",
    )
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    prune = actions.add_parser("prune", help="remove the backups past the retention")
    env_flags(prune, sub=True)
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def cmd_db(args: argparse.Namespace) -> int:
    action = getattr(args, "db_command", None)
    if action == "restore":
        from tui.cli_db_restore import cmd_db_restore

        return cmd_db_restore(args)
    if action in ("backup", "backups", "prune"):
        from tui.cli_db_backup import cmd_db_backup

        return cmd_db_backup(args)
    if action not in ("status", "migrations"):
        raise UsageError(
            "db needs an action: status, migrations, backup, backups, restore, prune "
            "(see 'bva db --help')"
        )
    from backends.db.models import ServerState
    from backends.db.report import SCHEMA, picture_json, picture_text
    from tui.cli_platform import run_on_platform

    async def work(platform: Platform) -> int:
        if platform.database is None:
            print(f"bva: environment {platform.env_name} has no database", file=sys.stderr)
            return EXIT_USAGE
        picture = await platform.database.refresh()
        primary = picture.primary
        unusable = [s.error for s in picture.servers if (s.error or "").startswith(_UNSET)]
        if unusable:
            print(f"bva: {unusable[0]}", file=sys.stderr)
            return EXIT_USAGE
        code = (
            EXIT_UNREACHABLE
            if primary is None or primary.state is ServerState.DOWN
            else EXIT_OK
            if picture.ok
            else EXIT_DEGRADED
        )
        if action == "migrations":
            return _migrations(picture, as_json=args.json, unreachable=code == EXIT_UNREACHABLE)
        if args.json:
            doc = {
                "schema": SCHEMA,
                "platform": platform.name,
                "environment": platform.env_name,
                "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(picture.taken_at)),
                "ok": picture.ok,
                "exit_code": code,
                "pool_size": picture.pool_size,
                "thresholds": {
                    "connections_pct": picture.connections_pct_limit,
                    "replication_lag_s": picture.lag_limit_s,
                },
                "problems": list(picture.problems),
                "databases": picture_json(picture),
            }
            print(json.dumps(doc, indent=2))
        else:
            print(f"{platform.name} · {platform.env_name} · database")
            print()
            print("\n".join(picture_text(picture)))
        return code

    return run_on_platform(args, work, read_only=True, unopened=EXIT_UNREACHABLE)


def _migrations(picture: DatabasePicture, *, as_json: bool, unreachable: bool) -> int:
    from backends.db.report import flyway_json
    from backends.sanitize import sanitize_text

    primary = picture.primary
    if unreachable or primary is None:
        why = primary.error if primary is not None else "no primary"
        print(f"bva: the primary cannot be read: {why}", file=sys.stderr)
        return EXIT_UNREACHABLE
    fw = primary.flyway
    if fw is None:
        what = next((m for m in primary.missing if "SELECT" in m), "no flyway_schema_history")
        print(f"bva: {what}", file=sys.stderr)
        return EXIT_DEGRADED
    if as_json:
        doc = {"schema": "bva.db.migrations/v1", **flyway_json(fw), "problems": list(fw.problems)}
        print(json.dumps(doc, indent=2))
        return EXIT_DEGRADED if fw.problems else EXIT_OK
    rows = [("RANK", "VERSION", "DESCRIPTION", "TYPE", "STATE", "INSTALLED ON", "CHECKSUM")]
    for m in fw.migrations:
        on = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m.installed_on))
            if m.installed_on
            else ""
        )
        rows.append(
            (
                str(m.installed_rank or ""),
                m.version or "",
                sanitize_text(m.description, 50),
                m.type,
                m.state.value,
                on,
                "" if m.checksum is None else str(m.checksum),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if not fw.files_read:
        print("(no migrations directory in the platform file: pending ones are unknown)")
    if fw.problems:
        print("validate: FAILED")
        for p in fw.problems:
            print(f"  ✖ {p}")
        return EXIT_DEGRADED
    print(f"validate: ok ({len(fw.applied)} applied, {len(fw.pending)} pending)")
    return EXIT_OK
