"""`bva release …`: start a release and print one line per event, or look at and steer the
release in progress from any terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backends.sanitize import sanitize_text
from tui.cli_errors import EnvFlags, Subcommands, positive_seconds

if TYPE_CHECKING:
    from backends.checklist.models import ChecklistReport, ReleaseGate
    from backends.config.loader import PlatformConfig
    from backends.release.models import ReleaseView
    from backends.release.session import ReleaseSession

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
RECORD_SCHEMA = "bva.release-record/v1"
VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def add_release_parser(sub: Subcommands, env_flags: EnvFlags) -> None:
    release = sub.add_parser("release", help="phased releases: start, status, steer")
    actions = release.add_subparsers(dest="release_command", metavar="ACTION")
    start = actions.add_parser("start", help="start a release and drive it to the end")
    start.add_argument(
        "--service",
        action="append",
        required=True,
        metavar="S",
        help="service to release (repeat for several)",
    )
    start.add_argument("--version", required=True, metavar="V", help="the image tag to ship")
    start.add_argument("--strategy", choices=("canary", "rolling"))
    start.add_argument(
        "--hold",
        type=positive_seconds,
        metavar="SECONDS",
        help="override every phase's hold (e.g. 30 for a drill)",
    )
    start.add_argument(
        "--interval", type=positive_seconds, metavar="SECONDS", help="override the gate interval"
    )
    start.add_argument("--failure-limit", type=int, metavar="N")
    start.add_argument(
        "--manual-approval",
        action="store_true",
        help="wait for `bva release promote` before each traffic increase",
    )
    start.add_argument(
        "--no-backup",
        action="store_true",
        help="skip the database backup before migrating (needs --reason; journalled)",
    )
    start.add_argument("--reason", metavar="TEXT", help="why the backup is skipped")
    start.add_argument(
        "--override-reason",
        metavar="TEXT",
        help="start on a checklist No-Go where a Go is required (the reason is journalled)",
    )
    start.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    status = actions.add_parser("status", help="the release in progress")
    status.add_argument("--json", action="store_true")
    record = actions.add_parser(
        "record",
        help="print a release's record (the newest by default)",
        description=(
            "Every release leaves a record in the journal dir (releases/ID.md and .json): "
            "versions, who, the checklist, database and pod-template changes, the phases with "
            "their gates, the outcome, and the rollback command."
        ),
    )
    record.add_argument("release_id", nargs="?", metavar="ID", help="a release id (r-…)")
    fmt = record.add_mutually_exclusive_group()
    fmt.add_argument("--md", action="store_true", help="Markdown (the default)")
    fmt.add_argument("--json", action="store_true", help=f"JSON ({RECORD_SCHEMA})")
    for name, text in (
        ("pause", "hold the current phase"),
        ("resume", "continue (or take over a release whose driver is gone)"),
        ("promote", "go to the next phase now"),
        ("abort", "remove the canaries: traffic back on stable"),
    ):
        p = actions.add_parser(name, help=text)
        if name == "promote":
            p.add_argument("--full", action="store_true", help="go straight to 100%%")
        if name == "abort":
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for p in (
        release,
        start,
        status,
        record,
        *[actions.choices[n] for n in ("pause", "resume", "promote", "abort")],
    ):
        env_flags(p, sub=True)
        p.add_argument(
            "--journal",
            metavar="PATH",
            help="journal file (default: per env)",
            default=argparse.SUPPRESS,
        )


class _Usage(Exception):
    pass


def _setup(args: argparse.Namespace) -> tuple[PlatformConfig, ReleaseSession]:
    from backends.config.loader import load_platform, resolve_config_path
    from backends.journal.store import Journal, journal_path
    from backends.platform import open_platform

    path = resolve_config_path(args.config)
    cfg = load_platform(path)
    env = getattr(args, "env", None) or cfg.default_environment()
    cfg.environment(env)
    platform = open_platform(cfg, env, read_only=getattr(args, "read_only", False))
    journal = Journal(
        journal_path(platform.env_name, getattr(args, "journal", None)), platform.env_name
    )
    from backends.release.session import ReleaseSession

    return cfg, ReleaseSession(platform, journal, on_change=_printer())


def cmd_release(args: argparse.Namespace) -> int:
    from backends.errors import BvaError

    action = args.release_command
    if getattr(args, "sandbox", False):
        raise _Usage("release drives an environment: start `bva sandbox` and use --env sandbox")
    if action is None:
        raise _Usage(
            "release needs an action: start, status, record, pause, resume, promote, abort"
        )
    if action == "record":
        return _record(args)
    try:
        return asyncio.run(_run(args, action))
    except _Usage:
        raise
    except KeyboardInterrupt:
        print(
            "bva: interrupted; the release is left as it is: see `bva release status`",
            file=sys.stderr,
        )
        return 130
    except BvaError as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_FAIL


async def _run(args: argparse.Namespace, action: str) -> int:
    cfg, session = _setup(args)
    try:
        if action == "start":
            return await _start(args, cfg, session)
        if action == "status":
            return await _status(args, session)
        return await _control(args, session, action)
    finally:
        await session.platform.aclose()


def _printer() -> Callable[[ReleaseView], None]:
    seen = [0]

    def on_change(view: ReleaseView) -> None:
        for entry in view.timeline[seen[0] :]:
            stamp = time.strftime("%H:%M:%S", time.localtime(entry.ts))
            who = f" [{entry.service}]" if entry.service else ""
            print(f"{stamp}{who} {entry.text}", flush=True)
        seen[0] = len(view.timeline)

    return on_change


async def _start(args: argparse.Namespace, cfg: PlatformConfig, session: ReleaseSession) -> int:
    platform = session.platform
    known = [s.name for s in cfg.services]
    unknown = [s for s in args.service if s not in known]
    if unknown:
        raise _Usage(f"unknown service {unknown[0]!r} (known: {', '.join(known)})")
    if not VERSION_RE.match(args.version):
        raise _Usage(f"{args.version!r} is not a valid image tag")
    reason = (args.reason or "").strip()
    if args.no_backup and not reason:
        raise _Usage("--no-backup needs --reason TEXT: skipping the backup is journalled")
    if reason and not args.no_backup:
        raise _Usage("--reason goes with --no-backup")
    override = (args.override_reason or "").strip()
    if args.override_reason is not None and not override:
        raise _Usage("--override-reason needs a reason: it is journalled")
    rollout = cfg.rollout_for(platform.env_name)
    holds = [args.hold] * len(rollout.holds) if args.hold else None
    plan = session.plan(
        args.service,
        args.version,
        strategy=args.strategy,
        holds=holds,
        gate_interval=args.interval,
        failure_limit=args.failure_limit,
        manual_approval=True if args.manual_approval else None,
    )
    steps = " → ".join(f"{w}%" for w in plan.phases)
    print(
        f"release {plan.release_id}: {plan.version} to {', '.join(plan.services)} on "
        f"{platform.env_name} ({plan.strategy})"
    )
    if plan.strategy == "canary":
        print(
            f"  phases {steps}; holds {', '.join(f'{h:g}s' for h in plan.holds)}; gates every "
            f"{plan.gate_interval:g}s: error rate < {plan.max_error_rate_pct:g}%, p95 < "
            f"{plan.max_p95_ms:g} ms, canary ready, no restarts; abort after "
            f"{plan.failure_limit} failures"
        )
    database = await session.database_plan(no_backup_reason=reason if args.no_backup else None)
    if database is not None:
        for line in database.lines(time.time()):
            print(f"  {sanitize_text(line, 200)}")
    report, gate = await _checklist(session, args.version)
    if not gate.go and gate.required and not override:
        print(
            f"bva: the checklist says {gate.words}; {platform.env_name} needs a Go to start: "
            f"`bva check --env {platform.env_name} --version {args.version}` shows why, "
            "--override-reason TEXT starts anyway (journalled)",
            file=sys.stderr,
        )
        return EXIT_FAIL
    if gate.go:
        override = ""  # nothing to override: a Go is a Go
    if not args.yes:
        if not sys.stdin.isatty():
            raise _Usage("refusing to start a release without --yes on a non-interactive terminal")
        prompt = f"type the environment name ({platform.env_name}) to start: "
        typed = (await asyncio.to_thread(input, prompt)).strip()
        if typed != platform.env_name:
            print("bva: not confirmed; nothing was changed", file=sys.stderr)
            return EXIT_FAIL
    if override:
        await session.override(plan, gate, override)
    driver = await session.start(
        plan, database, checklist=report, gate=gate, override_reason=override
    )
    state = await driver.run()
    print(
        f"release {plan.release_id} {state.value}" + (f": {driver.reason}" if driver.reason else "")
    )
    if driver.recorder is not None:
        print(f"record: {driver.recorder.md_path} (`bva release record {plan.release_id}`)")
    return EXIT_OK if state.value == "finished" else EXIT_FAIL


async def _checklist(
    session: ReleaseSession, version: str
) -> tuple[ChecklistReport | None, ReleaseGate]:
    """Run the checklist for the version and print its verdict in a line (and its reasons)."""
    from backends.checklist.engine import ChecklistRunner
    from backends.checklist.runner import release_gate, rules

    platform = session.platform
    required = rules(platform)[0]
    report = await ChecklistRunner(platform, session.journal).run(version)
    gate = release_gate(
        report, version, required=required, now=time.time(), hint="bva check runs it"
    )
    need = "required" if required else "not required here"
    print(f"  checklist: {sanitize_text(gate.words, 200)} (a Go is {need})")
    for line in report.verdict.reasons[1:4]:
        print(f"    {sanitize_text(line, 200)}")
    return report, gate


def _record(args: argparse.Namespace) -> int:
    from backends.config.loader import load_platform, resolve_config_path
    from backends.journal.store import journal_path
    from backends.release.record import RecordError, read_record, records_dir
    from backends.release.record_md import record_markdown

    cfg = load_platform(resolve_config_path(args.config))
    env = getattr(args, "env", None) or cfg.default_environment()
    cfg.environment(env)
    directory = records_dir(journal_path(env, getattr(args, "journal", None)))
    try:
        doc = read_record(directory, args.release_id)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    except RecordError as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(record_markdown(doc), end="")
    return EXIT_OK


async def _status(args: argparse.Namespace, session: ReleaseSession) -> int:
    platform = session.platform
    view, holder = await session.status()
    now = time.time()
    if args.json:
        doc: dict[str, Any] = {
            "schema": "bva.release/v1",
            "environment": platform.env_name,
            "release": None,
            "lock": None,
        }
        if holder is not None:
            doc["lock"] = {
                "holder": holder.holder,
                "release_id": holder.release_id,
                "expired": holder.expired(now),
            }
        if view is not None:
            doc["release"] = {
                "id": view.release_id,
                "version": view.version,
                "owner": view.owner,
                "state": view.state.value,
                "reason": view.reason,
                "phase": view.phase_index + 1,
                "phases": list(view.phases),
                "weight": view.weight,
                "hold_left_s": view.hold_left(now),
                "samples_passed": view.samples_passed,
                "samples_failed": view.samples_failed,
                "driver_alive": view.driver_alive,
                "services": [
                    {
                        "name": p.service,
                        "set_weight": p.set_weight,
                        "actual_weight": round(p.actual_weight, 1),
                        "canary": f"{p.canary_ready}/{p.canary_desired}",
                        "stable": f"{p.stable_ready}/{p.stable_desired}",
                    }
                    for p in view.progress
                ],
            }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if view is None:
        print(
            "no release in progress" + (f"; lock held by {holder.describe(now)}" if holder else "")
        )
        return EXIT_OK
    left = view.hold_left(now)
    print(
        f"release {view.release_id}: {view.version} by {view.owner} — {view.state.value}"
        + (f" ({view.reason})" if view.reason else "")
    )
    print(
        f"  phase {view.phase_index + 1}/{len(view.phases)} at {view.weight}%"
        + (f", hold {left:.0f}s left" if left is not None else "")
        + f"; samples {view.samples_passed} passed, {view.samples_failed} failed"
    )
    for p in view.progress:
        print(
            f"  {p.service}: set {p.set_weight}% actual {p.actual_weight:.0f}%, canary "
            f"{p.canary_ready}/{p.canary_desired}, stable {p.stable_ready}/{p.stable_desired}"
        )
    if not view.driver_alive:
        print("  driver lost: `bva release resume` takes it over, `bva release abort` ends it")
    return EXIT_OK


async def _control(args: argparse.Namespace, session: ReleaseSession, action: str) -> int:
    from backends.release.models import ReleaseState

    platform = session.platform
    view, _ = await session.status()
    if view is None:
        print("bva: no release is in progress", file=sys.stderr)
        return EXIT_FAIL
    if action == "resume" and view.state is ReleaseState.DRIVER_LOST:
        driver = await session.take_over()
        state = await driver.run()
        print(f"release {driver.plan.release_id} {state.value}")
        return EXIT_OK if state.value == "finished" else EXIT_FAIL
    if action == "abort" and not getattr(args, "yes", False):
        if not sys.stdin.isatty():
            raise _Usage("refusing to abort without --yes on a non-interactive terminal")
        prompt = f"type the environment name ({platform.env_name}) to abort: "
        typed = (await asyncio.to_thread(input, prompt)).strip()
        if typed != platform.env_name:
            print("bva: not confirmed; nothing was changed", file=sys.stderr)
            return EXIT_FAIL
    verb = "promote-full" if action == "promote" and getattr(args, "full", False) else action
    done = await session.control(verb, f"{verb} from the command line")
    print(f"{verb}: sent to the release {view.release_id} ({done})")
    return EXIT_OK
