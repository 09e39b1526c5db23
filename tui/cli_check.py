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


def cmd_check(args: argparse.Namespace) -> int:
    from tui.cli_platform import run_on_platform
    from tui.cli_release import VERSION_RE

    if args.version is not None and not VERSION_RE.match(args.version):
        print(f"bva: error: {args.version!r} is not a valid image tag", file=sys.stderr)
        return EXIT_USAGE

    async def work(platform: Platform) -> int:
        return await _check(platform, args)

    return run_on_platform(args, work, read_only=True, unopened=EXIT_UNKNOWN)


async def _check(platform: Platform, args: argparse.Namespace) -> int:
    from backends.checklist.models import ItemState
    from backends.checklist.report import report_lines, report_markdown, report_text_json
    from backends.checklist.runner import run_checklist

    report = await run_checklist(platform, version=args.version)
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
