"""Container logs of the simulated pods, kept and served the way the kubelet does.

Each container keeps its current instance and, after a restart, the previous one (what
``kubectl logs --previous`` reads). Lines carry the clock time they were written at, which is
what ``timestamps=True`` and the ``since`` filters use.

What a running container says is rendered only when somebody reads it (``loghistory``):
``tick`` renders the followed containers, a read renders the rest of what it asks for, so an
idle sandbox of 2000 pods renders no log lines at all.

The book is used from one asyncio event loop: ``tick`` and the lifecycle calls run on it, and
followers wait on per-follower ``asyncio.Event``s, so nothing polls.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

from backends.sandbox.logchatter import STEP_S, Chatter, first_step_from, instance_key, step_at
from backends.sandbox.loghistory import Follower, Instance
from backends.sandbox.loglife import app_version, crash_events, shutdown_events, startup_events
from backends.sandbox.logtext import AppContext, LogEvent, render
from backends.sandbox.logvocab import app_context
from backends.sandbox.view import Behaviour, LogFormat

# A follower this far behind loses its oldest lines (one marker line says how many). Large
# enough for a fast feed (tens of thousands of lines a second) read in bursts.
FOLLOW_BUFFER_LINES = 50_000
# Spring Boot exits 143 on SIGTERM and 0 when stopped cleanly; both log a graceful shutdown.
_GRACEFUL_EXIT_CODES = (0, 143)
# How long a reader's history is rendered (``prepare``, a new follower) before the loop
# gets a turn.
CATCH_UP_SLICE_S = 0.005


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


class _Container:
    __slots__ = ("behaviour", "ctx", "current", "fmt", "previous", "service", "starts")

    def __init__(self, ctx: AppContext, fmt: LogFormat, behaviour: Behaviour, service: str) -> None:
        self.service = service
        self.ctx = ctx
        self.fmt: LogFormat = fmt
        self.behaviour: Behaviour = behaviour
        self.current: Instance | None = None
        self.previous: Instance | None = None
        self.starts = 0


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
        # Instances somebody follows: the only ones ``tick`` renders.
        self._hot: set[Instance] = set()
        self._rng = random.Random(0)  # reseeded for every chatter step it renders

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
        now = self._clock()
        if c.current is not None:
            self._end(c.current, now)
            c.previous = c.current
        c.starts += 1
        name = f"{self._seed}/{pod}/{container}/{c.starts}"
        # A string seed is hashed with SHA-512, so runs repeat regardless of PYTHONHASHSEED.
        rng = random.Random(name)
        rate = rng.uniform(1.0, 3.0) * (1.6 if behaviour == "unhealthy" else 1.0)
        chatter = Chatter(
            key=instance_key(name),
            per_step=rate * STEP_S * self._speed,
            ctx=ctx,
            fmt=fmt,
            sick=behaviour == "unhealthy",
            # About one ERROR with a stack trace per (simulated) minute from a healthy service.
            p_error=1.0 / (60.0 * rate),
            max_events=self._max_lines,
        )
        inst = c.current = Instance(chatter, step_at(now), self._max_lines, self._rng)
        version = app_version(image)
        events = (
            crash_events(ctx, version, rng)
            if behaviour == "crash"
            else startup_events(ctx, version, rng)
        )
        inst.start(now, self._render(c, events, now))
        if behaviour == "crash" or service in self.fed:
            inst.stop_chatter(inst.hi)

    def container_terminated(
        self, pod: str, container: str, *, exit_code: int, reason: str
    ) -> None:
        c = self._pods.get(pod, {}).get(container)
        if c is None or c.current is None or not c.current.running:
            return
        inst = c.current
        now = self._clock()
        inst.stop_chatter(step_at(now))
        if exit_code in _GRACEFUL_EXIT_CODES and c.behaviour != "crash":
            inst.append(now, self._render(c, shutdown_events(c.ctx), now))
        inst.exit_code, inst.reason = exit_code, reason
        self._end(inst, now)

    def pod_deleted(self, pod: str) -> None:
        for c in self._pods.pop(pod, {}).values():
            for inst in (c.current, c.previous):
                if inst is not None:
                    inst.finish()
                    self._hot.discard(inst)

    def _end(self, inst: Instance, now: float) -> None:
        inst.stop_chatter(step_at(now))
        inst.finish()
        self._hot.discard(inst)

    def tick(self) -> None:
        """Render what the followed containers logged up to now; the others are rendered
        when somebody reads them."""
        step = step_at(self._clock())
        for inst in self._hot:
            inst.advance(step)

    def mark_fed(self, service: str) -> None:
        """From now on the service's output comes from ``feed``: its chatter stops here."""
        if service in self.fed:
            return
        self.fed.add(service)
        step = step_at(self._clock())
        for inst in self._running(service):
            inst.stop_chatter(step)

    def feed(self, service: str, lines: list[str]) -> int:
        """Lines written from outside for ``service``: spread one by one over its running
        containers in turn, as a load-balanced app's requests are, all stamped now.

        Returns how many lines found a container (none when no container is running).
        """
        self.mark_fed(service)
        running = self._running(service)
        if not running or not lines:
            return 0
        ts = self._clock()
        n = len(running)
        turn = self._turn.get(service, 0) % n
        for i, inst in enumerate(running):
            share = lines[(i - turn) % n :: n]
            if share:
                inst.append(ts, share)
        self._turn[service] = (turn + len(lines)) % n
        return len(lines)

    def _running(self, service: str) -> list[Instance]:
        return [
            c.current
            for containers in self._pods.values()
            for c in containers.values()
            if c.service == service and c.current is not None and c.current.running
        ]

    def _render(self, c: _Container, events: Iterable[LogEvent], ts: float) -> list[str]:
        return [line for event in events for line in render(event, ts, c.fmt, c.ctx.app)]

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
        tail, cutoff = _tail(tail_lines), self._cutoff(since_seconds, since_time)
        self._catch_up(inst, tail, cutoff)
        lines = _stamped(inst.select(tail, cutoff), timestamps)
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
        return self._follow(inst, _tail(tail_lines), since_seconds, since_time, timestamps)

    async def _follow(
        self,
        inst: Instance,
        tail: int | None,
        since_seconds: float | None,
        since_time: float | None,
        timestamps: bool,
    ) -> AsyncIterator[list[str]]:
        await self._prepare(inst, tail, since_seconds, since_time)
        # Snapshot and subscription happen in one synchronous step: no line falls between.
        cutoff = self._cutoff(since_seconds, since_time)
        self._catch_up(inst, tail, cutoff)
        sub = Follower(self._follow_buffer)
        backlog = inst.select(tail, cutoff)
        if inst.running:
            inst.followers.add(sub)
            self._hot.add(inst)
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
            if not inst.followers:
                self._hot.discard(inst)

    async def prepare(
        self,
        pod: str,
        container: str,
        *,
        previous: bool = False,
        tail_lines: int | None = None,
        since_seconds: float | None = None,
        since_time: float | None = None,
    ) -> None:
        """Render what ``read`` with these options returns, in slices with the loop running
        between them, so the read itself only copies lines: the first full read of a pod
        nobody read for an hour renders 5000 lines. Raises like ``read``."""
        inst = self._instance(pod, container, previous=previous)
        await self._prepare(inst, _tail(tail_lines), since_seconds, since_time)

    async def _prepare(
        self,
        inst: Instance,
        tail: int | None,
        since_seconds: float | None,
        since_time: float | None,
    ) -> None:
        while True:
            cutoff = self._cutoff(since_seconds, since_time)
            if self._catch_up(inst, tail, cutoff, CATCH_UP_SLICE_S):
                return
            await asyncio.sleep(0)

    def _catch_up(
        self, inst: Instance, tail: int | None, cutoff: float | None, slice_s: float | None = None
    ) -> bool:
        """Render what a read needs: up to now, and back as far as its tail and since reach;
        False when ``slice_s`` seconds ran out first."""
        deadline = None if slice_s is None else time.perf_counter() + slice_s
        if not inst.advance(step_at(self._clock()), deadline):
            return False
        need = self._max_lines if tail is None else tail
        oldest = inst.first if cutoff is None else first_step_from(cutoff)
        return inst.extend_back(need, oldest, deadline)

    def _cutoff(self, since_seconds: float | None, since_time: float | None) -> float | None:
        cutoff: float | None = None
        if since_seconds is not None:
            cutoff = self._clock() - since_seconds
        if since_time is not None:
            cutoff = since_time if cutoff is None else max(cutoff, since_time)
        return cutoff

    def _instance(self, pod: str, container: str, *, previous: bool) -> Instance:
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


def _tail(tail_lines: int | None) -> int | None:
    # A negative tail is the kubelet's "all lines".
    return tail_lines if tail_lines is not None and tail_lines >= 0 else None


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
