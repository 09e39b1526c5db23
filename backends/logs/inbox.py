"""How a container's log reaches the merge, whichever orchestrator reads it: the request
(what to read from where), the items a reader thread produces (Chunk, CaughtUp, Ended) and the
bounded Inbox that hands them to the event loop. Orchestrators implement the reading
(backends/kube/log_stream.py for Kubernetes); backends/logs/source.py consumes the items."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from backends.logs.join import Resume
from backends.logs.models import LogLine

__all__ = ["CaughtUp", "Chunk", "Ended", "Inbox", "LogReaderHandle", "Resume", "StreamRequest"]


@dataclass(frozen=True, slots=True)
class StreamRequest:
    pod: str
    container: str
    follow: bool = True
    tail: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None
    previous: bool = False
    resume: Resume | None = None
    namespace: str = ""  # the orchestrator's own scope, filled in by its reader


@dataclass(slots=True)
class Chunk:
    """What one read of a reader completed: ``entries`` built from ``lines`` raw lines (an
    entry still waiting for its continuation lines stays in the joiner). ``catch_up``
    chunks (history the caller asked for) are never dropped; the inbox's bound applies to
    live lines, which keep coming."""

    sid: int
    entries: list[LogLine]
    lines: int
    arrival: float
    catch_up: bool = False


@dataclass(slots=True)
class CaughtUp:
    sid: int


@dataclass(slots=True)
class Ended:
    """The reader is done. ``error`` is None for a normal end of stream. ``reason`` names
    the API's expected refusals: "waiting" (the container has not started yet) and
    "no-previous" (``previous`` asked of a container that never restarted)."""

    sid: int
    error: str | None
    resume: Resume | None
    reason: str = ""
    received: bool = False


Item = Chunk | CaughtUp | Ended


class Inbox:
    """Thread -> event loop. ``put`` from any thread; ``drain`` and ``wait`` on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit_lines: int) -> None:
        self._loop = loop
        self._limit = limit_lines
        self._lock = threading.Lock()
        self._items: deque[Item] = deque()
        self._lines = 0
        self._signalled = False
        self._closed = False
        self.dropped = 0
        self.event = asyncio.Event()

    def put(self, item: Item) -> None:
        with self._lock:
            if self._closed:
                return
            if isinstance(item, Chunk) and not item.catch_up:
                n = item.lines
                if self._lines + n > self._limit:
                    self.dropped += n
                    return
                self._lines += n
            self._items.append(item)
            if self._signalled:
                return
            self._signalled = True
        # A closed loop raises RuntimeError: nobody will read this any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.event.set)

    @property
    def full(self) -> bool:
        """The consumer is this far behind: new live lines would only be dropped."""
        return self._lines >= self._limit

    def skip(self, lines: int) -> None:
        """Live lines a reader threw away unparsed because the inbox was full."""
        with self._lock:
            self.dropped += lines

    def wake(self) -> None:
        """From the loop: make the consumer look again (a pod event, a notice)."""
        self.event.set()

    def drain(self) -> list[Item]:
        self.event.clear()
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._lines = 0
            self._signalled = False
        return items

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._items.clear()


class LogReaderHandle(Protocol):
    """One container's log being read on its own thread (an orchestrator's log stream)."""

    sid: int
    caught_up: bool
    started_at: float

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...
