"""The lines of one run of a container, rendered when somebody reads them, and its followers.

An instance's log is its startup lines (``head``), then one chatter step after another until
the chatter ends (termination, or the service's output being fed from outside), then what was
appended after that (shutdown lines, fed lines). Only the last ``max_lines`` lines are kept,
as the kubelet keeps a bounded file.

Chatter steps are a pure function of their index (``logchatter``), so ``body`` is a cache of
the newest steps, ``lo + 1 .. hi``, that can be thrown away and rendered again identically.
Reading catches the cache up to the clock, or drops it when the gap is larger than what it
holds, then renders older steps backwards only as far as the request needs: ``--tail=20`` of
a pod nobody read for an hour renders about twenty lines, not seven thousand.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from itertools import islice

from backends.sandbox.logchatter import STEP_S, Chatter

# A gap is rendered forwards, keeping the cache, when it holds at most this many lines (or at
# most as many as the cache): cheap either way, and repeated small reads stay incremental.
FILL_LINES = 64

Line = tuple[float, str]


class Follower:
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


class Instance:
    """One run of a container, from start to termination."""

    __slots__ = (
        "body",
        "chatter",
        "exit_code",
        "first",
        "followers",
        "head",
        "hi",
        "last",
        "lo",
        "max_lines",
        "reason",
        "rng",
        "running",
    )

    def __init__(
        self, chatter: Chatter, start_step: int, max_lines: int, rng: random.Random
    ) -> None:
        self.chatter = chatter
        self.rng = rng
        self.max_lines = max_lines
        self.head: list[Line] = []
        self.body: deque[Line] = deque(maxlen=max_lines)
        self.first = start_step + 1  # the oldest chatter step
        self.lo = self.hi = start_step
        self.last: int | None = None  # the last chatter step, once the chatter has ended
        self.running = True
        self.followers: set[Follower] = set()
        self.exit_code: int | None = None
        self.reason = ""

    # --- writing -------------------------------------------------------------------------

    def start(self, ts: float, lines: list[str]) -> None:
        self.head = [(ts, line) for line in lines]

    def stop_chatter(self, step: int) -> None:
        """No chatter after ``step``; the steps up to it are rendered, so what is appended
        from now on comes after them."""
        if self.last is None or step < self.last:
            self.last = max(step, self.hi)
        self.advance(self.last)

    def append(self, ts: float, lines: list[str]) -> None:
        """Lines written after the chatter ended (see ``stop_chatter``)."""
        self.body.extend([(ts, line) for line in lines])
        for f in self.followers:
            f.push(ts, lines)

    def advance(self, step: int, deadline: float | None = None) -> bool:
        """Bring the cache up to ``step``; False when ``deadline`` (perf_counter) came first."""
        target = step if self.last is None else min(step, self.last)
        if target <= self.hi:
            return True
        gap_lines = (target - self.hi) * self.chatter.per_step
        if not self.followers and gap_lines > max(FILL_LINES, len(self.body)):
            # Cheaper to render again, backwards, whatever a read turns out to need.
            self.body.clear()
            self.lo = self.hi = target
            return True
        chatter, rng, body, followers = self.chatter, self.rng, self.body, self.followers
        while self.hi < target:
            if deadline is not None and time.perf_counter() > deadline:
                return False
            self.hi += 1
            lines = chatter.lines(self.hi, rng)
            if lines:
                ts = self.hi * STEP_S
                body.extend([(ts, line) for line in lines])
                for f in followers:
                    f.push(ts, lines)
        return True

    def extend_back(self, need: int, oldest: int, deadline: float | None = None) -> bool:
        """Render older steps until the cache holds ``need`` lines or reaches step ``oldest``;
        False when ``deadline`` came first."""
        chatter, rng, body = self.chatter, self.rng, self.body
        stop = max(oldest, self.first)
        need = min(need, self.max_lines)
        while len(body) < need and self.lo >= stop:
            if deadline is not None and time.perf_counter() > deadline:
                return False
            k = self.lo
            self.lo -= 1
            lines = chatter.lines(k, rng)
            if not lines:
                continue
            room = self.max_lines - len(body)
            ts = k * STEP_S
            # extendleft adds in reverse, and a full deque would drop from the newest end.
            body.extendleft([(ts, line) for line in reversed(lines[-room:])])
        return True

    def select(self, tail: int | None, cutoff: float | None) -> list[Line]:
        """The cached lines a read asked for: the last ``tail`` (all when None), then those
        stamped at or after ``cutoff``."""
        lines: list[Line]
        if tail is not None and tail <= len(self.body):
            lines = list(islice(self.body, len(self.body) - tail, None))
        else:
            lines = self._head_room() + list(self.body)
            if tail is not None:
                lines = lines[len(lines) - tail :] if tail < len(lines) else lines
        if cutoff is None:
            return lines
        return [(ts, line) for ts, line in lines if ts >= cutoff]

    def _head_room(self) -> list[Line]:
        # The startup lines count only once every chatter step since is in the cache.
        room = self.max_lines - len(self.body)
        if self.lo >= self.first or room <= 0:
            return []
        return self.head[-room:]

    def finish(self) -> None:
        self.running = False
        for f in self.followers:
            f.close()
        self.followers.clear()
