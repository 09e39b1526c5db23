"""The bva App: one factory (`make_app`) for the CLI and the tests, modes for the screens,
the global keys, and the platform the screens read from."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from backends.checklist.models import ChecklistEngine, ChecklistReport, ReleaseGate
from backends.db.restore_models import DatabaseRestores
from backends.errors import BvaError
from backends.journal.records import JournalError
from backends.logs.models import LogFeed
from backends.release.models import DatabasePlan, ReleaseView
from backends.rollback.models import Rollbacks
from backends.sanitize import sanitize_text
from screens.base import BvaScreen
from screens.health import HealthScreen
from screens.help import HelpScreen, binding_rows
from widgets.confirm import YesNo

if TYPE_CHECKING:
    # The platform pulls in every client (kube, HTTP, the database driver): the first frame
    # needs none of them, so they are imported when the platform is opened, after it.
    from backends.journal.store import Journal
    from backends.platform import Platform
    from backends.release.driver import ReleaseDriver
    from backends.release.session import ReleaseSession

# Lines the Logs screen may be behind on before it skips new ones (about half a second of a
# 50,000 lines/s flood).
LIVE_QUEUE_LINES = 25_000
# Seconds a stream may fall behind its best before the screen skips its lines to catch up.
LIVE_SHED_AFTER = 0.25
# Lines handed to the screen at a time: small enough that a key waits for no more than one.
LIVE_BATCH = 250
# Seconds after the platform opens before the spare log reader starts, unless Logs is
# opened sooner: the first data frame gets the machine to itself.
LOG_SPARE_DELAY = 3.0
PlatformOpener = Callable[[], Awaitable["Platform"]]


@dataclass
class AppSettings:
    config: str | None = None
    env: str | None = None
    read_only: bool = False
    sandbox: bool = False
    poll_interval: float = 5.0
    recheck_interval: float = 1.5  # probe sooner while a service is not UP
    db_interval: float = 2.0  # pg_activity's default refresh
    platform_label: str = ""
    environment_label: str = ""
    clock: Callable[[], float] = time.time
    open_platform: PlatformOpener | None = None
    rollback_engine: Callable[[Platform], Rollbacks] | None = None  # tests: a stand-in engine
    # Tests: a stand-in restore engine (None from it: the environment has no database).
    database_restores: Callable[[Platform], DatabaseRestores | None] | None = None
    checklist_engine: Callable[[Platform], ChecklistEngine] | None = None  # tests: a stand-in
    log_source: Callable[[Platform], LogFeed] | None = None  # tests: canned log lines
    log_buffer: int = 100_000
    # Move what exists once the platform is open (modules, clients, screens: it lives as
    # long as the console) out of the collector's reach, so a full collection walks only
    # what came after. Set by the console, not by tests, which share one process.
    gc_freeze: bool = False
    on_exit: list[Callable[[], None]] = field(default_factory=list)


def _later(module: str, name: str) -> Callable[[], Screen[None]]:
    def make() -> Screen[None]:
        screen: Screen[None] = getattr(importlib.import_module(module), name)()
        return screen

    return make


class BvaApp(App[int]):
    TITLE = "bva"
    # Only the first screen is imported before the first frame; the others when first shown.
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "checklist": _later("screens.checklist", "ChecklistScreen"),
        "health": HealthScreen,
        "rollout": _later("screens.rollout", "RolloutScreen"),
        "rollback": _later("screens.rollback", "RollbackScreen"),
        "logs": _later("screens.logs", "LogsScreen"),
    }
    DEFAULT_MODE = "health"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("colon", "command_palette", "Commands", show=False, id="app.palette"),
    ]

    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        self.settings = settings
        self.clock = settings.clock
        self._platform: Platform | None = None
        self._platform_task: asyncio.Task[Platform] | None = None
        self._session: ReleaseSession | None = None
        self._shown_driver: ReleaseDriver | None = None
        self._rollback_engine: Rollbacks | None = None
        self._restores: DatabaseRestores | None = None
        self._checklist: ChecklistEngine | None = None
        self._prefill = ""
        self._checklist_reports: dict[str, ChecklistReport] = {}
        self._release_task: asyncio.Task[None] | None = None
        self._log_spare: asyncio.Future[Any] | None = None
        self._spare_wanted = asyncio.Event()

    @property
    def platform_label(self) -> str:
        return self._platform.name if self._platform else self.settings.platform_label

    @property
    def environment_label(self) -> str:
        return self._platform.env_name if self._platform else self.settings.environment_label

    @property
    def platform_target(self) -> str:
        return self._platform.target if self._platform else ""

    @property
    def loaded_platform(self) -> Platform | None:
        return self._platform

    @property
    def read_only(self) -> bool:
        return self.settings.read_only or bool(self._platform and self._platform.read_only)

    @property
    def driving(self) -> bool:
        return (
            self._release_task is not None
            and not self._release_task.done()
            and self.release_driver is not None
            and not self.release_driver.state.over
        )

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
        if self.settings.log_source is None and self._log_spare is None:
            from backends.logs.worker import WorkerLogSource

            # The log reader's process loads its client ahead of need, so Logs shows lines
            # at once; but not while the first data is being fetched and drawn, which it
            # would slow on a small machine.
            kind = self._platform.orchestrator.kind
            self._log_spare = asyncio.ensure_future(self._spare_later(WorkerLogSource, kind))
        if self.settings.gc_freeze:
            gc.freeze()
        return self._platform

    async def _spare_later(self, worker: Any, kind: str) -> Any:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._spare_wanted.wait(), LOG_SPARE_DELAY)
        return await worker.spawn(kind)

    def rollback_engine(self) -> Rollbacks:
        """The rollback engine for the loaded platform (made once)."""
        if self._rollback_engine is None:
            platform = self._platform
            if platform is None:
                raise BvaError("not connected yet")
            if self.settings.rollback_engine is not None:
                self._rollback_engine = self.settings.rollback_engine(platform)
            else:
                from backends.rollback.engine import RollbackEngine

                self._rollback_engine = RollbackEngine(platform, self._journal(platform))
        return self._rollback_engine

    def database_restores(self) -> DatabaseRestores | None:
        """The guarded database restore for the loaded platform, or None without a database."""
        platform = self._platform
        if platform is None or platform.read_only:
            return None  # read-only: nothing that could restore is even made
        if self._restores is None:
            if self.settings.database_restores is not None:
                self._restores = self.settings.database_restores(platform)
            elif platform.database_admin is not None:
                from backends.db.restores import DatabaseRestoreEngine

                self._restores = DatabaseRestoreEngine(
                    platform, platform.database_admin, self._journal(platform)
                )
        return self._restores

    def checklist_engine(self) -> ChecklistEngine | None:
        """The checklist for the loaded platform (made once), or None before it is open."""
        platform = self._platform
        if platform is None:
            return None
        if self._checklist is None:
            if self.settings.checklist_engine is not None:
                self._checklist = self.settings.checklist_engine(platform)
            else:
                from backends.checklist.engine import ChecklistRunner

                self._checklist = ChecklistRunner(
                    platform, self._journal(platform), clock=self.clock
                )
        return self._checklist

    def remember_checklist(self, report: ChecklistReport) -> None:
        self._checklist_reports[report.version or ""] = report

    def checklist_gate(self, version: str) -> ReleaseGate:
        from backends.checklist.runner import release_gate, rules

        platform = self._platform
        required = rules(platform)[0] if platform is not None else True
        return release_gate(
            self._checklist_reports.get(version),
            version,
            required=required,
            now=self.clock(),
            hint="0 runs the checklist",
        )

    def prefill_release(self, version: str) -> None:
        self._prefill = version

    @property
    def release_prefill(self) -> str:
        return self._prefill

    def log_source(self, platform: Platform) -> LogFeed:
        """A merged follow of every platform service's pods."""
        if self.settings.log_source is not None:
            return self.settings.log_source(platform)
        # In a child process: a flood's parsing then runs on another core and never holds
        # the interpreter lock that keys and frames need here.
        from backends.logs.worker import WorkerLogSource

        self._spare_wanted.set()
        spare, self._log_spare = self._log_spare, None
        return WorkerLogSource(
            platform.orchestrator,
            None,
            process=spare,
            follow=True,
            tail=200,
            service_order=[s for s, _ in platform.services()],
            # A screen is for now: rather than fall seconds behind a flood it cannot draw,
            # it skips what it is more than this many lines behind on, and says so.
            queue_limit=LIVE_QUEUE_LINES,
            shed_after=LIVE_SHED_AFTER,
            batch_max=LIVE_BATCH,
        )

    # -- releases driven by this process -------------------------------------------------------
    def _journal(self, platform: Platform) -> Journal:
        from backends.journal.store import Journal, journal_path

        return Journal(journal_path(platform.env_name), platform.env_name)

    @property
    def release_driver(self) -> ReleaseDriver | None:
        if self._session is not None and self._session.driver is not None:
            return self._session.driver
        return self._shown_driver

    @release_driver.setter
    def release_driver(self, driver: ReleaseDriver | None) -> None:
        """Tests: a stand-in driver whose view the Rollout screen shows."""
        self._shown_driver = driver

    def release_session(self) -> ReleaseSession | None:
        """This console's release session (made once the platform is open)."""
        platform = self._platform
        if platform is None:
            return None
        if self._session is None:
            from backends.release.session import ReleaseSession

            self._session = ReleaseSession(
                platform, self._journal(platform), on_change=self._release_changed, clock=self.clock
            )
        return self._session

    async def current_release(self) -> ReleaseView | None:
        session = self.release_session()
        if session is None:
            return None
        view, _ = await session.status()
        return view

    async def release_database_plan(self) -> DatabasePlan | None:
        session = self.release_session()
        return None if session is None else await session.database_plan()

    def forget_release(self) -> None:
        """The screen has shown a finished release: the next one starts afresh."""
        if not self.driving:
            self._shown_driver = None
            if self._session is not None:
                self._session.driver = None

    def _release_changed(self, view: ReleaseView) -> None:
        from screens.rollout import ReleaseChanged, RolloutScreen

        shown = {
            id(s): s for s in [*self.screen_stack, self.screen] if isinstance(s, RolloutScreen)
        }
        for screen in shown.values():
            screen.post_message(ReleaseChanged(view))

    def start_release(self, services: list[str], version: str, override: str = "") -> None:
        session = self.release_session()
        if session is None or self.driving:
            return
        plan = session.plan(services, version)

        async def begin() -> ReleaseDriver:
            gate = self.checklist_gate(version)
            if override:
                await session.override(plan, gate, override)
            # Read again now: what is pending is what the release migrates.
            return await session.start(
                plan,
                await session.database_plan(),
                checklist=self._checklist_reports.get(version),
                gate=gate,
                override_reason=override,
            )

        self._release_task = asyncio.ensure_future(self._drive(session, begin()))

    def take_over_release(self) -> None:
        session = self.release_session()
        if session is None or self.driving:
            return
        self._release_task = asyncio.ensure_future(self._drive(session, session.take_over()))

    async def _drive(self, session: ReleaseSession, begin: Awaitable[ReleaseDriver]) -> None:
        driver: ReleaseDriver | None = None
        try:
            driver = await begin
            state = await driver.run()
            self.notify(
                f"release {driver.plan.release_id} {state.value}",
                severity="information" if state.value == "finished" else "error",
            )
        except BvaError as exc:
            self.notify(f"release: {exc}", severity="error", timeout=10)
        finally:
            driver = driver or session.driver
            if driver is not None:
                self._release_changed(driver.view())

    def control_release(self, action: str) -> None:
        self.run_worker(self._control(action), group="release-control")

    async def _control(self, action: str) -> None:
        session = self.release_session()
        if session is None:
            return
        try:
            await session.control(action, f"{action} from the console")
            self.notify(f"{action}: done", timeout=3)
        except (BvaError, JournalError) as exc:
            self.notify(f"{action}: {sanitize_text(str(exc), 200)}", severity="error", timeout=8)

    async def action_quit(self) -> None:
        if not self.driving or self.release_driver is None:
            self.exit()
            return
        release_id = self.release_driver.plan.release_id

        def answer(yes: bool | None) -> None:
            if yes:
                if self._release_task is not None:
                    self._release_task.cancel()
                self.exit()

        self.push_screen(
            YesNo(
                f"This bva is driving release {release_id}. Quit anyway? The release stays where "
                "it is, resumable from any terminal (`bva release resume`, or t on the Rollout "
                "screen)."
            ),
            answer,
        )

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [
            (
                type(self.screen).__name__.replace("Screen", "") + " screen",
                binding_rows(list(getattr(self.screen, "BINDINGS", []))),
            ),
            (
                "Everywhere",
                [
                    *binding_rows([*BvaScreen.BINDINGS, *self.BINDINGS]),
                    ("ctrl+p, :", "command palette"),
                ],
            ),
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
        if self._release_task is not None and not self._release_task.done():
            self._release_task.cancel()
            with contextlib.suppress(BaseException):
                await self._release_task
        if self._log_spare is not None:
            from backends.logs.worker import WorkerLogSource

            if self._log_spare.done():
                await WorkerLogSource.discard(self._log_spare)
            else:
                # Still waiting for its turn: nothing was started, nothing to stop.
                self._log_spare.cancel()
                with contextlib.suppress(BaseException):
                    await self._log_spare
        if self._platform is not None:
            await self._platform.aclose()
        for fn in self.settings.on_exit:
            fn()


def make_app(settings: AppSettings) -> BvaApp:
    return BvaApp(settings)
