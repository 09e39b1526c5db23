"""Changes of a compose project as WatchEvents, driven by the Engine's event stream.

A daemon thread reads ``/events`` (containers of the project only) and only says "something
changed"; the event loop then relists and hands on what differs. Relisting on an event, not
decoding each event into a state, means a missed or reordered event can never leave a wrong
state behind. The stream reconnects with backoff; after a gap the list is sent whole again
(RESYNC), as a Kubernetes watch relists after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from backends.compose import labels as L
from backends.compose.engine import Engine, one_line
from backends.errors import BvaError
from backends.models import WatchEvent

T = TypeVar("T")
BACKOFF_S = (0.2, 5.0)
# The actions that can change what a list shows. A HEALTHCHECK's probes are exec_create,
# exec_start and exec_die events each interval in every container: relisting on those cost a
# console most of its idle CPU. health_status comes only when the status changes.
STATE_ACTIONS = (
    "create", "start", "restart", "die", "stop", "destroy", "pause", "unpause",
    "health_status", "oom", "rename", "update",
)  # fmt: skip


def _changes_state(event: dict[str, Any]) -> bool:
    """The Engine filters by action already; an Engine that ignores the filter still must not
    make every probe a relist."""
    action = str(event.get("Action") or event.get("status") or "")
    return action.split(":", 1)[0] in STATE_ACTIONS


class EventPump(threading.Thread):
    """Reads the project's container events until stopped; says ``ok`` on each (re)connect,
    ``event`` for each event and ``error`` (with one line) when the stream breaks."""

    def __init__(self, engine: Engine, project: str, emit: Callable[[str, str], None]) -> None:
        super().__init__(name=f"compose-events-{project}", daemon=True)
        self._engine = engine
        self._project = project
        self._emit = emit
        self._stop = threading.Event()
        self._stream: Any = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def run(self) -> None:
        delay = BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                api = self._engine.fresh(timeout=None)
                filters = {
                    "type": ["container"],
                    "label": [f"{L.PROJECT}={self._project}"],
                    "event": list(STATE_ACTIONS),
                }
                stream = api.events(decode=True, filters=filters)
                with self._lock:
                    self._stream = stream
                if self._stop.is_set():
                    stream.close()
                    return
                self._emit("ok", "")
                delay = BACKOFF_S[0]
                for event in stream:
                    if self._stop.is_set():
                        return
                    if isinstance(event, dict) and _changes_state(event):
                        self._emit("event", str(event.get("id") or ""))
                if not self._stop.is_set():
                    self._emit(
                        "error", f"the Docker Engine at {self._engine.host} closed the event stream"
                    )
            except Exception as exc:  # the stream's errors are many (requests, urllib3, docker)
                if self._stop.is_set():
                    return
                self._emit(
                    "error",
                    f"cannot reach the Docker Engine at {self._engine.host}: {one_line(exc, 160)}",
                )
            self._stop.wait(delay)
            delay = min(delay * 2, BACKOFF_S[1])


class Watcher(Generic[T]):
    """List, then follow the event pump: RESYNC first, then ADDED/MODIFIED/DELETED."""

    def __init__(
        self,
        engine: Engine,
        project: str,
        list_fn: Callable[[], Awaitable[list[T]]],
        key: Callable[[T], Hashable],
    ) -> None:
        self._engine = engine
        self._project = project
        self._list = list_fn
        self._key = key

    async def events(self) -> AsyncGenerator[WatchEvent[T], None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def emit(kind: str, detail: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(queue.put_nowait, (kind, detail))

        pump = EventPump(self._engine, self._project, emit)
        pump.start()
        state: dict[Hashable, T] = {}
        last_good: float | None = None
        outage = True  # until the first list
        said = False  # the outage's ERROR was sent: once per outage
        try:
            while True:
                if outage:
                    try:
                        items = await self._list()
                    except BvaError as exc:
                        if not said:
                            said = True
                            yield WatchEvent("ERROR", message=str(exc), last_good=last_good)
                        await self._wait_for_ok(queue)
                        continue
                    state = {self._key(i): i for i in items}
                    last_good, outage, said = time.time(), False, False
                    yield WatchEvent("RESYNC", items=tuple(items))
                    continue
                kind, detail = await queue.get()
                # Relist at once (no wait to gather a burst): the events that arrive while
                # listing are taken together by the next turn, so a burst costs two lists.
                await asyncio.sleep(0)
                kinds = {kind}
                while not queue.empty():
                    kinds.add(queue.get_nowait()[0])
                if "error" in kinds and "ok" not in kinds:
                    outage, said = True, True
                    yield WatchEvent("ERROR", message=detail, last_good=last_good)
                    await self._wait_for_ok(queue)
                    continue
                try:
                    items = await self._list()
                except BvaError as exc:
                    outage, said = True, True
                    yield WatchEvent("ERROR", message=str(exc), last_good=last_good)
                    continue
                last_good = time.time()
                fresh = {self._key(i): i for i in items}
                for k, item in fresh.items():
                    if k not in state:
                        yield WatchEvent("ADDED", obj=item)
                    elif state[k] != item:
                        yield WatchEvent("MODIFIED", obj=item)
                for k, item in state.items():
                    if k not in fresh:
                        yield WatchEvent("DELETED", obj=item)
                state = fresh
        finally:
            pump.stop()

    @staticmethod
    async def _wait_for_ok(queue: asyncio.Queue[tuple[str, str]]) -> None:
        """Until the stream is back (or a second passes: then the list is tried again)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while (await queue.get())[0] != "ok":
                    pass
