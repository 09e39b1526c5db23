from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.keys import _character_to_key

from tests.support.fake_platform import clock, scenario
from tui.app import AppSettings, BvaApp, make_app


def fake_app(name: str, *, poll: float = 3600.0) -> BvaApp:
    platform = scenario(name)

    async def opener():  # type: ignore[no-untyped-def]
        return platform

    return make_app(
        AppSettings(
            env=platform.env_name,
            read_only=platform.read_only,
            poll_interval=poll,
            recheck_interval=poll,
            platform_label=platform.name,
            environment_label=platform.env_name,
            clock=clock,
            open_platform=opener,
        )
    )


_NAMED_KEYS = {"enter": "\r", "escape": "\x1b", "tab": "\t"}


def burst(app: BvaApp, *parts: str) -> None:
    """Keys as a terminal hands over a paste or one write over SSH: all queued before the app
    takes the first (Pilot's ``press`` waits for each). A part named in _NAMED_KEYS is that
    key; any other is typed a character at a time."""
    for part in parts:
        if part in _NAMED_KEYS:
            app.post_message(events.Key(part, _NAMED_KEYS[part]))
            continue
        for ch in part:
            app.post_message(events.Key(ch if ch.isalnum() else _character_to_key(ch), ch))


async def until(pilot: Any, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``done()`` (keys of a burst are taken at the app's pace, which a
    busy machine slows); ``done`` is checked again by the caller's asserts."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await pilot.pause(0.05)
