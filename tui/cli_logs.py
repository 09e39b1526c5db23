"""`bva logs`: the merged, sanitised log tail on stdout, for scripts and plain terminals.

Log entries go to stdout (``time pod level message``, continuation lines indented, or one
JSON object per entry with ``--json``); the source's notices (a pod joined or left, a
container exited, the stream limit) go to stderr, so a pipe only ever sees log lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from typing import Any, TextIO

from tui.cli_errors import EnvFlags, Subcommands

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# kubectl's default when a selector picks many pods: the last 10 lines of each.
DEFAULT_TAIL = 10


def add_logs_parser(sub: Subcommands, env_flags: EnvFlags) -> None:
    p = sub.add_parser(
        "logs",
        help="the merged log tail of the platform's pods (for scripts)",
        description="Print the logs of every pod of the given services (default: all), "
        "merged in time order and sanitised. Without --since or --previous, the last "
        f"{DEFAULT_TAIL} lines of each container come first (--tail -1 for all).",
    )
    p.add_argument("services", nargs="*", metavar="SERVICE", help="platform services")
    p.add_argument("-f", "--follow", action="store_true", help="keep following new lines")
    p.add_argument("--since", metavar="DURATION", help="only lines newer than this (10m, 1h30m)")
    p.add_argument("--tail", metavar="N", help="lines per container to start with (-1: all)")
    p.add_argument("--level", metavar="LEVEL", help="minimum level: trace … fatal")
    p.add_argument("--grep", metavar="RE", help="keep entries matching (smart case)")
    p.add_argument("--exclude", metavar="RE", help="drop entries matching (smart case)")
    p.add_argument(
        "-p", "--previous", action="store_true", help="the previous (crashed) containers' logs"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per entry")
    p.add_argument("--max-streams", metavar="N", help="containers followed at once (default 32)")
    p.add_argument("--config", metavar="FILE", help="platform file", default=argparse.SUPPRESS)
    env_flags(p, sub=True)


class _Usage(Exception):
    pass


def _int(text: str | None, flag: str, minimum: int) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise _Usage(f"{flag}: expected a whole number, got {text!r}") from None
    if value < minimum:
        raise _Usage(f"{flag}: must be {minimum} or more, got {value}")
    return value


def _options(args: argparse.Namespace, known: list[str]) -> dict[str, Any]:
    """Everything the flags say, checked before anything connects."""
    from backends.config.values import parse_duration
    from backends.logs.models import FilterError, LogFilter

    unknown = [s for s in args.services if s not in known]
    if unknown:
        raise _Usage(
            f"unknown service {unknown[0]!r} (the platform has: {', '.join(known) or 'none'})"
        )
    if args.previous and args.follow:
        raise _Usage("--previous reads a finished container: it cannot be combined with -f")
    since: float | None = None
    if args.since is not None:
        try:
            since = parse_duration(args.since)
        except ValueError as exc:
            raise _Usage(f"--since: {exc}") from None
        if since <= 0:
            raise _Usage(f"--since: must be more than 0, got {args.since!r}")
    tail = _int(args.tail, "--tail", -1)
    if tail is None:
        tail = -1 if since is not None or args.previous else DEFAULT_TAIL
    try:
        line_filter = LogFilter.build(min_level=args.level, include=args.grep, exclude=args.exclude)
    except FilterError as exc:
        raise _Usage(str(exc)) from None
    return {
        "services": list(dict.fromkeys(args.services)) or None,
        "since": since,
        "tail": None if tail < 0 else tail,
        "previous": args.previous,
        "follow": args.follow,
        "max_streams": _int(args.max_streams, "--max-streams", 1) or 32,
        "filter": line_filter,
    }


def cmd_logs(args: argparse.Namespace) -> int:
    from backends.config.loader import load_platform, resolve_config_path
    from backends.errors import BvaError
    from backends.sandbox.state import sandbox_environment
    from tui.cli_errors import UsageError

    path = resolve_config_path(getattr(args, "config", None))
    cfg = load_platform(path)
    try:
        opts = _options(args, [s.name for s in cfg.services])
    except _Usage as exc:
        raise UsageError(str(exc)) from None
    embedded = None
    if getattr(args, "sandbox", False):
        from tui.sandbox_child import EmbeddedSandbox

        embedded = EmbeddedSandbox(str(path))
        env_name = sandbox_environment(cfg)
    else:
        env_name = getattr(args, "env", None) or cfg.default_environment()
    cfg.environment(env_name)  # an unknown environment is a usage error, before connecting
    out = _Printer(sys.stdout, sys.stderr, as_json=args.json, line_filter=opts["filter"])
    try:
        return asyncio.run(_run(cfg, env_name, opts, out, embedded))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except BvaError as exc:
        print(f"bva: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        if embedded is not None:
            embedded.stop()


async def _run(cfg: Any, env_name: str, opts: dict[str, Any], out: _Printer, embedded: Any) -> int:
    from backends.logs.source import LogSource
    from backends.platform import open_platform

    state = embedded.start() if embedded is not None else None
    platform = open_platform(cfg, env_name, read_only=True, sandbox=state)
    source = LogSource(
        platform.orchestrator,
        opts["services"],
        follow=opts["follow"],
        since=opts["since"],
        tail=opts["tail"],
        previous=opts["previous"],
        max_streams=opts["max_streams"],
        service_order=[s.name for s in cfg.services],
    )
    try:
        async for batch in source.stream():
            out.write(batch)
    finally:
        await source.aclose()
        await platform.aclose()
    return EXIT_OK


class _Printer:
    def __init__(self, stdout: TextIO, stderr: TextIO, *, as_json: bool, line_filter: Any) -> None:
        self._out = stdout
        self._err = stderr
        self._json = as_json
        self._filter = line_filter
        self._notice_rank = _rank(line_filter.min_level)
        self._second = -1
        self._prefix = ""

    def write(self, batch: list[Any]) -> None:
        from backends.logs.models import level_rank

        chunks: list[str] = []
        for line in batch:
            if line.is_notice:
                # Diagnostics: filtered by level only (a --grep is about log text).
                if level_rank(line.level) >= self._notice_rank:
                    self._err.write(f"bva: {line.message}\n")
                continue
            if not self._filter.matches(line):
                continue
            chunks.append(self._json_line(line) if self._json else self._text(line))
        if chunks:
            self._out.write("".join(chunks))
        self._out.flush()
        self._err.flush()

    def _time(self, ts: float) -> str:
        # Truncated to the millisecond like the log's own stamp; the epsilon keeps a float
        # such as ...47.0999999 (for .100) from showing as .099.
        second, ms = divmod(math.floor(ts * 1000 + 1e-3), 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{ms:03d}Z"

    def _text(self, line: Any) -> str:
        head = f"{self._time(line.ts)} {line.pod} {line.level or '-':<5} {line.message}\n"
        if not line.extra:
            return head
        return head + "".join(f"    {text}\n" for text in line.extra)

    def _json_line(self, line: Any) -> str:
        doc = {
            "time": self._time(line.ts),
            "ts": line.ts,
            "pod": line.pod,
            "container": line.container,
            "service": line.service,
            "track": line.track,
            "level": line.level,
            "logger": line.logger,
            "thread": line.thread,
            "message": line.message,
            "extra": list(line.extra),
            "format": line.raw_format,
        }
        return json.dumps(doc, ensure_ascii=False) + "\n"


def _rank(level: str) -> int:
    from backends.logs.models import level_rank

    return level_rank(level) if level else -1
