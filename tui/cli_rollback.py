"""`bva rollback SERVICE…`: print the plan (what changes, what does not), confirm by typing,
roll back one service after another and print one line per step, then a summary."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

from tui.cli_errors import EnvFlags, Subcommands, positive_seconds

if TYPE_CHECKING:
    from backends.models import Revision
    from backends.rollback.models import RollbackEvent, RollbackPlan, RollbackResult

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def add_rollback_parser(sub: Subcommands, env_flags: EnvFlags) -> None:
    p = sub.add_parser(
        "rollback",
        help="roll services back to an earlier revision (kubectl rollout undo)",
        description=(
            "Roll services back with kubectl's `rollout undo` semantics: the previous revision "
            "by default, one after another in the platform's start order, each watched until "
            "rolled out and healthy. ConfigMaps, Secrets and the database are NOT rolled back."
        ),
        epilog="Exit codes: 0 all back and healthy, 1 refused, failed or not confirmed, 2 usage.",
    )
    p.add_argument("services", nargs="+", metavar="SERVICE", help="service(s) to roll back")
    p.add_argument(
        "--to-revision",
        type=_revision,
        metavar="N",
        help="the revision to go back to (default: the previous one, as kubectl)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask to type the confirmation")
    p.add_argument(
        "--resume-paused", action="store_true", help="resume a paused deployment, then roll back"
    )
    p.add_argument(
        "--abort-release",
        action="store_true",
        help="abort a release in progress first (its canaries go: traffic back on stable)",
    )
    p.add_argument(
        "--health-wait",
        type=positive_seconds,
        default=20.0,
        metavar="SECONDS",
        help="how long each service may take to report UP after its rollout (default 20)",
    )
    env_flags(p, sub=True)
    p.add_argument("--config", metavar="FILE", help="platform file", default=argparse.SUPPRESS)
    p.add_argument(
        "--journal",
        metavar="PATH",
        help="journal file (default: per env)",
        default=argparse.SUPPRESS,
    )


def _revision(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a revision number (0 or more), got {text!r}")
    return int(text)


def cmd_rollback(args: argparse.Namespace) -> int:
    from backends.config.loader import load_platform, resolve_config_path
    from backends.errors import BvaError
    from backends.journal.records import JournalError
    from tui.cli_errors import UsageError

    if getattr(args, "sandbox", False):
        raise UsageError(
            "rollback acts on an environment: start `bva sandbox` and use --env sandbox"
        )
    if not args.yes and not args.dry_run and not sys.stdin.isatty():
        raise UsageError(
            "refusing to roll back without --yes on a non-interactive terminal (or use --dry-run)"
        )
    cfg = load_platform(resolve_config_path(getattr(args, "config", None)))
    env = getattr(args, "env", None) or cfg.default_environment()
    cfg.environment(env)
    known = [s.name for s in cfg.services]
    unknown = [s for s in args.services if s not in known]
    if unknown:
        raise UsageError(f"unknown service {unknown[0]!r} (known: {', '.join(known)})")
    try:
        return asyncio.run(_run(args, cfg, env))
    except KeyboardInterrupt:
        print(
            "bva: interrupted; see `bva status` and the journal for what was done",
            file=sys.stderr,
        )
        return 130
    except (BvaError, JournalError) as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_FAIL


async def _run(args: argparse.Namespace, cfg: Any, env: str) -> int:
    from backends.journal.store import Journal, journal_path
    from backends.platform import open_platform
    from backends.rollback.engine import RollbackEngine

    platform = open_platform(cfg, env, read_only=getattr(args, "read_only", False))
    try:
        journal = Journal(journal_path(platform.env_name, getattr(args, "journal", None)), env)
        engine = RollbackEngine(platform, journal, health_wait=args.health_wait)
        plan = await engine.plan(args.services, args.to_revision)
        print_plan(plan, time.time(), read_only=platform.read_only)
        if args.dry_run:
            return EXIT_OK
        blocked = (plan.release is not None or plan.lock_holder is not None) and not (
            args.abort_release
        )
        if plan.actionable and not blocked and not platform.read_only and not args.yes:
            text = plan.confirmation_text()
            typed = (await asyncio.to_thread(input, f"type {text} to roll back: ")).strip()
            if typed != text:
                print("bva: not confirmed; nothing was changed", file=sys.stderr)
                return EXIT_FAIL
        result = await engine.execute(
            plan,
            resume_paused=args.resume_paused,
            abort_release=args.abort_release,
            on_event=print_event,
        )
        print_summary(result, plan)
        return EXIT_OK if result.ok else EXIT_FAIL
    finally:
        await platform.aclose()


def _clean(text: str | None, limit: int = 200) -> str:
    from backends.sanitize import sanitize_text

    return sanitize_text(text or "", limit)


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "age unknown"
    seconds = max(now - ts, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _revision_line(label: str, rev: Revision, now: float) -> str:
    images = ", ".join(_clean(i, 120) for i in rev.images.values()) or "no image"
    cause = f'"{_clean(rev.change_cause, 120)}"' if rev.change_cause else "no change-cause"
    return f"  {label:<8} revision {rev.revision}  {images}  {cause}  {_age(rev.created, now)}"


def print_plan(plan: RollbackPlan, now: float, *, read_only: bool = False) -> None:
    names = ", ".join(sp.service for sp in plan.services)
    count = len(plan.services)
    print(
        f"rollback plan for {plan.environment}: {count} service{'s' if count != 1 else ''}"
        + (f", in this order: {names}" if count > 1 else f": {names}")
    )
    if read_only:
        print("read-only: this plan can be shown but not executed")
    if plan.release is not None:
        r = plan.release
        print(
            f"release in progress: {_clean(r.release_id)} ({_clean(r.version)} to "
            f"{_clean(', '.join(r.services))}, {r.state.value}) by {_clean(r.owner) or 'unknown'}: "
            "--abort-release aborts it first (traffic back on stable)"
        )
    if plan.lock_holder is not None:
        print(f"release lock held by {_clean(plan.lock_holder)}")
    for sp in plan.services:
        print()
        word = {"rollback": "roll back", "nothing": "nothing to do", "refused": "refused"}
        print(f"{sp.service} ({sp.workload}): {word[sp.action]}")
        print(_revision_line("current", sp.current, now))
        if sp.target is not None:
            print(_revision_line("target", sp.target, now))
        if sp.history:
            revisions = ", ".join(
                f"{r.revision}{' (current)' if r.is_current else ''}" for r in sp.history
            )
            print(f"  history: revisions {revisions}")
        if sp.action != "rollback":
            print(f"  {_clean(sp.message, 300)}")
        if sp.action == "rollback" and sp.changes:
            print("  changes (current → target):")
            for c in sp.changes:
                print(f"    {c.container}  {c.field}: {c.current} → {c.target}")
        for w in sp.warnings:
            hint = " (--resume-paused resumes it first)" if w.startswith("paused:") else ""
            print(f"  warning: {_clean(w, 300)}{hint}")
    print()
    for item in plan.not_rolled_back:
        print(f"NOT rolled back: {item}")
    for note in plan.database:
        print(f"database: {_clean(note, 300)}")


def print_event(event: RollbackEvent) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
    who = f" [{event.service}]" if event.service else ""
    mark = {"warning": " warning:", "error": " error:"}.get(event.level, "")
    print(f"{stamp}{who}{mark} {_clean(event.text, 300)}", flush=True)


def print_summary(result: RollbackResult, plan: RollbackPlan) -> None:
    good = sum(1 for o in result.outcomes if o.ok)
    total = len(result.outcomes)
    took = max(result.finished - result.started, 0.0)
    verdict = "done" if result.ok else "NOT done"
    print()
    print(
        f"rollback on {plan.environment} {verdict} in {took:.1f}s: "
        f"{good} of {total} service{'s' if total != 1 else ''} back and healthy"
    )
    for o in result.outcomes:
        mark = "✔" if o.ok else "✖"
        print(f"  {mark} {o.service}: {_clean(o.outcome, 300)} ({o.duration_s:.1f}s)")
    if result.journal:
        print(f"journal: {_clean(result.journal, 300)}")
