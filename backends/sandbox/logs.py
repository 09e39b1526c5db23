"""Container logs of the simulated pods, kept and served the way the kubelet does.

Each container keeps its current instance and, after a restart, the previous one (what
``kubectl logs --previous`` reads). Lines are stored with the clock time they were written,
which is what ``timestamps=True`` and the ``since`` filters use.

The book is used from one asyncio event loop: ``tick`` and the lifecycle calls run on it, and
followers wait on per-follower ``asyncio.Event``s, so nothing polls.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from itertools import islice

from backends.sandbox.loglife import app_version, crash_events, shutdown_events, startup_events
from backends.sandbox.logtext import AppContext, LogEvent, render, running_event
from backends.sandbox.logvocab import app_context
from backends.sandbox.view import Behaviour, LogFormat

# A follower this far behind loses its oldest lines (one marker line says how many). Large
# enough for a fast feed (tens of thousands of lines a second) read in bursts.
FOLLOW_BUFFER_LINES = 50_000
# Spring Boot exits 143 on SIGTERM and 0 when stopped cleanly; both log a graceful shutdown.
_GRACEFUL_EXIT_CODES = (0, 143)


class PodLogsNotFound(LookupError):
    """The pod is unknown (never started a container, or deleted)."""


class ContainerLogsNotFound(LookupError):
    """The pod exists but has no such container."""


class PreviousLogsNotFound(LookupError):
    """``previous=True`` on a container that has not restarted."""


def kubelet_timestamp(ts: float) -> str:
    """RFC3339Nano with a fixed nine-digit fraction, as kubelet prefixes ``--timestamps``."""
    # Float epoch seconds carry about microsecond precision; finer digits would be noise.
    ns = round(ts * 1_000_000) * 1000
    sec, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


class _Follower:
    """One ``follow`` reader: a bounded buffer that drops its oldest lines when it falls behind.

    Kept as the writes came (a clock reading and its lines), so a fast writer costs a few
    operations per write here rather than per line.
    """

    __slots__ = ("buffer", "closed", "dropped", "event", "limit", "size")

    def __init__(self, limit: int) -> None:
        self.buffer: deque[tuple[float, list[str]]] = deque()
        self.limit = limit
        self.size = 0
        self.dropped = 0
        self.closed = False
        self.event = asyncio.Event()

    def push(self, ts: float, lines: list[str]) -> None:
        self.buffer.append((ts, lines))
        self.size += len(lines)
        while self.size > self.limit:
            old_ts, old = self.buffer[0]
            over = self.size - self.limit
            if over >= len(old):
                self.buffer.popleft()
                self.size -= len(old)
                self.dropped += len(old)
            else:
                self.buffer[0] = (old_ts, old[over:])
                self.size -= over
                self.dropped += over
        self.event.set()

    def take(self) -> list[tuple[float, list[str]]]:
        out = list(self.buffer)
        self.buffer.clear()
        self.size = 0
        return out

    def close(self) -> None:
        self.closed = True
        self.event.set()


class _Instance:
    """One run of a container, from start to termination."""

    __slots__ = ("exit_code", "followers", "lines", "reason", "running")

    def __init__(self, max_lines: int) -> None:
        self.lines: deque[tuple[float, str]] = deque(maxlen=max_lines)
        self.running = True
        self.followers: set[_Follower] = set()
        self.exit_code: int | None = None
        self.reason = ""

    def write(self, ts: float, lines: list[str]) -> None:
        self.lines.extend([(ts, line) for line in lines])
        for f in self.followers:
            f.push(ts, lines)

    def end(self) -> None:
        self.running = False
        for f in self.followers:
            f.close()
        self.followers.clear()


class _Container:
    __slots__ = (
        "behaviour",
        "carry",
        "ctx",
        "current",
        "fmt",
        "p_error",
        "previous",
        "rate",
        "rng",
        "service",
        "starts",
    )

    def __init__(self, ctx: AppContext, fmt: LogFormat, behaviour: Behaviour, service: str) -> None:
        self.service = service
        self.ctx = ctx
        self.fmt: LogFormat = fmt
        self.behaviour: Behaviour = behaviour
        self.current: _Instance | None = None
        self.previous: _Instance | None = None
        self.starts = 0
        self.rng = random.Random(0)
        self.rate = 0.0
        self.carry = 0.0
        self.p_error = 0.0


class LogBook:
    def __init__(
        self,
        *,
        seed: int,
        clock: Callable[[], float],
        speed: float = 1.0,
        max_lines_per_container: int = 5000,
        follow_buffer: int = FOLLOW_BUFFER_LINES,
    ) -> None:
        self._seed = seed
        self._clock = clock
        self._speed = speed
        self._max_lines = max_lines_per_container
        self._follow_buffer = follow_buffer
        self._pods: dict[str, dict[str, _Container]] = {}
        # Services whose output comes from outside (``feed``): no generated chatter.
        self.fed: set[str] = set()
        self._turn: dict[str, int] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def container_started(
        self,
        pod: str,
        container: str,
        *,
        service: str,
        fmt: LogFormat,
        behaviour: Behaviour,
        image: str,
        port: int = 8080,
    ) -> None:
        """A new instance of the container: the old one (if any) becomes ``previous``."""
        containers = self._pods.setdefault(pod, {})
        c = containers.get(container)
        ctx = app_context(service, port)
        if c is None:
            c = containers[container] = _Container(ctx, fmt, behaviour, service)
        else:
            c.ctx, c.fmt, c.behaviour = ctx, fmt, behaviour
        if c.current is not None:
            c.current.end()
            c.previous = c.current
        c.starts += 1
        # A string seed is hashed with SHA-512, so runs repeat regardless of PYTHONHASHSEED.
        c.rng = rng = random.Random(f"{self._seed}/{pod}/{container}/{c.starts}")
        c.rate = rng.uniform(1.0, 3.0) * (1.6 if behaviour == "unhealthy" else 1.0)
        # About one ERROR with a stack trace per (simulated) minute from a healthy service.
        c.p_error = 1.0 / (60.0 * c.rate)
        c.carry = rng.random()
        c.current = _Instance(self._max_lines)
        version = app_version(image)
        events = (
            crash_events(ctx, version, rng)
            if behaviour == "crash"
            else startup_events(ctx, version, rng)
        )
        self._write(c, c.current, events)

    def container_terminated(
        self, pod: str, container: str, *, exit_code: int, reason: str
    ) -> None:
        c = self._pods.get(pod, {}).get(container)
        if c is None or c.current is None or not c.current.running:
            return
        inst = c.current
        if exit_code in _GRACEFUL_EXIT_CODES and c.behaviour != "crash":
            self._write(c, inst, shutdown_events(c.ctx))
        inst.exit_code, inst.reason = exit_code, reason
        inst.end()

    def pod_deleted(self, pod: str) -> None:
        for c in self._pods.pop(pod, {}).values():
            for inst in (c.current, c.previous):
                if inst is not None:
                    inst.end()

    def tick(self, dt: float) -> None:
        """Append what every running container logged during ``dt`` seconds."""
        if dt <= 0:
            return
        scaled = dt * self._speed
        for containers in self._pods.values():
            for c in containers.values():
                inst = c.current
                if (
                    inst is None
                    or not inst.running
                    or c.behaviour == "crash"
                    or c.service in self.fed
                ):
                    continue
                rng = c.rng
                c.carry += c.rate * scaled * rng.uniform(0.5, 1.5)
                n = int(c.carry)
                if not n:
                    continue
                c.carry -= n
                sick = c.behaviour == "unhealthy"
                events = [
                    running_event(c.ctx, rng, sick=sick, p_error=c.p_error, p_warn=0.04)
                    for _ in range(min(n, self._max_lines))
                ]
                self._write(c, inst, events)

    def feed(self, service: str, lines: list[str]) -> int:
        """Lines written from outside for ``service``: spread one by one over its running
        containers in turn, as a load-balanced app's requests are, all stamped now.

        Returns how many lines found a container (none when no container is running).
        """
        self.fed.add(service)
        running = [
            c.current
            for containers in self._pods.values()
            for c in containers.values()
            if c.service == service and c.current is not None and c.current.running
        ]
        if not running or not lines:
            return 0
        ts = self._clock()
        n = len(running)
        turn = self._turn.get(service, 0) % n
        for i, inst in enumerate(running):
            share = lines[(i - turn) % n :: n]
            if share:
                inst.write(ts, share)
        self._turn[service] = (turn + len(lines)) % n
        return len(lines)

    def _write(self, c: _Container, inst: _Instance, events: Iterable[LogEvent]) -> None:
        ts = self._clock()
        for event in events:
            inst.write(ts, render(event, ts, c.fmt, c.ctx.app))

    # --- reading --------------------------------------------------------------------------

    def read(
        self,
        pod: str,
        container: str,
        *,
        previous: bool = False,
        tail_lines: int | None = None,
        since_seconds: float | None = None,
        since_time: float | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> list[str]:
        """Lines without newlines, filtered like the kubelet: tail first, then since."""
        inst = self._instance(pod, container, previous=previous)
        selected = self._select(inst, tail_lines, since_seconds, since_time)
        lines = _stamped(selected, timestamps)
        return lines if limit_bytes is None else _limit(lines, limit_bytes)

    def follow(
        self,
        pod: str,
        container: str,
        *,
        tail_lines: int | None = None,
        since_seconds: float | None = None,
        since_time: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[list[str]]:
        """Batches of lines: the selected ones, then new ones as they are written, until this
        instance ends or the pod is deleted. A batch is whatever was written since the
        reader last looked, so a fast writer costs one send per burst, not one per line.

        Unknown pods/containers raise here, at call time, so a server can answer with an error
        before it starts streaming. A reader that falls more than ``follow_buffer`` lines
        behind loses the oldest lines and gets one marker line saying how many.
        """
        inst = self._instance(pod, container, previous=False)
        return self._follow(inst, tail_lines, since_seconds, since_time, timestamps)

    async def _follow(
        self,
        inst: _Instance,
        tail_lines: int | None,
        since_seconds: float | None,
        since_time: float | None,
        timestamps: bool,
    ) -> AsyncIterator[list[str]]:
        # Snapshot and subscription happen in one synchronous step: no line falls between.
        sub = _Follower(self._follow_buffer)
        backlog = self._select(inst, tail_lines, since_seconds, since_time)
        if inst.running:
            inst.followers.add(sub)
        else:
            sub.closed = True
        try:
            if backlog:
                yield _stamped(backlog, timestamps)
            while True:
                if sub.buffer:
                    batch: list[str] = []
                    if sub.dropped:
                        skipped, sub.dropped = sub.dropped, 0
                        note = f"[bva sandbox: {skipped} log lines skipped, reader too slow]"
                        batch.append(_stamp(sub.buffer[0][0], note, timestamps))
                    for ts, lines in sub.take():
                        if timestamps:
                            prefix = kubelet_timestamp(ts) + " "
                            batch += [prefix + line for line in lines]
                        else:
                            batch += lines
                    yield batch
                    continue
                if sub.closed:
                    return
                sub.event.clear()
                await sub.event.wait()
        finally:
            inst.followers.discard(sub)

    def _instance(self, pod: str, container: str, *, previous: bool) -> _Instance:
        containers = self._pods.get(pod)
        if containers is None:
            raise PodLogsNotFound(f"pod {pod} not found")
        c = containers.get(container)
        if c is None or c.current is None:
            raise ContainerLogsNotFound(f"container {container} is not valid for pod {pod}")
        if previous:
            # While a crashed container waits in back-off, the kubelet's "previous" is the
            # instance that just terminated: there is no newer one yet.
            if not c.current.running:
                return c.current
            if c.previous is None:
                raise PreviousLogsNotFound(
                    f'previous terminated container "{container}" in pod "{pod}" not found'
                )
            return c.previous
        return c.current

    def _select(
        self,
        inst: _Instance,
        tail_lines: int | None,
        since_seconds: float | None,
        since_time: float | None,
    ) -> list[tuple[float, str]]:
        lines: Iterable[tuple[float, str]] = inst.lines
        if tail_lines is not None and tail_lines >= 0:
            lines = islice(inst.lines, max(0, len(inst.lines) - tail_lines), None)
        cutoff: float | None = None
        if since_seconds is not None:
            cutoff = self._clock() - since_seconds
        if since_time is not None:
            cutoff = since_time if cutoff is None else max(cutoff, since_time)
        if cutoff is None:
            return list(lines)
        return [(ts, line) for ts, line in lines if ts >= cutoff]


def _stamp(ts: float, line: str, timestamps: bool) -> str:
    return f"{kubelet_timestamp(ts)} {line}" if timestamps else line


def _stamped(lines: list[tuple[float, str]], timestamps: bool) -> list[str]:
    if not timestamps:
        return [line for _, line in lines]
    out: list[str] = []
    last_ts: float | None = None
    prefix = ""
    for ts, line in lines:
        # Lines of one tick share a clock reading; format it once.
        if ts != last_ts:
            last_ts, prefix = ts, kubelet_timestamp(ts) + " "
        out.append(prefix + line)
    return out


def _limit(lines: list[str], limit_bytes: int) -> list[str]:
    """Like kubelet's limit writer: count newline-terminated bytes, cut the last line short."""
    out: list[str] = []
    budget = limit_bytes
    for line in lines:
        if budget <= 0:
            break
        raw = line.encode()
        if len(raw) + 1 <= budget:
            out.append(line)
            budget -= len(raw) + 1
            continue
        partial = raw[:budget].decode(errors="ignore")
        if partial:
            out.append(partial)
        break
    return out
