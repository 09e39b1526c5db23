"""The prober child: ``python -m backends.health.worker CONFIG_JSON``.

Requests come one JSON line each on stdin (``{"id", "op": "sweep", "targets"}`` or
``{"id", "op": "probe", "service", "url"}``) and are served concurrently; each answer is one
JSON line on stdout (``{"id", "result"}``). The child exits when stdin closes, so it never
outlives the console that started it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import IO, Any

from backends.health.prober import HealthProber
from backends.health.wire import health_to_json, result_to_json

# When both cores are busy the console's keys and frames go first; a sweep has seconds.
WORKER_NICE = 5


async def _answer(prober: HealthProber, request: dict[str, Any], out: IO[bytes]) -> None:
    result: Any
    if request["op"] == "sweep":
        targets = [(str(s), [str(u) for u in urls]) for s, urls in request["targets"]]
        result = [health_to_json(h) for h in await prober.sweep(targets)]
    else:
        result = result_to_json(await prober.probe(str(request["service"]), str(request["url"])))
    out.write(json.dumps({"id": request["id"], "result": result}).encode() + b"\n")
    out.flush()


async def _serve(config: dict[str, Any], out: IO[bytes]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    tasks: set[asyncio.Task[None]] = set()
    async with HealthProber(**config) as prober:
        while line := await reader.readline():
            task = asyncio.create_task(_answer(prober, json.loads(line), out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for task in tasks:
            task.cancel()


def main() -> int:
    # Answers go to a private copy of stdout; fd 1 becomes stderr, so a stray print from a
    # library cannot corrupt them.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the console's Ctrl+C is the console's
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    with contextlib.suppress(BrokenPipeError):  # the console has gone
        asyncio.run(_serve(json.loads(sys.argv[1]), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
