"""A HealthProber on its own thread and event loop.

httpx/httpcore spend CPU per pending request in their pool bookkeeping (quadratic in the
number of requests waiting); with hundreds of endpoints a sweep held a UI's event loop for
0.3-0.45 s. On a thread of its own the sweep still costs CPU, but the UI's loop keeps
turning: the interpreter switches threads every few milliseconds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from backends.health.models import ProbeResult, ServiceHealth
from backends.health.prober import HealthProber


class ThreadedProber:
    """Same interface as HealthProber (sweep, probe, aclose)."""

    def __init__(self, **prober_args: Any) -> None:
        self._args = prober_args
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._prober: HealthProber | None = None
        self._ready = threading.Event()

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()

            def run() -> None:
                asyncio.set_event_loop(loop)
                self._prober = HealthProber(**self._args)
                self._ready.set()
                loop.run_forever()
                loop.close()

            self._thread = threading.Thread(target=run, name="bva-health", daemon=True)
            self._thread.start()
            self._ready.wait()
            self._loop = loop
        return self._loop

    async def _on_thread(self, coro_fn: Any) -> Any:
        loop = self._start()
        future = asyncio.run_coroutine_threadsafe(coro_fn(), loop)
        return await asyncio.wrap_future(future)

    async def sweep(self, targets: Sequence[tuple[str, Sequence[str]]]) -> list[ServiceHealth]:
        result: list[ServiceHealth] = await self._on_thread(
            lambda: self._prober_or_fail().sweep(targets)
        )
        return result

    async def probe(self, service: str, url: str) -> ProbeResult:
        result: ProbeResult = await self._on_thread(
            lambda: self._prober_or_fail().probe(service, url)
        )
        return result

    def _prober_or_fail(self) -> HealthProber:
        assert self._prober is not None
        return self._prober

    async def aclose(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        prober = self._prober
        if prober is not None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(prober.aclose(), loop))
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
