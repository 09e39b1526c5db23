"""A HealthProber in a child process (``backends.health.worker``).

On a thread of the console's own process, a sweep of hundreds of endpoints still cost the
console's interpreter lock: httpx's pool bookkeeping is CPU, and keys waited up to ~0.3 s
behind it. In a child the sweep runs on another core and the console only decodes the
answers (a few ms for 200 services)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backends.health.models import ProbeResult, ProbeStatus, ServiceHealth, Unreachable
from backends.health.wire import health_from_json, result_from_json

Process = asyncio.subprocess.Process
STOP_GRACE = 2.0
# Probes in flight at once. In the console's process this was 64, to bound what the pool's
# bookkeeping cost the UI; here that cost is the child's, and with every endpoint started at
# once, hung ones all time out together: a sweep of 200 with 20 hung takes one timeout, not
# one timeout plus the wait for a slot (2.6 s for a 2 s timeout at 64). Under the usual
# 1,024 open files.
CONCURRENCY = 512
# An answer is one line: 200 services' results are about 100 KiB, far under this.
LINE_LIMIT = 64 * 1024 * 1024


class ProcessProber:
    """Same interface as HealthProber (sweep, probe, aclose); the child starts on first use,
    or at once when made inside a running event loop, so it has booted by the first sweep."""

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        max_body_bytes: int = 256 * 1024,
        verify_tls: bool | str = True,
        concurrency: int = CONCURRENCY,
    ) -> None:
        if timeout <= 0 or max_body_bytes <= 0 or concurrency <= 0:
            raise ValueError("timeout, max_body_bytes and concurrency must be positive")
        self._config = {
            "timeout": float(timeout),
            "max_body_bytes": max_body_bytes,
            "verify_tls": verify_tls,
            "concurrency": concurrency,
        }
        self._proc: asyncio.Task[Process] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._closed = False
        with contextlib.suppress(RuntimeError):  # no running loop: start on first use
            asyncio.get_running_loop()
            self._process()

    def _process(self) -> asyncio.Task[Process]:
        if self._proc is None or (self._proc.done() and self._dead(self._proc)):
            self._proc = asyncio.ensure_future(self._spawn())
        return self._proc

    @staticmethod
    def _dead(task: asyncio.Task[Process]) -> bool:
        if task.cancelled() or task.exception() is not None:
            return True
        return task.result().returncode is not None

    async def _spawn(self) -> Process:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "backends.health.worker",
            json.dumps(self._config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=LINE_LIMIT,
            # Its own session: a terminal's Ctrl+C goes to the console, which stops the child.
            start_new_session=True,
        )
        self._reader = asyncio.ensure_future(self._read(proc))
        return proc

    async def _read(self, proc: Process) -> None:
        assert proc.stdout is not None
        try:
            while line := await proc.stdout.readline():
                answer = json.loads(line)
                future = self._pending.pop(int(answer["id"]), None)
                if future is not None and not future.done():
                    future.set_result(answer["result"])
        finally:
            code = await proc.wait()
            pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(_Gone(f"the health prober exited (code {code})"))

    async def _ask(self, request: dict[str, Any]) -> Any:
        if self._closed:
            raise _Gone("the health prober is closed")
        proc = await self._process()
        assert proc.stdin is not None
        self._next_id += 1
        request["id"] = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            await proc.stdin.drain()
            return await future
        finally:
            self._pending.pop(request["id"], None)

    async def sweep(self, targets: Sequence[tuple[str, Sequence[str]]]) -> list[ServiceHealth]:
        wanted = [[service, list(urls)] for service, urls in targets]
        try:
            answer = await self._ask({"op": "sweep", "targets": wanted})
        except (_Gone, OSError) as exc:
            # Never raise for a sweep: every endpoint is then unreachable, and says why.
            return [
                ServiceHealth.of(service, [_failed(service, url, str(exc)) for url in urls])
                for service, urls in targets
            ]
        return [health_from_json(h) for h in answer]

    async def probe(self, service: str, url: str) -> ProbeResult:
        try:
            answer = await self._ask({"op": "probe", "service": service, "url": url})
        except (_Gone, OSError) as exc:
            return _failed(service, url, str(exc))
        return result_from_json(answer)

    async def aclose(self) -> None:
        self._closed = True
        task, self._proc = self._proc, None
        if task is None:
            return
        if not task.done():
            task.cancel()
        try:
            proc = await task
        except (asyncio.CancelledError, Exception):
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader


class _Gone(Exception):
    """The child is not there to answer."""


def _failed(service: str, url: str, why: str) -> ProbeResult:
    return ProbeResult(
        service=service,
        url=url,
        status=ProbeStatus.UNREACHABLE,
        reason=Unreachable.OTHER,
        detail=why,
        http_status=None,
        latency_ms=None,
        components=(),
        cert_days_left=None,
        checked_at=time.time(),
        answered_by=None,
    )
