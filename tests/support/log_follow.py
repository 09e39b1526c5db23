"""Running a log source's stream in a test until enough has arrived."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from backends.logs.models import LogLine


async def follow(
    source: Any,
    done: Callable[[list[LogLine]], bool],
    timeout: float,
    what: str,
) -> list[LogLine]:
    """Run ``source``'s stream (a LogSource or a WorkerLogSource) until ``done(lines so
    far)``, then close it; fail with ``what`` after ``timeout``. Rows (what the log reader's
    process sends) come back as LogLines."""
    lines: list[LogLine] = []

    async def run() -> None:
        async with contextlib.aclosing(source.stream()) as batches:
            async for batch in batches:
                assert batch, "empty batches are never handed out"
                lines.extend(x if isinstance(x, LogLine) else LogLine(*x) for x in batch)
                if done(lines):
                    return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        notices = [line.message for line in lines if line.is_notice]
        pytest.fail(f"timed out waiting for {what}; {len(lines)} lines, notices: {notices}")
    finally:
        await source.aclose()
    return lines
