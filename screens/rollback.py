"""The Rollback screen: undo a bad release in a few keystrokes, knowing exactly what changes.

A wizard of typed modal steps — services, revision, plan, typed confirmation, execution —
where Escape always goes one step back and never forward."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from backends.errors import BvaError
from backends.sanitize import sanitize_text
from screens.base import BvaScreen
from screens.restore_steps import ExecuteRestoreStep, PickBackupStep, ReviewRestoreStep
from screens.rollback_steps import (
    ExecuteStep,
    PickRevisionStep,
    PickServicesStep,
    ReviewPlanStep,
)
from widgets.app_header import AppHeader
from widgets.confirm import TypeToConfirm

if TYPE_CHECKING:
    from backends.rollback.models import RollbackPlan, ServiceCandidate


class RollbackScreen(BvaScreen):
    CSS_PATH = "rollback.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "wizard", "Roll back…", id="rollback.wizard"),
        Binding("D", "restore_db", "Restore DB…", id="rollback.restore_db"),
        Binding("R", "reload", "Reload", id="rollback.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.candidates: list[ServiceCandidate] = []
        self.last_plan: RollbackPlan | None = None
        self.wizard_running = False
        self.restore_running = False

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("… reading the services' revisions", id="rb-banner")
        yield DataTable(id="rb-services", cursor_type="row")
        yield Static("", id="rb-note")
        yield self.compose_footer()

    def on_mount(self) -> None:
        self.init_header()
        table: DataTable[Any] = self.query_one("#rb-services", DataTable)
        for key, label, width in (
            ("service", "SERVICE", 18),
            ("state", "STATE", 10),
            ("revision", "REV", 4),
            ("image", "IMAGE", 12),
            ("rollout", "ROLLOUT", 22),
        ):
            table.add_column(label, key=key, width=width)
        self.action_reload()

    @work(exclusive=True, group="rollback-load")
    async def action_reload(self) -> None:
        try:
            platform = await self.bva.platform()
            self.header_live(platform)
            self.candidates = await self.bva.rollback_engine().candidates()
        except BvaError as exc:
            self.query_one("#rb-banner", Static).update(
                Text(f"✖ {sanitize_text(str(exc), 150)}", style="bold red")
            )
            return
        self._draw()

    def _draw(self) -> None:
        table: DataTable[Any] = self.query_one("#rb-services", DataTable)
        table.clear()
        for c in self.candidates:
            state = (
                Text("✖ degraded", style="bold red") if c.degraded else Text("✔ ok", style="green")
            )
            table.add_row(
                c.service,
                state,
                f"r{c.revision}",
                sanitize_text(c.image_tag, 24),
                sanitize_text(c.rollout_text, 30),
                key=c.service,
            )
        degraded = [c for c in self.candidates if c.degraded]
        banner = self.query_one("#rb-banner", Static)
        if degraded:
            banner.update(
                Text.assemble(
                    ("✖ ", "bold red"),
                    f"{len(degraded)} degraded: "
                    + "; ".join(
                        f"{c.service} ({sanitize_text(c.reason, 60)})" for c in degraded[:3]
                    ),
                )
            )
        else:
            banner.update(Text("✔ every service is healthy and rolled out", style="green"))
        note = "w starts the rollback wizard (services → revision → plan → confirm → run)."
        if not self.bva.read_only and self.bva.database_restores() is not None:
            note += "\nD restores the database from a backup: a separate, guarded wizard."
        if self.bva.read_only:
            note = "READ-ONLY: w shows the history and the plan; nothing can be executed here."
        self.query_one("#rb-note", Static).update(note)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "restore_db":
            # Hidden where it cannot run: read-only refuses it before any connection.
            return not self.bva.read_only and self.bva.database_restores() is not None
        return True

    def action_restore_db(self) -> None:
        if not (self.wizard_running or self.restore_running):
            self._restore_wizard()

    @work(exclusive=True, group="restore-wizard")
    async def _restore_wizard(self) -> None:
        self.restore_running = True
        try:
            await self._restore_steps()
        except BvaError as exc:
            self.notify(f"restore: {sanitize_text(str(exc), 200)}", severity="error", timeout=10)
        finally:
            self.restore_running = False

    async def _restore_steps(self) -> None:
        engine = self.bva.database_restores()
        if engine is None or self.bva.read_only:
            return
        step = 1
        backup = None
        review: ReviewRestoreStep | None = None
        while True:
            if step == 1:
                backup = await self.app.push_screen_wait(
                    PickBackupStep(await engine.backups(), now=self.bva.clock())
                )
                if backup is None:
                    return
                step = 2
            elif step == 2:
                assert backup is not None
                plan = await engine.plan(backup)
                review = ReviewRestoreStep(
                    plan, engine.services_to_scale(plan), now=self.bva.clock()
                )
                if not await self.app.push_screen_wait(review):
                    step = 1
                    continue
                step = 3
            elif step == 3:
                assert review is not None
                plan = review.plan
                confirmed = await self.app.push_screen_wait(
                    TypeToConfirm(
                        "Restore the database?",
                        f"Restore {plan.database} on {plan.environment} from "
                        f"{plan.backup.name}: {plan.loss_words(self.bva.clock())} are lost.",
                        plan.confirmation_text,
                    )
                )
                if not confirmed:
                    step = 2
                    continue
                step = 4
            else:
                assert review is not None
                await self.app.push_screen_wait(
                    ExecuteRestoreStep(
                        engine, review.plan, scale_down=review.scale_down, clock=self.bva.clock
                    )
                )
                return

    def action_wizard(self) -> None:
        if not self.wizard_running:
            self._wizard()

    @work(exclusive=True, group="rollback-wizard")
    async def _wizard(self) -> None:
        """Steps as a loop: a step's None means Escape, one step back."""
        self.wizard_running = True
        try:
            await self._run_steps()
        finally:
            self.wizard_running = False
        # Not in `finally`: a wizard cancelled by the app's exit must not start new work.
        self.action_reload()

    async def _run_steps(self) -> None:
        engine = self.bva.rollback_engine()
        platform = await self.bva.platform()
        step = 1
        services: list[str] = []
        revision: int | None = None
        plan: RollbackPlan | None = None
        while True:
            if step == 1:
                picked = await self.app.push_screen_wait(PickServicesStep(self.candidates))
                if picked is None:
                    return
                services, step = picked, 2
            elif step == 2:
                base = await engine.plan(services)
                choice = await self.app.push_screen_wait(PickRevisionStep(base, self.bva.clock()))
                if choice is None:
                    step = 1
                    continue
                revision, step = choice.revision, 3
            elif step == 3:
                plan = await engine.plan(services, revision)
                self.last_plan = plan
                go = await self.app.push_screen_wait(
                    ReviewPlanStep(plan, read_only=self.bva.read_only, now=self.bva.clock())
                )
                if not go:
                    step = 2
                    continue
                step = 4
            elif step == 4:
                assert plan is not None
                confirmed = await self.app.push_screen_wait(
                    TypeToConfirm(
                        "Execute this rollback?",
                        f"Roll back {', '.join(services)} on {platform.env_name}. "
                        "ConfigMaps, Secrets and the database are NOT rolled back.",
                        plan.confirmation_text(),
                    )
                )
                if not confirmed:
                    step = 3
                    continue
                step = 5
            else:
                assert plan is not None
                await self.app.push_screen_wait(ExecuteStep(engine, plan))
                return

    @on(DataTable.RowSelected, "#rb-services")
    def _selected(self) -> None:
        self.action_wizard()
