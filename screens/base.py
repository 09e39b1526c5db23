"""What every bva screen shares: the typed app, and the header it keeps up to date."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from backends.checklist.models import ChecklistEngine, ChecklistReport, ReleaseGate
from backends.db.restore_models import DatabaseRestores
from backends.logs.models import LogFeed
from backends.release.models import DatabasePlan, ReleaseState, ReleaseView
from backends.rollback.models import Rollbacks
from widgets.app_header import AppHeader

if TYPE_CHECKING:
    from backends.platform import Platform


class DrivenRelease(Protocol):
    """The release this console drives, as a screen sees it."""

    @property
    def state(self) -> ReleaseState: ...

    def view(self) -> ReleaseView: ...

    @property
    def record(self) -> Path | None:
        """The release record's Markdown file, where this process writes one."""
        ...


class ConsoleSettings(Protocol):
    read_only: bool
    poll_interval: float
    recheck_interval: float
    db_interval: float
    log_buffer: int


class ConsoleApp(Protocol):
    """What a screen may ask of the app it runs in (tui/app.py's BvaApp is the one): screens
    never import the app, so the app can import every screen."""

    settings: ConsoleSettings
    clock: Callable[[], float]

    @property
    def platform_label(self) -> str: ...

    @property
    def environment_label(self) -> str: ...

    @property
    def platform_target(self) -> str: ...

    @property
    def loaded_platform(self) -> Platform | None: ...

    @property
    def read_only(self) -> bool: ...

    @property
    def release_driver(self) -> DrivenRelease | None: ...

    async def platform(self) -> Platform: ...

    def rollback_engine(self) -> Rollbacks: ...

    def log_source(self, platform: Platform) -> LogFeed: ...

    def database_restores(self) -> DatabaseRestores | None: ...

    def checklist_engine(self) -> ChecklistEngine | None: ...

    def remember_checklist(self, report: ChecklistReport) -> None: ...

    def checklist_gate(self, version: str) -> ReleaseGate:
        """What the last checklist run of this console says of ``version`` now."""
        ...

    def prefill_release(self, version: str) -> None:
        """The Rollout screen's version box, filled when the checklist says Go."""
        ...

    @property
    def release_prefill(self) -> str: ...

    def start_release(self, services: list[str], version: str, override: str = "") -> None:
        """``override``: the typed reason to go ahead on a No-Go checklist (journalled)."""
        ...

    def take_over_release(self) -> None: ...

    def control_release(self, action: str) -> None: ...

    def forget_release(self) -> None: ...

    async def release_database_plan(self) -> DatabasePlan | None:
        """The database step a release would run first (None: no migrations pending);
        raises BvaError when the database cannot say."""
        ...

    async def current_release(self) -> ReleaseView | None:
        """The release in progress as the cluster holds it (any driver's), or None."""
        ...


class BvaScreen(Screen[None]):
    # The screens' own keys come after these in every footer: at 80 columns a screen with many
    # keys cuts its last ones, never the way to the other screens.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("0", "app.switch_mode('checklist')", "Checklist", id="app.checklist"),
        Binding("1", "app.switch_mode('health')", "Health", id="app.health"),
        Binding("2", "app.switch_mode('rollout')", "Rollout", id="app.rollout"),
        Binding("3", "app.switch_mode('rollback')", "Rollback", id="app.rollback"),
        Binding("4", "app.switch_mode('logs')", "Logs", id="app.logs"),
    ]

    def compose_footer(self) -> Footer:
        return Footer(compact=True)

    @property
    def bva(self) -> ConsoleApp:
        return cast(ConsoleApp, self.app)

    def init_header(self) -> None:
        """What is known before the platform is open: names from the platform file."""
        header = self.query_one(AppHeader)
        header.platform = self.bva.platform_label
        header.environment = self.bva.environment_label
        header.read_only = self.bva.settings.read_only

    def header_live(self, platform: Platform) -> None:
        header = self.query_one(AppHeader)
        header.platform, header.environment = platform.name, platform.env_name
        header.production, header.read_only = platform.production, platform.read_only
        header.connected, header.connection = True, f"live · {platform.target}"
