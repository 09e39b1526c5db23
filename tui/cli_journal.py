"""`bva journal [list|verify]`: read and check the hash-chained journal of mutating actions.

Wired into tui/cli.py with ``add_journal_parser(sub)`` and
``if args.command == "journal": return cmd_journal(args)``. Journal contents may have been
tampered with, so every piece of it goes to the terminal through ``sanitize_text`` (or as
ASCII-escaped JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from backends.journal.records import JournalError, JournalRecord, VerifyResult
from backends.journal.store import Journal, journal_path
from backends.sanitize import sanitize_text
from tui.cli_errors import Subcommands

__all__ = ["add_journal_parser", "cmd_journal"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DEFAULT_LIMIT = 50

# (header, width cap): a cell longer than its cap is cut with "…"
_COLUMNS: tuple[tuple[str, int], ...] = (
    ("SEQ", 6),
    ("TIME (UTC)", 20),
    ("ACTOR", 28),
    ("ACTION", 22),
    ("STAGE", 6),
    ("TARGET", 40),
    ("RESULT", 60),
)


def _limit(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def add_journal_parser(sub: Subcommands) -> None:
    journal = sub.add_parser(
        "journal",
        help="list or verify the journal of mutating actions",
        description="List the journal of mutating actions (default) or verify its hash chain.",
        epilog="Exit codes: 0 ok, 1 broken or unreadable journal, 2 usage or config error.",
    )
    journal.add_argument(
        "action",
        nargs="?",
        choices=("list", "verify"),
        default="list",
        metavar="ACTION",
        help="list (default) or verify",
    )
    # SUPPRESS keeps `bva --env x journal` from being reset by the subcommand's default.
    journal.add_argument(
        "--env",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="environment whose journal to read (default: the platform's default environment)",
    )
    journal.add_argument(
        "--journal",
        metavar="PATH",
        help="journal file to read instead of the environment's",
    )
    journal.add_argument("--json", action="store_true", help="machine-readable output")
    journal.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list only the last N records (default {DEFAULT_LIMIT}; 0 lists all)",
    )


def cmd_journal(args: argparse.Namespace) -> int:
    from backends.config.loader import ConfigError

    try:
        path = _resolve_path(args)
    except (ConfigError, JournalError) as exc:
        print(f"bva: error: {_clean(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    journal = Journal(path, environment=getattr(args, "env", None) or "")
    try:
        if getattr(args, "action", "list") == "verify":
            return _verify(journal, as_json=bool(args.json))
        return _list(journal, limit=int(args.limit), as_json=bool(args.json))
    except JournalError as exc:
        print(f"bva: {_clean(str(exc))}", file=sys.stderr)
        return EXIT_FAIL


def _resolve_path(args: argparse.Namespace) -> Path:
    """--journal PATH; else the journal of --env NAME (or --sandbox's environment, or the
    platform's default environment). A named environment that has no journal yet must be
    known to the platform file, so a typo does not read as an empty journal."""
    override: str | None = getattr(args, "journal", None)
    if override:
        return journal_path("", override)
    env_name: str | None = getattr(args, "env", None)
    if env_name:
        path = journal_path(env_name)
        if not path.exists():
            _load_config(args).environment(env_name)  # ConfigError names the known ones
        return path
    cfg = _load_config(args)
    if getattr(args, "sandbox", False):
        from backends.sandbox.state import sandbox_environment

        env_name = sandbox_environment(cfg)
    else:
        env_name = cfg.default_environment()
    args.env = env_name
    return journal_path(env_name)


def _load_config(args: argparse.Namespace) -> Any:
    from backends.config.loader import load_platform, resolve_config_path

    return load_platform(resolve_config_path(getattr(args, "config", None)))


def _list(journal: Journal, *, limit: int, as_json: bool) -> int:
    where = _clean(str(journal.path))
    if not journal.exists():
        if not as_json:
            print(f"journal {where}: no journal yet")
        return EXIT_OK
    records = journal.records()
    shown = records[-limit:] if limit else records
    if as_json:
        for record in shown:
            # ASCII-escaped JSON: no control or bidi character reaches the terminal raw.
            print(json.dumps(record.to_dict(), ensure_ascii=True, sort_keys=True))
        return EXIT_OK
    if not records:
        print(f"journal {where}: 0 records")
        return EXIT_OK
    more = f", showing the last {len(shown)}" if len(shown) < len(records) else ""
    print(f"journal {where}: {len(records)} records{more}")
    print(_table(shown))
    return EXIT_OK


def _verify(journal: Journal, *, as_json: bool) -> int:
    where = _clean(str(journal.path))
    missing = not journal.exists()
    result = VerifyResult(True, 0, None, "") if missing else journal.verify()
    if as_json:
        payload = {
            "path": str(journal.path),
            "exists": not missing,
            "ok": result.ok,
            "count": result.count,
            "first_bad": result.first_bad,
            "reason": result.reason,
            "last_hash": result.last_hash,
        }
        print(json.dumps(payload, ensure_ascii=True))
    elif missing:
        print(f"journal {where}: no journal yet (0 records)")
    elif result.ok:
        noun = "record" if result.count == 1 else "records"
        print(f"journal {where}: {result.count} {noun}, chain intact")
    else:
        print(
            f"journal {where}: record at line {result.first_bad} is broken: {_clean(result.reason)}"
        )
    return EXIT_OK if result.ok else EXIT_FAIL


def _table(records: list[JournalRecord]) -> str:
    rows = [
        [_cell(value, cap) for value, (_, cap) in zip(_row(r), _COLUMNS, strict=True)]
        for r in records
    ]
    headers = [name for name, _ in _COLUMNS]
    widths = [max([len(headers[i])] + [len(row[i]) for row in rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _row(record: JournalRecord) -> tuple[str, ...]:
    return (
        str(record.seq),
        _iso_utc(record.ts),
        record.actor,
        record.action,
        record.stage,
        record.target,
        record.result or "-",
    )


def _iso_utc(ts: float) -> str:
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return repr(ts)


def _cell(text: str, cap: int) -> str:
    return sanitize_text(text, cap)


def _clean(text: str) -> str:
    return sanitize_text(text, 500)
