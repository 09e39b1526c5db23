"""The merged log tail: every container of every matching pod, one time-ordered stream.

Over 500 lines on purpose: pod tracking, stream slots and the reorder window are one state
machine stepped by one loop (each decision reads all three); the parsing (parse, join), the
reader inbox (inbox) and the streams themselves (the orchestrator's) live elsewhere.

How it works
------------
A pod watch keeps the set of matching pods current. Each container of a matching pod gets
a ``LogReader`` thread (catch up with the caller's tail/since, then follow), up to
``max_streams`` at once; more matching containers wait for a slot, and a notice says so.
Lines come back through one ``Inbox``; each container's ``Joiner`` glues stack traces to
their entry; the entries are merged by timestamp.

Ordering and the reorder window
-------------------------------
Streams deliver at different speeds, so the newest line of one pod can arrive before an
older line of another. Every entry is held for ``window`` seconds (default 0.1 s) after it
*arrived* and then handed out in timestamp order with everything else that is due: a line
that arrives up to ``window`` late still sorts before newer lines of other pods. The window
is measured on our clock from arrival, not from the log timestamp, so a node whose clock is
off does not stall or rush the tail. The price is latency: every line shows ``window``
later than it could. A line later than the window (a joining pod's startup lines, written
before we knew the pod existed; a reconnect's backlog) is handed out at once, out of order,
and counted in ``stats.late``; the screen may place it by its timestamp.

While any stream is catching up (its history is being read), nothing is handed out, for at
most ``catch_up_hold`` seconds: the initial tail of all pods comes out as one sorted block
instead of pod by pod.

Pods that come and go
---------------------
A pod added while tailing (a new ReplicaSet, a canary) joins from its start (``sinceTime`` =
the pod's start). When a stream ends, the pod's state decides: a deleting or deleted pod
leaves (notice); a container that is not running any more has exited (notice) and is
followed again from where it stopped when it runs again; a stream that ended while the pod
still looks healthy is resumed quietly after a moment (API restart, idle timeout). The
source's own notices are LogLines with ``raw_format="bva"`` and logger ``bva``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from backends.logs.inbox import (
    CaughtUp,
    Chunk,
    Ended,
    Inbox,
    LogReaderHandle,
    Resume,
    StreamRequest,
)
from backends.logs.join import Joiner
from backends.logs.models import LogLine, LogStats
from backends.logs.parse import MAX_FIELD_CHARS, clean
from backends.models import Pod, WatchEvent
from backends.orchestrator import Orchestrator

__all__ = ["DEFAULT_MAX_STREAMS", "LogSource"]

DEFAULT_MAX_STREAMS = 32

_NEW, _READING, _SETTLING, _EXITED, _RETRY, _DONE = range(6)

_TS = attrgetter("ts")


@dataclass(slots=True)
class _Held:
    """Entries that arrived together, waiting out the reorder window: merged by sorting
    whole groups when they are due, not one heap operation per line."""

    arrival: float
    first_ts: float  # the oldest timestamp among them
    entries: list[LogLine]
    ordered: bool = False  # already sorted (what a release held back)


@dataclass(eq=False)
class _PodState:
    pod: Pod
    initial: bool
    containers: dict[str, _Container] = field(default_factory=dict)
    gone: bool = False  # DELETED seen, or gone from a relist
    joined: bool = False  # a stream started (so a "left" notice makes sense)
    left: bool = False


@dataclass(eq=False)
class _Container:
    pod: _PodState
    name: str
    joiner: Joiner
    state: int = _NEW
    admitted: bool = False
    reader: LogReaderHandle | None = None
    resume: Resume | None = None
    started_once: bool = False
    retry_at: float | None = None
    kill_at: float | None = None
    backoff: float = 0.0
    gap_since: float | None = None  # lines may be missing from here until it catches up
    exit_rv: str = ""


class LogSource:
    """Follow (or read once) the logs of the pods of some services, merged by time.

    ``services`` None means every platform service. ``since`` is seconds, ``tail`` lines per
    container (None: everything the kubelet has). ``previous`` reads the previous instance
    of each container (a crash's logs); it cannot be followed.

    When lines come faster than the consumer takes them, live lines past ``queue_limit``
    waiting ones are skipped; with ``shed_after``, so are a stream's lines once it runs that
    many seconds later than its best (a live view would rather skip than fall behind). Both
    are counted in ``stats.dropped`` and said in a notice.

    Use ``stream()`` (batches of lines, in order, until closed) or ``snapshot()`` (the
    merged lines of a non-follow read). ``stats`` is updated live.
    """

    def __init__(
        self,
        orchestrator: Orchestrator,
        services: Sequence[str] | None = None,
        *,
        follow: bool = True,
        since: float | None = None,
        tail: int | None = None,
        previous: bool = False,
        max_streams: int = DEFAULT_MAX_STREAMS,
        window: float = 0.1,
        batch_max: int = 5_000,
        queue_limit: int = 200_000,
        catch_up_hold: float = 3.0,
        gap_hold: float = 5.0,
        settle: float = 1.0,
        leave_grace: float = 2.0,
        service_order: Sequence[str] = (),
        shed_after: float | None = None,
        pace: float = 0.02,
    ) -> None:
        if previous and follow:
            raise ValueError("previous logs cannot be followed")
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self._orch = orchestrator
        self.services = tuple(services) if services is not None else None
        self.follow = follow
        self.since = since
        self.tail = tail
        self.previous = previous
        self.max_streams = max_streams
        self.window = window
        self.batch_max = batch_max
        self.queue_limit = queue_limit
        self.catch_up_hold = catch_up_hold
        self.gap_hold = gap_hold
        self.settle = settle
        self.leave_grace = leave_grace
        self.shed_after = shed_after
        self.pace = pace
        # A multi-line entry is completed after this much quiet on its stream. Long enough
        # that a reader stalled mid-trace (a busy machine) does not cut the trace in two;
        # short, because newer lines of other streams wait for it (they may not go out
        # before it), so on quiet streams it is the latency.
        self.join_grace = max(0.8 * window, 0.1)
        self._order = {name: i for i, name in enumerate(service_order or services or ())}
        self.stats = LogStats()
        self._seq = itertools.count(1).__next__
        self._sid = itertools.count(1).__next__
        self._pods: dict[str, _PodState] = {}
        self._by_sid: dict[int, _Container] = {}
        self._queue: deque[_Container] = deque()
        self._held: list[_Held] = []
        self._watermark = float("-inf")
        self._admitted = 0
        self._over_limit_shown = False
        self._watch_error_shown = False
        self._listed = False
        # Read errors already reported: an API outage fails every stream the same way, and
        # one notice says it. Cleared when a stream reads again.
        self._errors_shown: set[str] = set()
        self._inbox: Inbox | None = None
        # One reader parses at a time: parsing is bound by the interpreter lock anyway, and
        # with one parser instead of many competing for it, the event loop (the screen, the
        # keys) keeps its share of the CPU when the streams outrun it.
        self._parse_lock = threading.Lock()
        self._prepared = False
        self._watch_task: asyncio.Task[None] | None = None
        self._closed = False
        self._dropped_seen = 0

    # -- public ---------------------------------------------------------------------------

    async def stream(self) -> AsyncGenerator[list[LogLine], None]:
        """Batches of merged lines (never empty) until ``aclose`` or the consumer stops."""
        if not self.follow:
            lines = await self.snapshot()
            for start in range(0, len(lines), self.batch_max):
                yield lines[start : start + self.batch_max]
            return
        inbox = await self._open()
        watch = self._watch_task = asyncio.create_task(self._watch(), name="bva-log-pods")
        try:
            while not self._closed:
                now = time.monotonic()
                timeout = self._next_deadline(now)
                if timeout is None or timeout > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(inbox.event.wait(), timeout)
                if self._closed:
                    break
                failed = watch.exception() if watch.done() and not watch.cancelled() else None
                if failed is not None:
                    raise failed  # a bug, not an outage: outages arrive as ERROR events
                now = time.monotonic()
                self._step(now)
                due = self._release(now)
                # Handed out in slices, so a consumer that draws as it goes stays live.
                for start in range(0, len(due), self.batch_max):
                    batch = due[start : start + self.batch_max]
                    self.stats.emitted += len(batch)
                    yield batch
                if due and self.pace:
                    # A flood wakes this loop for every read of every stream; taking what
                    # came in ``pace`` seconds at once leaves the event loop free between
                    # (a key press waits for one batch, not for a queue of small ones).
                    await asyncio.sleep(self.pace)
        finally:
            await self.aclose()

    async def snapshot(self) -> list[LogLine]:
        """A non-follow read of every matching container, merged and sorted."""
        inbox = await self._open()
        try:
            pods = [
                p
                for p in await self._orch.list_instances(None)
                if self._matches(p) and _has_started(p)
            ]
            for pod in sorted(pods, key=self._pod_order):
                self._add_pod(pod, initial=True)
            if not self._pods:
                self._notice("WARN", self._no_pods_text())
            pending = deque(c for ps in self._pods.values() for c in ps.containers.values())
            running = 0
            while pending or running:
                while pending and running < self.max_streams:
                    self._start(pending.popleft(), time.monotonic())
                    running += 1
                await inbox.event.wait()
                for item in inbox.drain():
                    if isinstance(item, Ended):
                        running -= 1
                    self._handle(item, time.monotonic())
            self._flush_all()
            self._check_dropped()
            lines = [line for group in self._held for line in group.entries]
            lines.sort(key=_TS)
            self._held.clear()
            self.stats.emitted += len(lines)
            return lines
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the pod watch and every reader (promptly: their sockets are shut down)."""
        if self._closed:
            return
        self._closed = True
        task, self._watch_task = self._watch_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        readers = [c.reader for c in self._containers() if c.reader is not None]
        for reader in readers:
            reader.stop()
        if self._inbox is not None:
            self._inbox.close()
            # A stream() waiting in another task looks again, sees the close, and ends.
            self._inbox.wake()
        if readers:

            def join() -> None:
                deadline = time.monotonic() + 2.0
                for reader in readers:
                    reader.join(max(0.0, deadline - time.monotonic()))

            await asyncio.to_thread(join)
        self.stats.streams = 0

    # -- setup ----------------------------------------------------------------------------

    async def _open(self) -> Inbox:
        if self._inbox is not None:
            raise RuntimeError("a LogSource is used once: stream() or snapshot()")
        await self._orch.prepare_logs()
        self._prepared = True
        self._inbox = Inbox(asyncio.get_running_loop(), self.queue_limit)
        return self._inbox

    def _matches(self, pod: Pod) -> bool:
        return self.services is None or pod.service in self.services

    def _pod_order(self, pod: Pod) -> tuple[int, str, bool, str]:
        rank = self._order.get(pod.service, len(self._order))
        return (rank, pod.service, pod.track == "canary", pod.name)

    def _no_pods_text(self) -> str:
        which = ", ".join(self.services) if self.services else "the platform's services"
        return f"no pods of {which} found" + (": waiting for some to start" if self.follow else "")

    def _containers(self) -> Iterable[_Container]:
        for ps in self._pods.values():
            yield from ps.containers.values()

    # -- the pod watch --------------------------------------------------------------------

    async def _watch(self) -> None:
        async with contextlib.aclosing(self._orch.watch_instances(None)) as events:
            async for event in events:
                if self._closed:
                    return
                self._on_pod_event(event, time.monotonic())
                if self._inbox is not None:
                    self._inbox.wake()

    def _on_pod_event(self, event: WatchEvent[Pod], now: float) -> None:
        if event.kind == "ERROR":
            if not self._watch_error_shown:
                self._watch_error_shown = True
                self._notice("ERROR", f"pod watch: {event.message}; retrying")
            return
        if event.kind == "RESYNC":
            if self._watch_error_shown:
                self._watch_error_shown = False
                self._notice("INFO", "pod watch resumed")
            self._resync([p for p in event.items if self._matches(p)], now)
            return
        pod = event.obj
        if pod is None or not self._matches(pod):
            return
        ps = self._pods.get(_key(pod))
        if event.kind == "DELETED":
            if ps is not None:
                ps.pod = pod
                self._pod_gone(ps, now)
            return
        if ps is None:
            ps = self._add_pod(pod, initial=False)
        else:
            ps.pod = pod
        self._evaluate(ps, now)

    def _resync(self, pods: list[Pod], now: float) -> None:
        first = not self._listed
        self._listed = True
        seen = {_key(p) for p in pods}
        for ps in list(self._pods.values()):
            if _key(ps.pod) not in seen:
                self._pod_gone(ps, now)
        for pod in sorted(pods, key=self._pod_order):
            known = self._pods.get(_key(pod))
            if known is None:
                # At the first listing, pods whose containers run get the caller's tail and
                # since; any other pod is followed from its start.
                self._add_pod(pod, initial=first and _has_started(pod))
            else:
                known.pod = pod
        if first:
            pods_n = len(self._pods)
            containers = sum(len(ps.containers) for ps in self._pods.values())
            if not pods_n:
                self._notice("WARN", self._no_pods_text())
            else:
                services = sorted({ps.pod.service for ps in self._pods.values()})
                self._notice(
                    "INFO",
                    f"following {min(containers, self.max_streams)} of {containers} "
                    f"container(s) in {pods_n} pod(s) of {', '.join(services)}",
                )
        for ps in list(self._pods.values()):
            self._evaluate(ps, now)

    def _add_pod(self, pod: Pod, *, initial: bool) -> _PodState:
        ps = _PodState(pod=pod, initial=initial)
        # Keyed by uid: a pod recreated under the same name is another pod.
        self._pods[_key(pod)] = ps
        names = list(pod.images) or [pod.service or pod.name]
        for name in names:
            c = _Container(
                pod=ps,
                name=name,
                joiner=Joiner(
                    pod=pod.name,
                    container=name,
                    service=pod.service,
                    track=pod.track,
                    next_seq=self._seq,
                ),
            )
            ps.containers[name] = c
            self._admit(c)
        self.stats.pods = len(self._pods)
        return ps

    def _admit(self, c: _Container) -> None:
        if not self.follow:
            # A snapshot reads every container, max_streams at a time (see snapshot()).
            c.admitted = True
            return
        if self._admitted < self.max_streams:
            c.admitted = True
            self._admitted += 1
            return
        self._queue.append(c)
        self.stats.waiting = len(self._queue)
        if not self._over_limit_shown:
            self._over_limit_shown = True
            self._notice(
                "WARN",
                f"more containers match than the limit of {self.max_streams} streams: "
                "the others wait and start as followed pods leave (raise the limit with "
                "--max-streams)",
            )

    def _release_slot(self, c: _Container, now: float) -> None:
        if not self.follow:
            return
        if not c.admitted:
            with contextlib.suppress(ValueError):
                self._queue.remove(c)
            self.stats.waiting = len(self._queue)
            return
        c.admitted = False
        self._admitted -= 1
        while self._queue and self._admitted < self.max_streams:
            nxt = self._queue.popleft()
            if nxt.state == _DONE:
                continue
            nxt.admitted = True
            self._admitted += 1
            self._evaluate(nxt.pod, now)
        self.stats.waiting = len(self._queue)
        if not self._queue:
            self._over_limit_shown = False

    # -- container life ---------------------------------------------------------------------

    def _evaluate(self, ps: _PodState, now: float) -> None:
        """React to what the pod's latest state means for each of its containers."""
        pod = ps.pod
        for c in ps.containers.values():
            if c.state in (_DONE, _READING) or not c.admitted or self._closed:
                continue
            if ps.gone or (pod.deleting and c.started_once):
                self._finish(c, now)
            elif c.state == _EXITED:
                if _is_running(pod) and pod.resource_version != c.exit_rv:
                    self._notice(
                        "INFO", f"{self._who(c)} restarted (restarts: {pod.restarts})", c=c
                    )
                    self._start(c, now)
            elif c.state == _NEW:
                if _has_started(pod) and (self.follow or not pod.deleting):
                    self._start(c, now)
            else:  # SETTLING or RETRY: look again now that something changed
                c.retry_at = now

    def _start(self, c: _Container, now: float) -> None:
        assert self._prepared and self._inbox is not None
        ps = c.pod
        pod = ps.pod
        since_time: float | None = None
        tail, since_seconds = self.tail, None
        if self.since is not None:
            since_seconds = max(1, int(self.since + 0.999))
        if not ps.initial and c.resume is None:
            # A pod that appeared while tailing: everything from its start.
            since_time = pod.started or pod.created
            tail, since_seconds = None, None
        req = StreamRequest(
            pod=pod.name,
            container=c.name,
            follow=self.follow,
            tail=tail,
            since_seconds=since_seconds,
            since_time=since_time,
            previous=self.previous,
            resume=c.resume,
        )
        sid = self._sid()
        reader = self._orch.open_log_reader(
            sid, req, self._inbox, c.joiner, self._parse_lock, shed_after=self.shed_after
        )
        c.reader, c.state, c.retry_at, c.kill_at = reader, _READING, None, None
        self._by_sid[sid] = c
        if not ps.joined:
            ps.joined = True
            if not ps.initial and self.follow:
                self._notice(
                    "INFO",
                    f"{_clean(pod.name)} joined ({pod.track}"
                    + (f", {_tag(pod)}" if _tag(pod) else "")
                    + ")",
                    c=c,
                    ts=since_time,
                )
        c.started_once = True
        self.stats.streams += 1
        reader.start()

    def _pod_gone(self, ps: _PodState, now: float) -> None:
        ps.gone = True
        for c in ps.containers.values():
            if c.state == _READING:
                # The API ends the stream of a deleted pod by itself; its last lines may
                # still be on the way, so give it a moment before cutting it off.
                c.kill_at = now + self.leave_grace
            elif c.state != _DONE:
                self._finish(c, now)

    def _finish(self, c: _Container, now: float) -> None:
        if c.reader is not None:
            c.reader.stop()
            self._reader_gone(c)
        c.state = _DONE
        c.retry_at = c.kill_at = c.gap_since = None
        self._flush(c)
        self._release_slot(c, now)
        ps = c.pod
        if all(x.state == _DONE for x in ps.containers.values()):
            if ps.joined and not ps.left and self.follow:
                ps.left = True
                reason = "deleted" if ps.gone else "terminating"
                self._notice("INFO", f"{_clean(ps.pod.name)} left ({reason})", c=c)
            self._pods.pop(_key(ps.pod), None)
            self.stats.pods = len(self._pods)

    def _reader_gone(self, c: _Container) -> None:
        if c.reader is not None:
            self._by_sid.pop(c.reader.sid, None)
            c.reader = None
            self.stats.streams -= 1

    def _on_ended(self, c: _Container, item: Ended, now: float) -> None:
        self._reader_gone(c)
        self._flush(c)
        if item.resume is not None:
            c.resume = item.resume
        ps, pod = c.pod, c.pod.pod
        if not self.follow:
            if item.reason == "no-previous":
                self._notice("INFO", f"{self._who(c)}: no previous instance (never restarted)", c=c)
            elif item.error is not None:
                self._notice("WARN", f"{self._who(c)}: {item.error}", c=c)
            self._finish(c, now)
            return
        if ps.gone or pod.deleting:
            self._finish(c, now)
            return
        if item.error is not None:
            c.state = _RETRY
            if item.reason == "waiting":
                c.backoff = min(max(c.backoff * 2, 0.5), 5.0)
            else:
                c.backoff = min(max(c.backoff * 2, 1.0), 30.0)
                c.gap_since = c.gap_since or now
                if item.error not in self._errors_shown:
                    self._errors_shown.add(item.error)
                    self._notice(
                        "ERROR",
                        f"cannot read the log of {self._who(c)}: {item.error}; retrying",
                        c=c,
                    )
            c.retry_at = now + c.backoff
            return
        if not _is_running(pod):
            self._exited(c)
            return
        # The pod looks healthy: an API restart, an idle timeout, or a container exit the
        # pod watch has not told us about yet. Look again in a moment; back off when
        # reconnects keep finding nothing (a crash loop we have not seen yet).
        c.backoff = 0.0 if item.received else min(max(c.backoff * 2, self.settle), 30.0)
        c.state = _SETTLING
        c.retry_at = now + max(self.settle, c.backoff)
        c.gap_since = c.gap_since or now

    def _exited(self, c: _Container) -> None:
        pod = c.pod.pod
        c.state = _EXITED
        c.retry_at = c.gap_since = None
        c.exit_rv = pod.resource_version
        self._notice("WARN", f"{self._who(c)} exited ({pod.status}, restarts: {pod.restarts})", c=c)

    def _timers(self, now: float) -> None:
        for c in list(self._containers()):
            if c.kill_at is not None and c.kill_at <= now:
                c.kill_at = None
                if c.state == _READING:
                    self._finish(c, now)
                    continue
            if c.retry_at is None or c.retry_at > now:
                continue
            c.retry_at = None
            ps, pod = c.pod, c.pod.pod
            if ps.gone or pod.deleting:
                self._finish(c, now)
            elif c.state == _SETTLING and not _is_running(pod):
                self._exited(c)
            elif c.state in (_SETTLING, _RETRY) and _has_started(pod):
                self._start(c, now)

    # -- merging --------------------------------------------------------------------------

    def _step(self, now: float) -> None:
        assert self._inbox is not None
        for item in self._inbox.drain():
            self._handle(item, now)
        self._check_dropped()
        grace = self.join_grace
        for c in self._containers():
            idle = c.joiner.idle_since
            if idle is not None and now - idle >= grace:
                self._flush(c, quiet_for=grace, now=now)
        self._timers(now)

    def _handle(self, item: Chunk | CaughtUp | Ended, now: float) -> None:
        c = self._by_sid.get(item.sid)
        if c is None:
            return  # a reader we already let go of
        if isinstance(item, Chunk):
            self.stats.received += item.lines
            self._push(item.entries, item.arrival)
        elif isinstance(item, CaughtUp):
            if c.reader is not None:
                c.reader.caught_up = True
            c.gap_since = None
            self._errors_shown.clear()
        else:
            self._on_ended(c, item, now)

    def _flush(self, c: _Container, *, quiet_for: float = 0.0, now: float = 0.0) -> None:
        """Complete the entry pending in ``c``'s joiner; with ``quiet_for``, only if its
        stream has still been quiet that long (its reader may have just fed it)."""
        done: list[LogLine] = []
        joiner = c.joiner
        with joiner.lock:
            idle = joiner.idle_since
            if not quiet_for or (idle is not None and now - idle >= quiet_for):
                joiner.flush(done)
        self._push(done, time.monotonic())

    def _flush_all(self) -> None:
        for c in self._containers():
            self._flush(c)

    def _push(self, entries: list[LogLine], arrival: float) -> None:
        if entries:
            first = entries[0].ts if len(entries) == 1 else min(map(_TS, entries))
            self._held.append(_Held(arrival, first, entries))
            self.stats.entries += len(entries)

    def _check_dropped(self) -> None:
        assert self._inbox is not None
        dropped = self._inbox.dropped
        if dropped > self._dropped_seen:
            self._notice(
                "WARN",
                f"{dropped - self._dropped_seen} log lines skipped to keep up: "
                "the streams outran the console",
            )
            self._dropped_seen = dropped
            self.stats.dropped = dropped

    def _holding(self, now: float) -> bool:
        """Whether to hand nothing out yet: a stream is reading its history, or one whose
        container still runs has a gap (an API outage, a dropped connection) that its
        reconnect will fill with older lines. Both are bounded, so one stuck stream cannot
        stall the others for long."""
        for c in self._containers():
            reader = c.reader
            if (
                reader is not None
                and not reader.caught_up
                and now - reader.started_at < self.catch_up_hold
            ):
                return True
            if c.gap_since is not None and now - c.gap_since < self.gap_hold:
                return True
        return False

    def _pending_floor(self) -> float:
        """The oldest timestamp still inside a joiner: nothing newer may go out before it."""
        floor = float("inf")
        for c in self._containers():
            ts = c.joiner.pending_ts
            if ts is not None and ts < floor:
                floor = ts
        return floor

    def _release(self, now: float) -> list[LogLine]:
        """The entries due now, in order: those that arrived ``window`` ago or earlier, up
        to the oldest entry still inside the window or inside a joiner (nothing newer may
        go out before those)."""
        if not self._held or self._holding(now):
            return []
        ready, waiting, cutoff = self._split(now)
        if not ready:
            return []
        if len(ready) == 1:
            out = ready[0].entries
            if not ready[0].ordered:
                out.sort(key=_TS)
        else:
            out = [line for group in ready for line in group.entries]
            # By timestamp alone: a float key takes the sort's fast comparison, and the
            # sort is stable, so entries of the same instant keep their arrival order.
            out.sort(key=_TS)
        cut = len(out) if out[-1].ts <= cutoff else bisect_right(out, cutoff, key=_TS)
        if cut < len(out):
            rest = out[cut:]
            # Already due: it goes out as soon as what blocks it does.
            waiting.insert(0, _Held(min(g.arrival for g in ready), rest[0].ts, rest, True))
            out = out[:cut]
        self._held = waiting
        if not out:
            return []
        mark = self._watermark
        if out[0].ts < mark:
            late = out[: bisect_left(out, mark, key=_TS)]
            self.stats.late += sum(1 for line in late if not line.is_notice)
        if out[-1].ts > mark:
            self._watermark = out[-1].ts
        return out

    def _split(self, now: float) -> tuple[list[_Held], list[_Held], float]:
        """The held groups that are due and those still inside the window, and the newest
        timestamp that may go out: nothing newer than an entry still inside the window or
        inside a joiner."""
        due = now - self.window
        cutoff = self._pending_floor()
        ready: list[_Held] = []
        waiting: list[_Held] = []
        for group in self._held:
            if group.arrival <= due:
                ready.append(group)
            else:
                waiting.append(group)
                cutoff = min(cutoff, group.first_ts)
        return ready, waiting, cutoff

    def _next_deadline(self, now: float) -> float | None:
        """Seconds until something is due without any new input (None: nothing is)."""
        times: list[float] = []
        if self._held:
            if self._holding(now):
                times.append(now + 0.05)
            else:
                ready, waiting, cutoff = self._split(now)
                times += [group.arrival + self.window for group in waiting]
                if any(group.first_ts <= cutoff for group in ready):
                    times.append(now)
                # else what is due waits for a joiner's entry, whose flush time is below
        for c in self._containers():
            if c.joiner.idle_since is not None:
                times.append(c.joiner.idle_since + self.join_grace)
            if c.retry_at is not None:
                times.append(c.retry_at)
            if c.kill_at is not None:
                times.append(c.kill_at)
        if not times:
            return None
        return max(0.0, min(times) - now)

    # -- notices --------------------------------------------------------------------------

    def _who(self, c: _Container) -> str:
        pod = _clean(c.pod.pod.name)
        return pod if len(c.pod.containers) == 1 else f"{pod}/{_clean(c.name)}"

    def _notice(
        self, level: str, message: str, *, c: _Container | None = None, ts: float | None = None
    ) -> None:
        wall = time.time()
        if c is not None:
            # After the lines already seen from this pod, or at the given time.
            last = c.joiner.last_ts
            wall = ts if ts is not None else max(wall, (last or 0.0) + 1e-6)
        line = LogLine(
            ts=wall,
            pod=c.joiner.pod if c else "",
            container=c.joiner.container if c else "",
            service=c.joiner.service if c else "",
            track=c.joiner.track if c else "stable",
            level=level,
            logger="bva",
            thread="",
            message=clean(message),
            raw_format="bva",
            seq=self._seq(),
        )
        self._push([line], time.monotonic())
        if self._inbox is not None:
            self._inbox.wake()


def _key(pod: Pod) -> str:
    return pod.uid or pod.name


def _has_started(pod: Pod) -> bool:
    """The pod's containers have been started at least once (there may be logs)."""
    return pod.phase not in ("", "Pending")


def _is_running(pod: Pod) -> bool:
    return pod.phase == "Running" and pod.status in ("Running", "NotReady") and not pod.deleting


def _tag(pod: Pod) -> str:
    image = next(iter(pod.images.values()), "")
    last = image.rsplit("/", 1)[-1]
    return _clean(last.split(":", 1)[1]) if ":" in last else ""


def _clean(text: str) -> str:
    return clean(text, MAX_FIELD_CHARS)
