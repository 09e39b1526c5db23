from __future__ import annotations

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
