"""`bva check [--env E] [--version V] [--json] [--md FILE]`: the pre-deploy checklist run
headless — one line per item, the verdict last. Exit 0 Go, 1 No-Go, 2 usage, 3 Go but a
source could not be read (an item is unknown)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tui.cli_errors import EnvFlags, Subcommands

if TYPE_CHECKING:
    from backends.platform import Platform

EXIT_GO, EXIT_NO_GO, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


def add_check_parser(sub: Subcommands, env_flags: EnvFlags) -> None:
    check = sub.add_parser("check", help="the pre-deploy checklist: checks, sign-offs, Go/No-Go")
    env_flags(check, sub=True)
    check.add_argument("--version", metavar="V", help="the version to be released (images)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--md", metavar="FILE", help="also write the checklist as Markdown")
    check.add_argument("--sign", metavar="ITEM", help="sign off ITEM (its id) for --version first")
    check.add_argument("--as", dest="signer", metavar="NAME", help="who signs (with --sign)")
    check.add_argument("--comment", default="", metavar="TEXT", help="a word on the sign-off")
    check.add_argument(
        "--journal", metavar="PATH", help="journal file (default: per env)", default=None
    )


def cmd_check(args: argparse.Namespace) -> int:
    from tui.cli_platform import run_on_platform
    from tui.cli_release import VERSION_RE

    if args.version is not None and not VERSION_RE.match(args.version):
        print(f"bva: error: {args.version!r} is not a valid image tag", file=sys.stderr)
        return EXIT_USAGE
    if args.sign and not (args.signer and args.version):
        print("bva: error: --sign needs --as NAME and --version V", file=sys.stderr)
        return EXIT_USAGE

    async def work(platform: Platform) -> int:
        return await _check(platform, args)

    # Checking reads only; signing writes the sign-off (and is refused in read-only).
    read_only = not args.sign or bool(getattr(args, "read_only", False))
    return run_on_platform(args, work, read_only=read_only, unopened=EXIT_UNKNOWN)


async def _check(platform: Platform, args: argparse.Namespace) -> int:
    from backends.checklist.engine import ChecklistRunner
    from backends.checklist.models import ItemState
    from backends.checklist.report import report_lines, report_markdown, report_text_json
    from backends.errors import BvaError
    from backends.journal.store import Journal, journal_path

    engine = ChecklistRunner(
        platform, Journal(journal_path(platform.env_name, args.journal), platform.env_name)
    )
    if args.sign:
        try:
            await engine.sign(args.sign, args.signer, args.comment, args.version)
        except BvaError as exc:
            print(f"bva: not signed: {exc}", file=sys.stderr)
            return EXIT_NO_GO
        print(f"signed {args.sign} for {args.version} as {args.signer}")
    report = await engine.run(args.version)
    if args.json:
        print(report_text_json(report))
    else:
        for line in report_lines(report):
            print(line)
    if args.md:
        try:
            Path(args.md).expanduser().write_text(report_markdown(report) + "\n")
        except OSError as exc:
            print(f"bva: cannot write {args.md}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    if not report.verdict.go:
        return EXIT_NO_GO
    unknown = any(r.state is ItemState.UNKNOWN for r in report.results)
    return EXIT_UNKNOWN if unknown else EXIT_GO
