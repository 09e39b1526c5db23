"""Reading one container's log over the Kubernetes API in a thread, handed to asyncio.

A ``LogReader`` thread does what a follow needs without losing or repeating lines:

1. catch up: one plain (non-follow) read with the caller's tail/since options, read to the
   end, so a merge can hold everything back until every stream has its history in;
2. follow from the last timestamp it saw (``sinceTime``), skipping what it already has;
3. end when the server ends the stream (the container exited, the pod went away, the API
   dropped the connection): the owner decides whether to reconnect, and does so with the
   reader's ``resume`` point.

``sinceTime`` has one-second resolution on the wire, so a resumed read asks from the start
of the last second seen and drops lines up to the last timestamp it already delivered
(counting lines that share that exact timestamp). Lines are classified, sanitised and
joined into entries in the thread (the container's ``Joiner``, under its lock); the event
loop only merges, and flushes an entry whose stream went quiet.

Lines reach the loop through an ``Inbox``: a lock-protected deque with one wake-up per
burst (not one per line), bounded in lines: when the consumer falls behind, new chunks are
dropped and counted instead of growing memory and lag without limit, and readers skip
parsing what would be dropped anyway.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from backends.errors import BvaError
from backends.kube.client import KubeClient, StreamHandle, http_status, map_error
from backends.logs.inbox import CaughtUp, Chunk, Ended, Inbox, StreamRequest
from backends.logs.join import Dedupe, Joiner, Resume
from backends.logs.models import LogLine
from backends.logs.parse import parse_kubelet_time

__all__ = ["LogReader", "open_log"]

CHUNK_BYTES = 65_536
# Longest line kept whole; a longer one is cut here (and sanitising cuts it further).
MAX_RAW_LINE = 1_048_576


def open_log(
    kube: KubeClient, namespace: str, pod: str, query: list[tuple[str, str]], timeout: Any
) -> Any:
    """GET .../pods/{pod}/log as an open urllib3 response (status checked, body unread).

    The generated ``read_namespaced_pod_log`` has no ``sinceTime`` parameter, so the request
    is built with the client's own serializer: same auth, TLS and retries as every call.
    """
    api = kube.api_client
    params = api.param_serialize(
        method="GET",
        resource_path="/api/v1/namespaces/{namespace}/pods/{name}/log",
        path_params={"namespace": namespace, "name": pod},
        query_params=query,
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*params, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        response.read()
        from kubernetes.client.exceptions import ApiException

        raise ApiException(http_resp=response)
    return response.response


def _blocks(response: Any, stop: threading.Event | None = None) -> Iterator[str]:
    """The complete lines of each chunk read, decoded as one block (joined by newlines,
    without the last one). A chunk may split a multi-byte character, a line never does, so
    cutting at the last newline keeps every character whole."""
    buffer = b""
    while True:
        if stop is not None and stop.is_set():
            return
        chunk = response.read1(CHUNK_BYTES)
        if not chunk:
            break
        buffer += chunk
        cut = buffer.rfind(b"\n")
        if cut < 0:
            if len(buffer) > MAX_RAW_LINE:
                yield buffer[:MAX_RAW_LINE].decode("utf-8", "replace")
                buffer = b""
            continue
        block, buffer = buffer[:cut], buffer[cut + 1 :]
        yield block.decode("utf-8", "replace")
    if buffer:
        yield buffer.decode("utf-8", "replace")


def log_query(req: StreamRequest, *, follow: bool, resume: Resume | None) -> list[tuple[str, str]]:
    """The pods/log query string: what to read of ``req``, from ``resume`` when given."""
    q = [("container", req.container), ("timestamps", "true")]
    if follow:
        q.append(("follow", "true"))
    if req.previous:
        q.append(("previous", "true"))
    if resume is not None:
        q.append(("sinceTime", rfc3339_seconds(resume.ts)))
        return q
    if req.tail is not None and req.tail >= 0:
        q.append(("tailLines", str(req.tail)))
    # The API takes one of sinceSeconds and sinceTime, not both.
    if req.since_time is not None:
        q.append(("sinceTime", rfc3339_seconds(req.since_time)))
    elif req.since_seconds is not None:
        q.append(("sinceSeconds", str(max(1, req.since_seconds))))
    return q


def rfc3339_seconds(ts: float) -> str:
    return datetime.fromtimestamp(math.floor(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Stopped(Exception):
    pass


class LogReader(threading.Thread):
    """One container's log: catch up, then (if ``req.follow``) follow; see the module doc."""

    def __init__(
        self,
        sid: int,
        kube: KubeClient,
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
        super().__init__(name=f"bva-log-{req.pod}-{req.container}", daemon=True)
        self.sid = sid
        self._kube = kube
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
        try:
            self._run()
        except _Stopped:
            pass
        except BaseException as exc:
            if not self._stop_event.is_set():
                self._inbox.put(
                    Ended(
                        self.sid,
                        _message(exc, self._kube.server),
                        self._dedupe.resume(),
                        reason=_refusal(exc),
                        received=self._received,
                    )
                )
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _run(self) -> None:
        req = self.req
        # Catch up, then follow from what the catch-up delivered.
        self._read(log_query(req, follow=False, resume=req.resume), self._timeouts)
        self._catching_up = False
        self._inbox.put(CaughtUp(self.sid))
        if req.follow:
            resume = self._dedupe.resume()
            query = (
                log_query(req, follow=True, resume=resume)
                if resume is not None
                # Nothing in the window yet: the same window again (tail 0 means "from
                # now", as with kubectl); whatever it holds now is new.
                else log_query(replace(req, previous=False), follow=True, resume=None)
            )
            # Lines older than the resume point that the new request repeats are dropped.
            self._dedupe = Dedupe(resume)
            self._read(query, self._follow_timeouts)
        if not self._stop_event.is_set():
            self._inbox.put(Ended(self.sid, None, self._dedupe.resume(), received=self._received))

    def _read(self, query: list[tuple[str, str]], timeout: tuple[float, float]) -> None:
        if self._stop_event.is_set():
            raise _Stopped
        response = open_log(self._kube, self.req.namespace, self.req.pod, query, timeout)
        self._reading.hold(response)
        if self._stop_event.is_set():
            raise _Stopped
        try:
            joiner = self._joiner
            inbox = self._inbox
            for block in _blocks(response, self._stop_event):
                if not self._catching_up and (inbox.full or self._behind(block)):
                    # The loop is behind, or this reader is: parsing lines only to drop them,
                    # or to show them seconds late, costs the CPU needed to catch up.
                    # Counted, and said in a notice.
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
                self._inbox.put(Chunk(self.sid, entries, n, now, catch_up=self._catching_up))
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
                response.release_conn()
        if self._stop_event.is_set():
            raise _Stopped

    def _behind(self, block: str) -> bool:
        """Whether the newest line of ``block`` is ``shed_after`` seconds later than the
        best this stream has done. Measured against the stream's own best rather than the
        clock, so a node whose clock is off does not look behind."""
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


def _message(exc: BaseException, server: str) -> str:
    err = exc if isinstance(exc, BvaError) else map_error(exc, server)
    return err.message


def _refusal(exc: BaseException) -> str:
    """Which expected 400 the API answered: "waiting", "no-previous", or "" for others."""
    if http_status(exc) != 400:
        return ""
    body = getattr(exc, "body", None) or ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body)
    if "waiting to start" in text or "ContainerCreating" in text:
        return "waiting"
    if "previous terminated container" in text:
        return "no-previous"
    return ""
