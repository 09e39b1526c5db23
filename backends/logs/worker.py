"""A LogSource run in a child process, for the Logs screen.

Reading, parsing and merging a busy tail costs most of a core in CPython, and in the
screen's own process that work competes with the event loop for the interpreter lock: keys
wait behind it. In a child process it runs on the other core, and the screen's process only
decodes finished entries (under a microsecond each) between frames.

Protocol, over the child's stdin and a private copy of its stdout:

- parent → child: one JSON line, the ``WorkerSpec``; then a JSON line per filter change
  (``{"version": n, "filter": {...}}``) until stdin closes, which tells the child to stop
  (so a parent that dies takes its child with it).
- child → parent: frames of a 4-byte big-endian length and a ``marshal``-ed tuple (only
  primitives, so decoding runs no code): ``("lines", rows, stats, version, verdicts)``,
  ``("stats", stats)``, ``("error", text)`` or ``("end",)``. ``verdicts`` holds a byte per
  row, 1 where the row passes filter ``version`` (empty when no filter is set): the
  regex runs here, not in the screen's process.

Run as ``python -m backends.logs.worker``; the child only ever reads (its adapter is
read-only), and its stderr is discarded so nothing it prints can reach the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import marshal
import os
import re
import signal
import struct
import sys
import threading
from asyncio.subprocess import Process
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import asdict, dataclass, fields
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO

from backends.errors import BvaError, SourceUnavailable
from backends.logs.models import LineRow, LogFilter, LogLine, LogStats, line_row
from backends.orchestrator import Orchestrator, preload, reconnect

__all__ = ["WorkerLogSource", "WorkerSpec"]

_HEAD = struct.Struct("!I")
_STAT_FIELDS = tuple(f.name for f in fields(LogStats))
_stat_row = attrgetter(*_STAT_FIELDS)
# How often the child reports counters that changed while no lines went out.
STATS_EVERY = 0.5
# The child's scheduling priority below the console's.
WORKER_NICE = 5
# A child that has not exited this long after stdin closed is killed.
STOP_GRACE = 3.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the child needs to build its adapter and source: JSON, and no secrets (a
    kubeconfig is passed by path)."""

    connection: dict[str, Any]
    services: list[str] | None
    options: dict[str, Any]


class Batch(list[LineRow]):
    """Rows (``LineRow``) as the child sent them, with its verdicts under filter ``version``
    (a byte per row, empty when it had no filter)."""

    __slots__ = ("verdicts", "version")

    def __init__(self, lines: list[LineRow], version: int, verdicts: bytes) -> None:
        super().__init__(lines)
        self.version = version
        self.verdicts = verdicts


def filter_spec(f: LogFilter) -> dict[str, Any]:
    """A LogFilter as JSON (patterns with their flags, so the child's are the same)."""

    def pattern(p: re.Pattern[str] | None) -> list[Any] | None:
        return None if p is None else [p.pattern, p.flags]

    return {
        "services": sorted(f.services),
        "pods": sorted(f.pods),
        "min_level": f.min_level,
        "track": f.track,
        "include": pattern(f.include),
        "exclude": pattern(f.exclude),
    }


def filter_from(spec: dict[str, Any]) -> LogFilter:
    def pattern(p: list[Any] | None) -> re.Pattern[str] | None:
        return None if p is None else re.compile(p[0], p[1])

    return LogFilter(
        services=frozenset(spec["services"]),
        pods=frozenset(spec["pods"]),
        min_level=spec["min_level"],
        track=spec["track"],
        include=pattern(spec["include"]),
        exclude=pattern(spec["exclude"]),
    )


class WorkerLogSource:
    """``LogSource``'s interface (``stream``, ``stats``, ``aclose``) with the source itself in
    a child process. Options are LogSource's keyword arguments."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        services: Sequence[str] | None = None,
        *,
        process: Awaitable[Process] | None = None,
        **options: Any,
    ) -> None:
        """``process``: a child from ``spawn`` started earlier, so the client's imports (about
        a second) are done before anyone waits for lines."""
        self.spec = WorkerSpec(
            connection=orchestrator.connection(),
            services=list(services) if services is not None else None,
            options=options,
        )
        self.stats = LogStats()
        self._spare = process
        self._proc: Process | None = None
        self._closing: asyncio.Future[None] | None = None  # set once aclose began
        self._filter: LogFilter | None = None
        self._version = 0

    def set_filter(self, f: LogFilter | None) -> None:
        """Have the child judge lines by ``f`` from now on (None or an inactive filter: no
        judging). Batches judged by an older filter are told apart by ``matched``."""
        self._version += 1
        self._filter = f if f is not None and f.active else None
        self._send_filter()

    def matched(self, batch: list[LineRow]) -> list[LineRow] | None:
        """The lines of ``batch`` that pass the filter last set, as the child judged them;
        None when it judged them by another one (the caller judges)."""
        if not isinstance(batch, Batch) or batch.version != self._version:
            return None
        if self._filter is None:
            return list(batch)
        if len(batch.verdicts) != len(batch):
            return None
        return list(compress(batch, batch.verdicts))

    def _send_filter(self) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        spec = None if self._filter is None else filter_spec(self._filter)
        proc.stdin.write(json.dumps({"version": self._version, "filter": spec}).encode() + b"\n")

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @staticmethod
    async def spawn(kind: str) -> Process:
        """A child that loads what an orchestrator of ``kind`` needs, then waits for its
        spec."""
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "backends.logs.worker",
            kind,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            # Its own session: a terminal's signals go to the console, which stops the child.
            start_new_session=True,
        )

    @staticmethod
    async def discard(process: Awaitable[Process]) -> None:
        """Stop a spare child nobody used."""
        with contextlib.suppress(Exception):
            await _stop(await process)

    async def stream(self) -> AsyncGenerator[list[LineRow], None]:
        """Batches of merged lines, as rows (``LineRow``: kept as they are decoded, which
        costs the collector nothing), until ``aclose``, the end of a non-follow read, or an
        error (raised as BvaError with the child's one-line message)."""
        proc = await self._start()
        out = proc.stdout
        assert out is not None
        try:
            while self._closing is None:
                try:
                    head = await out.readexactly(_HEAD.size)
                    body = await out.readexactly(_HEAD.unpack(head)[0])
                except asyncio.IncompleteReadError:
                    if self._closing is not None:
                        return
                    code = await proc.wait()
                    raise SourceUnavailable(
                        f"the log reader process exited (code {code})"
                    ) from None
                msg = marshal.loads(body)
                kind = msg[0]
                if kind == "lines":
                    self._set_stats(msg[2])
                    yield Batch(msg[1], msg[3], msg[4])
                elif kind == "stats":
                    self._set_stats(msg[1])
                elif kind == "error":
                    raise BvaError(str(msg[1]))
                else:
                    return
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Ask the child to stop (stdin closes), and kill it if it has not within a grace.
        Every caller returns once the child is gone (the stream's own close may be running)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        proc, self._proc = self._proc, None
        self.stats.streams = 0
        spare, self._spare = self._spare, None
        if spare is not None:
            await self.discard(spare)
        if proc is not None:
            await _stop(proc)

    async def _start(self) -> Process:
        spare, self._spare = self._spare, None
        proc = None
        if spare is not None:
            with contextlib.suppress(Exception):
                proc = await spare
        if proc is None or proc.returncode is not None:
            proc = await self.spawn(str(self.spec.connection.get("kind", "")))
        self._proc = proc
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(asdict(self.spec)).encode() + b"\n")
        self._send_filter()
        await proc.stdin.drain()
        return proc

    def _set_stats(self, row: Sequence[int]) -> None:
        for name, value in zip(_STAT_FIELDS, row, strict=True):
            setattr(self.stats, name, value)


async def _stop(proc: Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# -- the child -------------------------------------------------------------------------------


class _Frames:
    """Frames to the parent; blocking writes, so a parent that stops reading slows the child
    (and its source skips lines it falls behind on) instead of growing a queue."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.last_stats: tuple[int, ...] = ()
        # (version, filter) as the parent last set it; replaced whole, so reads need no lock.
        self.judge: tuple[int, LogFilter | None] = (0, None)

    def send(self, msg: tuple[Any, ...]) -> None:
        body = marshal.dumps(msg)
        with self._lock:
            self._out.write(_HEAD.pack(len(body)) + body)
            self._out.flush()

    def lines(self, batch: list[LogLine], stats: LogStats) -> None:
        self.last_stats = _stat_row(stats)
        version, f = self.judge
        rows = list(map(line_row, batch))
        verdicts = bytes(map(f.matches_row, rows)) if f is not None else b""
        self.send(("lines", rows, self.last_stats, version, verdicts))

    def stats(self, stats: LogStats) -> None:
        now = _stat_row(stats)
        if now != self.last_stats:
            self.last_stats = now
            self.send(("stats", now))


def _failure(exc: BaseException) -> str:
    """One line for the parent: a BvaError says itself; anything else is a bug, named."""
    if isinstance(exc, BvaError):
        return str(exc)
    return f"log reader failed: {type(exc).__name__}: {exc}"


async def _serve(spec: WorkerSpec, frames: _Frames) -> None:
    from backends.logs.source import LogSource

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:
        # Filter changes, until EOF: the parent closed stdin, or died.
        with contextlib.suppress(OSError, ValueError, KeyError, re.error):
            for line in sys.stdin.buffer:
                change = json.loads(line)
                spec = change["filter"]
                frames.judge = (change["version"], filter_from(spec) if spec else None)
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, name="bva-log-worker-stdin", daemon=True).start()
    orch = reconnect({**spec.connection, "read_only": True})
    source = LogSource(orch, spec.services, **spec.options)

    async def pump() -> None:
        async with contextlib.aclosing(source.stream()) as batches:
            async for batch in batches:
                frames.lines(batch, source.stats)

    async def report() -> None:
        while True:
            await asyncio.sleep(STATS_EVERY)
            frames.stats(source.stats)

    pumping = asyncio.create_task(pump())
    reporting = asyncio.create_task(report())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({pumping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if pumping.done():
            failed = pumping.exception()
            frames.send(("end",) if failed is None else ("error", _failure(failed)))
    finally:
        for task in (pumping, reporting, stopping):
            task.cancel()
        await asyncio.gather(pumping, reporting, stopping, return_exceptions=True)
        await source.aclose()
        await orch.close()


def main() -> int:
    # Frames go to a private copy of stdout; fd 1 becomes stderr, so a stray print from a
    # library cannot corrupt them.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # When the cores are busy the screen (keys, frames) goes first; reading catches up.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    frames = _Frames(out)
    # Loaded before the spec is read: a spare child is ready by the time it is asked.
    preload(sys.argv[1] if len(sys.argv) > 1 else "")
    import backends.logs.source  # noqa: F401

    try:
        line = sys.stdin.buffer.readline()
        if not line:
            return 0  # a spare nobody needed
        spec = WorkerSpec(**json.loads(line))
        asyncio.run(_serve(spec, frames))
    except BrokenPipeError:
        return 0  # the parent is gone
    except Exception as exc:  # a bad spec or a bug: said to the parent in one line
        with contextlib.suppress(OSError):
            frames.send(("error", _failure(exc)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
