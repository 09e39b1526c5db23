"""Reading one container's log from the Docker Engine in a thread, handed to asyncio.

The compose counterpart of backends/kube/log_stream.py, speaking the same protocol to the
``Inbox`` (Chunk items, one CaughtUp, then Ended), so backends/logs/source.py merges compose
containers exactly as it merges pods. A ``ContainerLogReader``:

1. inspects the container (``StreamRequest.pod`` is its name, ``bharathva-auth-service-1``):
   its id, so that the catch-up and the follow read the same container even when compose
   recreates one under that name, and whether it has a TTY (a raw stream) or not (a
   multiplexed one: frames of an 8-byte header, the stream type, 3 zero bytes, a big-endian
   uint32 length, then the bytes);
2. catches up: one plain read of ``/containers/{id}/logs`` with the caller's tail/since;
3. follows from the last timestamp it saw (``since`` takes fractional seconds, and keeps
   what is at or after it), dropping the lines it already has (``Dedupe``);
4. ends when the Engine ends the stream (the container stopped: a follow of a container that
   is not running ends after its log) or the connection breaks; the owner reconnects, if the
   container still runs, from the reader's ``resume`` point.

``timestamps=1`` prefixes each line with Go's RFC3339Nano in UTC, nine fraction digits
(``2026-12-07T12:22:37.123456789Z line``): the kubelet's shape, which ``parse_kubelet_time``
and the Joiner read as they are; the Joiner also sanitises every line, as for pods.

The Engine's log drivers cut a line longer than 16 KiB into partial messages, each sent as a
frame of its own that repeats the timestamp of the line's first one. The frames of one line
are glued back and the repeated stamps dropped (a frame that ends without a newline and is
followed by one with another stamp was a whole message: a program's last words without a
newline). A TTY's raw stream has no frames: there a stamp repeated inside a long line is
dropped instead. Lines are cut at ``MAX_RAW_LINE`` bytes, as the kube reader cuts them (the
rest of such a line is dropped), and decoded only as whole lines.

Kubernetes' ``previous`` (the log of the instance before a restart) has no Docker
equivalent: a container's log already spans its restarts. ``previous`` reads the container's
log within the caller's tail/since, without following.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from backends.compose.engine import Engine, one_line
from backends.errors import BvaError, NotFound, SourceUnavailable
from backends.kube.client import StreamHandle
from backends.kube.log_stream import CHUNK_BYTES, MAX_RAW_LINE
from backends.logs.inbox import CaughtUp, Chunk, Ended, Inbox, StreamRequest
from backends.logs.join import Dedupe, Joiner, Resume
from backends.logs.models import LogLine
from backends.logs.parse import parse_kubelet_time

__all__ = ["ContainerLogReader", "LogLines", "log_params", "unix_since"]

# The log drivers' partial-message size: a line longer than this came in pieces.
PARTIAL_BYTES = 16_384
# A frame's start must hold this much (or the whole frame) before its stamp is looked at.
_STAMP_ROOM = 40
_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d) ")
# How much earlier than a resume point a read asks: a float epoch is only good to about a
# quarter of a microsecond, and asking a little early only costs lines Dedupe drops.
_EARLY_US = 2


def unix_since(ts: float, *, early_us: int = 0) -> str:
    """``ts`` (epoch seconds) as the Engine's ``since``: seconds.nanoseconds, rounded down to
    the microsecond, ``early_us`` microseconds earlier; never negative."""
    us = max(0, math.floor(ts * 1_000_000) - early_us)
    seconds, micros = divmod(us, 1_000_000)
    return f"{seconds}.{micros * 1000:09d}"


def log_params(
    req: StreamRequest,
    *,
    follow: bool,
    resume: Resume | None,
    now: Callable[[], float] = time.time,
) -> dict[str, str]:
    """The logs query string: what to read of ``req``, from ``resume`` when given."""
    params = {"stdout": "1", "stderr": "1", "timestamps": "1"}
    if follow:
        params["follow"] = "1"
    if resume is not None:
        params["since"] = unix_since(resume.ts, early_us=_EARLY_US)
        return params
    if req.tail is not None and req.tail >= 0:
        params["tail"] = str(req.tail)
    # The Engine takes a time only: ``since_seconds`` counts back from this clock, as the
    # docker CLI's --since does.
    if req.since_time is not None:
        # A line stamped exactly at since_time is kept: a float may round it up past it.
        params["since"] = unix_since(req.since_time, early_us=1)
    elif req.since_seconds is not None:
        params["since"] = unix_since(now() - max(1, req.since_seconds))
    return params


class LogLines:
    """Complete lines (bytes, without the newline) out of a log stream's bytes as they come,
    whatever the reads' boundaries: frames demultiplexed (``multiplexed``), a line's partial
    messages glued back, overlong lines cut at ``MAX_RAW_LINE``. stdout and stderr (and, in
    a raw stream, the one stream) each have their line in progress."""

    def __init__(self, multiplexed: bool, max_line: int = MAX_RAW_LINE) -> None:
        self.multiplexed = multiplexed
        self._max = max_line
        self._rest = b""  # input not used yet: a frame header, or a frame's first bytes
        self._stream = 0  # the stream of the frame being read
        self._left = 0  # bytes of that frame still to come
        self._fresh = False  # none of its bytes taken yet (its stamp not looked at)
        self._pending: dict[int, bytearray] = {}
        self._cut: set[int] = set()  # streams whose line in progress reached max_line

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        if not self.multiplexed:
            self._take(0, data, out)
            return out
        data = self._rest + data if self._rest else data
        pos, end = 0, len(data)
        while pos < end:
            if self._left == 0:
                if end - pos < 8:
                    break
                stream, zeros = data[pos], data[pos + 1 : pos + 4]
                if stream > 3 or zeros != b"\0\0\0":
                    # Not a frame header: the stream is raw after all.
                    self.multiplexed = False
                    self._take(0, data[pos:], out)
                    self._rest = b""
                    return out
                self._stream = stream
                self._left = int.from_bytes(data[pos + 4 : pos + 8], "big")
                self._fresh = True
                pos += 8
                continue
            if self._fresh:
                if end - pos < min(self._left, _STAMP_ROOM):
                    break
                self._fresh = False
                head = data[pos : pos + min(self._left, _STAMP_ROOM)]
                skip = self._frame_start(self._stream, head, out)
                pos += skip
                self._left -= skip
            n = min(end - pos, self._left)
            self._take(self._stream, data[pos : pos + n], out)
            pos += n
            self._left -= n
        self._rest = data[pos:]
        return out

    def end(self) -> list[bytes]:
        """The lines still in progress when the stream ended (written without a newline)."""
        out = [self._line(s) for s, line in sorted(self._pending.items()) if line]
        self._rest = b""
        self._left = 0
        return out

    def _frame_start(self, stream: int, head: bytes, out: list[bytes]) -> int:
        """How many bytes to skip at the start of a frame: the stamp of a line's partial
        message after its first one."""
        pending = self._pending.get(stream)
        if not pending:
            return 0
        m = _STAMP.match(head)
        if m is not None and pending.startswith(m.group()):
            return m.end()
        out.append(self._line(stream))  # a message without a newline: whole by itself
        return 0

    def _take(self, stream: int, data: bytes, out: list[bytes]) -> None:
        pending = self._pending.get(stream)
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if not pending:
                piece = data[start:nl]
                out.append(self._fix(piece[: self._max]) if len(piece) > PARTIAL_BYTES else piece)
            else:
                self._append(stream, pending, data[start:nl])
                out.append(self._line(stream))
            start = nl + 1
        if start < len(data):
            if pending is None:
                pending = self._pending[stream] = bytearray()
            self._append(stream, pending, data[start:])

    def _append(self, stream: int, pending: bytearray, data: bytes) -> None:
        if stream in self._cut:
            return
        pending += data
        if len(pending) > self._max:
            del pending[self._max :]
            self._cut.add(stream)

    def _line(self, stream: int) -> bytes:
        pending = self._pending[stream]
        line = bytes(pending)
        pending.clear()
        self._cut.discard(stream)
        return self._fix(line) if len(line) > PARTIAL_BYTES else line

    def _fix(self, line: bytes) -> bytes:
        """A raw stream's long line: drop the stamp its partial messages repeat."""
        if self.multiplexed:
            return line
        m = _STAMP.match(line)
        if m is None:
            return line
        return line[: m.end()] + line[m.end() :].replace(m.group(), b"")


def _blocks(response: Any, lines: LogLines, stop: threading.Event | None = None) -> Iterator[str]:
    """The complete lines of each read, decoded as one block (joined by newlines)."""
    while True:
        if stop is not None and stop.is_set():
            return
        chunk = response.read1(CHUNK_BYTES)
        if not chunk:
            break
        got = lines.feed(chunk)
        if got:
            yield b"\n".join(got).decode("utf-8", "replace")
    rest = lines.end()
    if rest:
        yield b"\n".join(rest).decode("utf-8", "replace")


class _Stopped(Exception):
    pass


class ContainerLogReader(threading.Thread):
    """One container's log: catch up, then (if ``req.follow``) follow; see the module doc."""

    def __init__(
        self,
        sid: int,
        engine: Engine,
        req: StreamRequest,
        inbox: Inbox,
        joiner: Joiner,
        parse_lock: threading.Lock | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        follow_read_timeout: float = 300.0,
        on_exit: Callable[[], None] | None = None,
        shed_after: float | None = None,
    ) -> None:
        super().__init__(name=f"bva-log-{req.pod}", daemon=True)
        self.sid = sid
        self._engine = engine
        self.req = req
        self._inbox = inbox
        self._timeouts = (connect_timeout, read_timeout)
        # A follow of a quiet container is silent for long; past this the connection is
        # presumed dead and the owner reconnects from the resume point.
        self._follow_timeouts = (connect_timeout, follow_read_timeout)
        self._on_exit = on_exit
        # Live lines this much later than the stream's best lag are skipped (None: never).
        self._shed_after = shed_after
        self._best_lag = math.inf
        self._reading = StreamHandle()
        self._stop_event = self._reading.stopped
        self._dedupe = Dedupe(req.resume)
        self._joiner = joiner
        self._parse_lock = parse_lock or threading.Lock()
        self._received = False
        self._catching_up = True
        self.started_at = time.monotonic()
        # Set by the owner (on the event loop) when the CaughtUp item is handled.
        self.caught_up = False

    def stop(self) -> None:
        """Ask the thread to end and unblock its read at once (shut the socket down)."""
        self._reading.stop()

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        api: Any = None
        try:
            api = self._engine.fresh(self._timeouts[1])
            self._run(api)
        except _Stopped:
            pass
        except BaseException as exc:
            if not self._stop_event.is_set():
                self._inbox.put(
                    Ended(
                        self.sid,
                        _message(exc, self._engine.host),
                        self._dedupe.resume(),
                        received=self._received,
                    )
                )
        finally:
            if api is not None:
                with contextlib.suppress(Exception):
                    api.close()
            if self._on_exit is not None:
                self._on_exit()

    def _run(self, api: Any) -> None:
        req = self.req
        info = api.inspect_container(req.pod)
        container = str(info.get("Id") or req.pod)
        multiplexed = not (info.get("Config") or {}).get("Tty")
        # ``previous`` has no Docker equivalent (the log already spans the container's
        # restarts): it reads the log within tail/since, and never follows.
        follow = req.follow and not req.previous
        catch_up = log_params(req, follow=False, resume=req.resume)
        self._read(api, container, multiplexed, catch_up, self._timeouts)
        self._catching_up = False
        self._inbox.put(CaughtUp(self.sid))
        if follow:
            resume = self._dedupe.resume()
            # From the last line delivered; with nothing in the window yet, the same window
            # again (tail 0 means "from now", as with docker logs): what it holds now is new.
            params = log_params(req, follow=True, resume=resume)
            # Lines up to the resume point that the new request repeats are dropped.
            self._dedupe = Dedupe(resume)
            self._read(api, container, multiplexed, params, self._follow_timeouts)
        if not self._stop_event.is_set():
            self._inbox.put(Ended(self.sid, None, self._dedupe.resume(), received=self._received))

    def _read(
        self,
        api: Any,
        container: str,
        multiplexed: bool,
        params: dict[str, str],
        timeout: tuple[float, float],
    ) -> None:
        if self._stop_event.is_set():
            raise _Stopped
        url = api._url("/containers/{0}/logs", container)
        response = api._get(url, params=params, stream=True, timeout=timeout)
        try:
            api._raise_for_status(response)
        except BaseException:
            response.close()
            raise
        raw = response.raw
        self._reading.hold(raw)
        try:
            if self._stop_event.is_set():
                raise _Stopped
            joiner = self._joiner
            inbox = self._inbox
            for block in _blocks(raw, LogLines(multiplexed), self._stop_event):
                if not self._catching_up and (inbox.full or self._behind(block)):
                    # The loop is behind, or this reader is: parsing lines only to drop them,
                    # or to show them seconds late, costs the CPU needed to catch up.
                    inbox.skip(block.count("\n") + 1)
                    continue
                entries: list[LogLine] = []
                now = time.monotonic()
                with self._parse_lock, joiner.lock:
                    if self._stop_event.is_set():
                        raise _Stopped
                    n = joiner.feed_block(block, now, entries, self._dedupe)
                self._received = True
                # Sent even when every line is still held in the joiner: the loop must
                # learn that it has something to flush if the stream goes quiet.
                inbox.put(Chunk(self.sid, entries, n, now, catch_up=self._catching_up))
        except _Stopped:
            raise
        except Exception:
            if self._stop_event.is_set():
                raise _Stopped from None
            # A reset or a read timeout mid-stream ends this stream like a normal end: the
            # owner reconnects from the resume point if the container still runs.
        finally:
            self._reading.release()
            with contextlib.suppress(Exception):
                response.close()
        if self._stop_event.is_set():
            raise _Stopped

    def _behind(self, block: str) -> bool:
        """Whether the newest line of ``block`` is ``shed_after`` seconds later than the
        best this stream has done (measured against its own best, not the clock)."""
        if self._shed_after is None:
            return False
        last = block[block.rfind("\n") + 1 :]
        ts = parse_kubelet_time(last[: last.find(" ")]) if " " in last[:40] else None
        if ts is None:
            return False
        lag = time.time() - ts
        if lag < self._best_lag:
            self._best_lag = lag
        return lag - self._best_lag > self._shed_after


def _message(exc: BaseException, host: str) -> str:
    """Any failure of the client as one line (naming the Engine, or the container)."""
    if isinstance(exc, BvaError):
        return exc.message
    import docker.errors
    import requests.exceptions

    err: BvaError
    if isinstance(exc, docker.errors.NotFound):
        err = NotFound(one_line(exc))  # "No such container: bharathva-auth-service-1"
    elif isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        err = BvaError(f"the Docker Engine at {host} answered HTTP {status}: {one_line(exc)}")
    elif isinstance(exc, requests.exceptions.Timeout):
        err = SourceUnavailable(f"the Docker Engine at {host} timed out")
    elif isinstance(exc, requests.exceptions.ConnectionError | docker.errors.DockerException):
        err = SourceUnavailable(f"cannot reach the Docker Engine at {host}: {one_line(exc, 160)}")
    elif isinstance(exc, requests.exceptions.RequestException | OSError):
        err = SourceUnavailable(f"lost the connection to the Docker Engine at {host}")
    else:
        err = BvaError(f"Docker client error ({type(exc).__name__}): {one_line(exc, 160)}")
    return err.message
