"""`bva scale SERVICE REPLICAS`: set a service's replica count, like `kubectl scale
deployment/x --replicas=N` or `docker compose up --scale x=N`, on either orchestrator.

It says what it will do ("scale deployment/x from 2 to 3 replicas"), refuses on a read-only
platform (before any request), while the release lock is held or while the service has a
canary, asks for a typed `<service>@<env>` where the change needs it (production, or scaling
to 0 anywhere), journals the change before and after, and by default waits until the
workload reports the count ready. Those decisions and actions are backends/scale.py's; this
module parses, asks for the confirmation, prints and maps outcomes to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tui.cli_errors import EnvFlags, Subcommands, positive_seconds

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

DEFAULT_TIMEOUT_S = 120.0
MAX_REPLICAS = 2**31 - 1  # Kubernetes' spec.replicas is an int32


def add_scale_parser(sub: Subcommands, env_flags: EnvFlags) -> None:
    p = sub.add_parser(
        "scale",
        help="set a service's replica count (kubectl scale, docker compose up --scale)",
        description=(
            "Set how many replicas (pods or containers) a service runs, then wait until that "
            "many are ready. Refused on a read-only platform, while the release lock is held "
            "and while the service has a canary. Production, and scaling to 0 anywhere, need "
            "--yes or the typed confirmation <service>@<env>."
        ),
        epilog=(
            "Exit codes: 0 scaled (and ready, unless --no-wait), 1 refused, not confirmed, "
            "failed or not ready in time, 2 usage."
        ),
    )
    p.add_argument("service", metavar="SERVICE", help="the platform service to scale")
    p.add_argument(
        "replicas", type=_replicas, metavar="REPLICAS", help="the replica count (0 or more)"
    )
    p.add_argument("--yes", action="store_true", help="do not ask to type the confirmation")
    p.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait until the replicas are ready (default: wait)",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the replicas to be ready (default {DEFAULT_TIMEOUT_S:g})",
    )
    env_flags(p, sub=True)
    p.add_argument("--config", metavar="FILE", help="platform file", default=argparse.SUPPRESS)
    p.add_argument(
        "--journal",
        metavar="PATH",
        help="journal file (default: per env)",
        default=argparse.SUPPRESS,
    )


def _replicas(text: str) -> int:
    stripped = text.strip()
    if not stripped.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected a replica count (a whole number, 0 or more), got {text!r}"
        )
    value = int(stripped)
    if value > MAX_REPLICAS:
        raise argparse.ArgumentTypeError(f"replica count too large: {text}")
    return value


def needs_confirmation(*, production: bool, replicas: int) -> bool:
    """A typed `<service>@<env>` (or --yes) is needed in production, and to scale to 0
    anywhere (the service would serve nothing)."""
    return production or replicas == 0


def _clean(text: str | None, limit: int = 300) -> str:
    from backends.sanitize import sanitize_text

    return sanitize_text(text or "", limit)


def cmd_scale(args: argparse.Namespace) -> int:
    from backends.config.loader import load_platform, resolve_config_path
    from backends.errors import BvaError
    from backends.journal.records import JournalError
    from tui.cli_errors import UsageError

    if getattr(args, "sandbox", False):
        raise UsageError("scale acts on an environment: start `bva sandbox` and use --env sandbox")
    cfg = load_platform(resolve_config_path(getattr(args, "config", None)))
    env = getattr(args, "env", None) or cfg.default_environment()
    env_cfg = cfg.environment(env)
    known = [s.name for s in cfg.services]
    if args.service not in known:
        raise UsageError(f"unknown service {args.service!r} (known: {', '.join(known)})")
    read_only = bool(getattr(args, "read_only", False)) or env_cfg.read_only
    confirm = needs_confirmation(production=env_cfg.production, replicas=args.replicas)
    if confirm and not read_only and not args.yes and not sys.stdin.isatty():
        if args.replicas == 0:
            why = "to 0"
        elif env == "production":
            why = "in production"
        else:
            why = f"in {env} (production)"
        raise UsageError(
            f"refusing to scale {args.service} {why} without --yes on a non-interactive terminal"
        )
    try:
        return asyncio.run(_run(args, cfg, env, confirm=confirm))
    except KeyboardInterrupt:
        print(
            "bva: interrupted; see `bva status` and the journal for what was done",
            file=sys.stderr,
        )
        return 130
    except (BvaError, JournalError) as exc:
        print(f"bva: {_clean(str(exc))}", file=sys.stderr)
        return EXIT_FAIL


async def _run(args: argparse.Namespace, cfg: Any, env: str, *, confirm: bool) -> int:
    from backends.journal.store import Journal, journal_path
    from backends.platform import open_platform
    from backends.scale import execute_scale, plan_scale, plural, wait_ready

    platform = open_platform(cfg, env, read_only=getattr(args, "read_only", False))
    try:
        plan = await plan_scale(platform, args.service, args.replicas)
        if plan.refusal:
            print(f"bva: {plan.refusal}", file=sys.stderr)
            return EXIT_FAIL
        orch = platform.orchestrator
        if not plan.changes:
            print(
                f"{plan.ref} already has {plural(plan.wanted)} in {plan.environment}: "
                "nothing to change"
            )
            if not args.wait:
                return EXIT_OK
            waited = await wait_ready(orch, plan, timeout=args.timeout, say=_say)
            return EXIT_OK if waited.ok else EXIT_FAIL
        where = f"{plan.environment}{' (PRODUCTION)' if plan.production else ''}"
        print(f"scale {plan.ref} from {plan.current} to {plural(plan.wanted)} in {where}")
        for line in plan.warnings:
            print(f"  warning: {line}")
        if confirm and not args.yes:
            text = plan.confirmation_text()
            typed = (await asyncio.to_thread(input, f"type {text} to scale: ")).strip()
            if typed != text:
                print("bva: not confirmed; nothing was changed", file=sys.stderr)
                return EXIT_FAIL
        journal = Journal(journal_path(platform.env_name, getattr(args, "journal", None)), env)
        result = await execute_scale(
            orch, journal, plan, wait=args.wait, timeout=args.timeout, say=_say
        )
        if result.refusal:
            print(f"bva: {result.refusal}", file=sys.stderr)
            return EXIT_FAIL
        print(f"journal: {_clean(result.journal)}")
        return EXIT_OK if result.ok else EXIT_FAIL
    finally:
        await platform.aclose()


def _say(line: str) -> None:
    """The engine's progress lines, as they come (flushed: the wait can be long)."""
    print(line, flush=True)
