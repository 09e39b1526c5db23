"""List-then-watch over the blocking client, delivered to asyncio as WatchEvents.

One daemon thread per watch runs the reflector loop (list, watch from the list's
resourceVersion, re-watch after the server's timeout, relist on 410 Gone, back off on
outages) and hands each event to the event loop with ``call_soon_threadsafe``. Closing the
async iterator stops the thread at once by shutting the streaming socket down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from backends.errors import BvaError
from backends.kube.client import StreamHandle, http_status, map_error
from backends.models import WatchEvent

T = TypeVar("T")

ListFn = Callable[[], tuple[Sequence[dict[str, Any]], str]]
"""Blocking list: (items, resourceVersion of the list)."""
OpenFn = Callable[[str, int], Any]
"""Blocking watch request from a resourceVersion with a server timeout: an open urllib3 response."""


@dataclass(frozen=True, slots=True)
class WatchConfig:
    server_timeout_s: int = 60
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    join_timeout_s: float = 2.0


class _Gone(Exception):
    """The resourceVersion we watch from has been compacted away: relist."""


class _Stopped(Exception):
    """The consumer went away; unwind the thread."""


class _Reflector(threading.Thread, Generic[T]):
    def __init__(
        self,
        *,
        name: str,
        server: str,
        list_fn: ListFn,
        open_fn: OpenFn,
        convert: Callable[[dict[str, Any]], T | None],
        emit: Callable[[WatchEvent[T]], None],
        on_exit: Callable[[], None],
        config: WatchConfig,
        resume_from: str | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._server = server
        self._list = list_fn
        self._open = open_fn
        self._convert = convert
        self._emit_raw = emit
        self._on_exit = on_exit
        self._config = config
        self._reading = StreamHandle()
        self._stop_event = self._reading.stopped
        self._last_good: float | None = None
        self._resume_from = resume_from

    # -- called from the event loop ------------------------------------------------------

    def stop(self) -> None:
        self._reading.stop()

    # -- the thread ----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._reflect()
        except _Stopped:
            pass
        except BaseException as exc:  # a bug must still reach the consumer, not die silently
            with contextlib.suppress(_Stopped):
                self._emit(WatchEvent("ERROR", message=f"watch stopped: {exc!r}"))
        finally:
            self._on_exit()

    def _emit(self, event: WatchEvent[T]) -> None:
        if self._stop_event.is_set():
            raise _Stopped
        try:
            self._emit_raw(event)
        except RuntimeError as exc:  # the event loop is closed: nobody is listening
            raise _Stopped from exc

    def _reflect(self) -> None:
        """client-go's reflector: re-watch from the last resourceVersion after an outage
        (a relist of everything would be wasted work) and relist only on 410 Gone."""
        rv: str | None = self._resume_from  # None: we must (re)list before watching
        store: dict[str, T] = {}
        listed = False  # a resumed watch holds no state of its own until it lists
        delay = self._config.backoff_initial_s
        in_outage = False
        while not self._stop_event.is_set():
            try:
                if rv is None:
                    items, rv = self._list()
                    self._last_good = time.time()
                    store = {}
                    for item in items:
                        model = self._convert(item)
                        if model is not None:
                            store[_key(item)] = model
                    listed = True
                    self._emit(WatchEvent("RESYNC", items=tuple(store.values())))
                    in_outage, delay = False, self._config.backoff_initial_s
                response = self._open_watch(rv)
                if in_outage:
                    # Back after an outage with a still-valid resourceVersion: our state is
                    # current up to rv and the stream delivers the rest. Say so, which also
                    # clears the consumer's error.
                    self._last_good = time.time()
                    self._emit(WatchEvent("RESYNC", items=tuple(store.values())))
                    in_outage, delay = False, self._config.backoff_initial_s
                started = time.monotonic()
                rv, saw_events = self._stream(response, rv, store)
                if not saw_events and time.monotonic() - started < 0.5:
                    # A server that ends or breaks watches at once would make us spin.
                    self._sleep(delay)
                    delay = min(delay * 2, self._config.backoff_max_s)
            except _Gone:
                rv = None
            except _Stopped:
                raise
            except Exception as exc:
                if self._stop_event.is_set():
                    return
                if not in_outage:
                    err = map_error(exc, self._server)
                    self._emit(WatchEvent("ERROR", message=err.message, last_good=self._last_good))
                    in_outage = True
                if not listed:
                    # An empty store must not be announced as the truth after the outage.
                    rv = None
                self._sleep(delay)
                delay = min(delay * 2, self._config.backoff_max_s)

    def _sleep(self, delay: float) -> None:
        # Jitter keeps many clients from reconnecting in lockstep after an API restart.
        if self._stop_event.wait(delay * random.uniform(0.5, 1.0)):
            raise _Stopped

    def _open_watch(self, rv: str) -> Any:
        try:
            response = self._open(rv, self._config.server_timeout_s)
        except Exception as exc:
            if http_status(exc) == 410:
                raise _Gone from exc
            raise
        self._reading.hold(response)
        return response

    def _stream(self, response: Any, rv: str, store: dict[str, T]) -> tuple[str, bool]:
        """Read one watch response to its end (the server's timeout, or a broken connection).

        Returns the last resourceVersion seen and whether anything arrived. A broken stream
        is not yet an outage: the caller re-watches at once, and only a failing request counts.
        """
        saw_events = False
        try:
            for line in _lines(response):
                if self._stop_event.is_set():
                    raise _Stopped
                rv, emitted = self._handle(line, rv, store)
                saw_events = saw_events or emitted
        except (_Stopped, _Gone, BvaError):
            raise
        except Exception:
            pass  # connection reset, read timeout, truncated chunk: re-watch from rv
        finally:
            self._reading.release()
            with contextlib.suppress(Exception):
                response.close()
        if self._stop_event.is_set():
            raise _Stopped
        return rv, saw_events

    def _handle(self, line: bytes, rv: str, store: dict[str, T]) -> tuple[str, bool]:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise BvaError(f"unreadable watch event from {self._server}") from exc
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise BvaError(f"watch error from {self._server}: {obj.get('message') or obj}")
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        self._last_good = time.time()
        if kind == "BOOKMARK":
            return new_rv, True
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return new_rv, False
        model = self._convert(obj)
        if model is not None:
            if kind == "DELETED":
                store.pop(_key(obj), None)
            else:
                store[_key(obj)] = model
            self._emit(WatchEvent(kind, obj=model))
        return new_rv, True


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _lines(response: Any) -> Iterator[bytes]:
    """Newline-delimited JSON from a streaming response, as bytes become available."""
    buffer = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


async def watch_events(
    *,
    name: str,
    server: str,
    list_fn: ListFn,
    open_fn: OpenFn,
    convert: Callable[[dict[str, Any]], T | None],
    config: WatchConfig | None = None,
    registry: set[Callable[[], None]] | None = None,
    resume_from: str | None = None,
) -> AsyncGenerator[WatchEvent[T], None]:
    """Run a reflector thread for as long as the consumer iterates.

    ``registry`` receives the stop callback while the watch runs, so the adapter's close()
    can end every watch it started. ``resume_from`` skips the initial list and watches from
    that resourceVersion (the consumer already holds the state as of it).
    """
    loop = asyncio.get_running_loop()
    # None marks the end: the reflector stopped (adapter closed) and the iteration ends.
    queue: asyncio.Queue[WatchEvent[T] | None] = asyncio.Queue()
    finished: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        def mark() -> None:
            queue.put_nowait(None)
            if not finished.done():
                finished.set_result(None)

        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(mark)

    def emit(event: WatchEvent[T]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    reflector: _Reflector[T] = _Reflector(
        name=f"bva-watch-{name}",
        server=server,
        list_fn=list_fn,
        open_fn=open_fn,
        convert=convert,
        emit=emit,
        on_exit=on_exit,
        config=config or WatchConfig(),
        resume_from=resume_from,
    )
    if registry is not None:
        registry.add(reflector.stop)
    reflector.start()
    try:
        while (event := await queue.get()) is not None:
            yield event
    finally:
        reflector.stop()
        if registry is not None:
            registry.discard(reflector.stop)
        # A list request in flight cannot be interrupted; it ends within its own timeout.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(finished), (config or WatchConfig()).join_timeout_s
            )
            # on_exit runs in the thread's last lines: the join is immediate.
            reflector.join(0.5)
