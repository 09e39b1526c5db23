"""`bva db status [--json]`: the database picture alone — primary and replicas, connections,
replication, Flyway — read once, read-only. `bva db backup|backups|prune` are in
cli_db_backup.py.

Wired into tui/cli.py with ``add_db_parser(sub, _env_flags)`` and
``if args.command == "db": return cmd_db(args)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from tui.cli_errors import EnvFlags, Subcommands, UsageError

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
    prune = actions.add_parser("prune", help="remove the backups past the retention")
    env_flags(prune, sub=True)
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def cmd_db(args: argparse.Namespace) -> int:
    action = getattr(args, "db_command", None)
    if action in ("backup", "backups", "prune"):
        from tui.cli_db_backup import cmd_db_backup

        return cmd_db_backup(args)
    if action != "status":
        raise UsageError("db needs an action: status, backup, backups, prune (see 'bva db --help')")
    from backends.config.loader import load_platform, resolve_config_path
    from backends.db.models import ServerState
    from backends.db.report import SCHEMA, picture_json, picture_text
    from backends.errors import BvaError
    from backends.platform import open_platform
    from backends.sandbox.state import sandbox_environment
    from tui.sandbox_child import EmbeddedSandbox

    path = resolve_config_path(args.config)
    cfg = load_platform(path)
    embedded = EmbeddedSandbox(str(path)) if args.sandbox else None

    async def run() -> int:
        state = embedded.start() if embedded else None
        name = sandbox_environment(cfg) if embedded else args.env
        try:
            platform = open_platform(cfg, name, read_only=True, sandbox=state)
        except BvaError as exc:
            print(f"bva: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        try:
            if platform.database is None:
                print(f"bva: environment {platform.env_name} has no database", file=sys.stderr)
                return EXIT_USAGE
            picture = await platform.database.refresh()
        finally:
            await platform.aclose()
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

    try:
        return asyncio.run(run())
    finally:
        if embedded:
            embedded.stop()
