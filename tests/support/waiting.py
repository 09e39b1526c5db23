"""Waiting in tests: poll a condition until it holds, and fail naming what never happened.

A fixed sleep before an assert is either too long (a slow suite) or too short (a flaky one),
and a fixed sleep before a *negative* assert passes whenever the thing is merely late. Wait for
something positive instead, with one of these, then assert."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL_S = 0.05


def _timed_out(timeout: float, what: str, detail: Callable[[], object] | None) -> AssertionError:
    text = f"timed out after {timeout:g}s waiting for {what}"
    if detail is not None:
        text += f"; {detail()}"
    return AssertionError(text)


def wait_until(
    pred: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = POLL_S,
    detail: Callable[[], object] | None = None,
) -> T:
    """Call ``pred`` every ``interval`` seconds until it returns something truthy, and return
    that; past ``timeout`` raise AssertionError naming ``what`` (and ``detail()``, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, detail)
        time.sleep(interval)


async def until(
    pred: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    interval: float = POLL_S,
    detail: Callable[[], object] | None = None,
    pause: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Any:
    """`wait_until` for a coroutine: ``pred`` may be sync or async, and the loop yields with
    ``await pause(interval)`` between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, detail)
        await pause(interval)


async def pilot_until(
    pilot: Any,
    pred: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = POLL_S,
    detail: Callable[[], object] | None = None,
) -> T:
    """`until` for a Textual Pilot test: the app runs (``pilot.pause``) between polls."""
    value: T = await until(
        pred,
        timeout,
        what,
        interval=interval,
        detail=detail if detail is not None else lambda: f"screen is {pilot.app.screen!r}",
        pause=pilot.pause,
    )
    return value
