from __future__ import annotations

from typing import Any

from textual import events
from textual.keys import _character_to_key

from backends.platform import Platform
from screens.health import HealthScreen
from tests.support.fake_platform import clock, scenario
from tests.support.waiting import pilot_until
from tui.app import AppSettings, BvaApp, make_app


def fake_app(
    name: str, *, poll: float = 3600.0, db_poll: float = 3600.0, platform: Platform | None = None
) -> BvaApp:
    """The console on a scenario's stand-ins (or on ``platform``, built by the caller)."""
    platform = platform or scenario(name)

    async def opener():  # type: ignore[no-untyped-def]
        return platform

    return make_app(
        AppSettings(
            env=platform.env_name,
            read_only=platform.read_only,
            poll_interval=poll,
            recheck_interval=poll,
            db_interval=db_poll,
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


async def health_settled(pilot: Any, timeout: float = 15.0) -> HealthScreen:
    """The Health screen once every source answered and it shows what they said: wait for
    the data, not for a fixed time (tests must not depend on machine load)."""

    def settled() -> HealthScreen | None:
        screen = pilot.app.screen
        return screen if isinstance(screen, HealthScreen) and screen.settled else None

    return await pilot_until(pilot, settled, timeout, "the Health screen to settle")


def notifications(app: BvaApp) -> list[str]:
    """Every message the app shows as a toast from now on (it still shows them): the
    positive sign that a refused key was taken, to wait for before asserting that nothing
    else happened."""
    said: list[str] = []
    notify = app.notify

    def recording(message: str, *args: Any, **kwargs: Any) -> None:
        said.append(str(message))
        notify(message, *args, **kwargs)

    app.notify = recording  # type: ignore[method-assign]
    return said
