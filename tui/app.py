"""The bva App: one factory (`make_app`) for the CLI and the tests, modes for the screens,
the global keys, and the platform the screens read from."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from backends.platform import Platform
from screens.health import HealthScreen
from screens.help import HelpScreen, binding_rows

PlatformOpener = Callable[[], Awaitable[Platform]]


@dataclass
class AppSettings:
    config: str | None = None
    env: str | None = None
    read_only: bool = False
    sandbox: bool = False
    poll_interval: float = 5.0
    platform_label: str = ""
    environment_label: str = ""
    clock: Callable[[], float] = time.time
    open_platform: PlatformOpener | None = None
    on_exit: list[Callable[[], None]] = field(default_factory=list)


class BvaApp(App[int]):
    TITLE = "bva"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {"health": HealthScreen}
    DEFAULT_MODE = "health"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("colon", "command_palette", "Commands", show=False, id="app.palette"),
        Binding("h", "switch_mode('health')", "Health", show=False, id="app.health"),
    ]

    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        self.settings = settings
        self.clock = settings.clock
        self._platform: Platform | None = None
        self._platform_task: asyncio.Task[Platform] | None = None

    @property
    def platform_label(self) -> str:
        return self._platform.name if self._platform else self.settings.platform_label

    @property
    def environment_label(self) -> str:
        return self._platform.env_name if self._platform else self.settings.environment_label

    @property
    def kube_target(self) -> str:
        return self._platform.kube_target if self._platform else ""

    async def platform(self) -> Platform:
        """The platform, opened once (the first screen that needs it waits for it)."""
        if self._platform is not None:
            return self._platform
        if self._platform_task is None:
            opener = self.settings.open_platform
            if opener is None:
                raise RuntimeError("no platform opener configured")
            self._platform_task = asyncio.ensure_future(opener())
        self._platform = await asyncio.shield(self._platform_task)
        return self._platform

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [
            (
                type(self.screen).__name__.replace("Screen", "") + " screen",
                binding_rows(list(getattr(self.screen, "BINDINGS", []))),
            ),
            ("Everywhere", [*binding_rows(list(self.BINDINGS)), ("ctrl+p, :", "command palette")]),
        ]
        self.push_screen(HelpScreen(sections))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Every key of this screen", self.action_help)
        if isinstance(screen, HealthScreen):
            yield SystemCommand("Refresh health", "Probe every service now", screen.action_refresh)
            yield SystemCommand(
                "Filter services", "Show only matching services", screen.action_filter
            )
            yield SystemCommand("Sort services", "Cycle the sort order", screen.action_cycle_sort)

    async def on_unmount(self) -> None:
        if self._platform is not None:
            await self._platform.aclose()
        for fn in self.settings.on_exit:
            fn()


def make_app(settings: AppSettings) -> BvaApp:
    return BvaApp(settings)
