"""The database restore wizard's steps (a separate, guarded wizard beside the services'
rollback): pick the backup, review what the restore does and loses, confirm by typing
`<database>@<environment>` (widgets/confirm.py), run it. Escape always goes one step back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Log, Static

from backends.db.models import human_bytes
from backends.errors import BvaError
from backends.sanitize import sanitize_text
from screens.rollback_steps import STEP_CSS
from widgets.badges import age_text

if TYPE_CHECKING:
    from backends.db.restore_models import (
        Backup,
        DatabaseRestores,
        RestoreEvent,
        RestoreOutcome,
        RestorePlan,
    )

STEPS = 4


def _title(step: int, text: str) -> Static:
    return Static(f"Restore the database — step {step} of {STEPS}: {text}", classes="step-title")


def _help(text: str) -> Static:
    return Static(text, classes="step-help")


class PickBackupStep(ModalScreen["Backup | None"]):
    DEFAULT_CSS = (
        STEP_CSS.format(cls="PickBackupStep")
        + """
    PickBackupStep DataTable {
        height: auto;
        max-height: 14;
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next", "Next", priority=True, id="rs1.next"),
        Binding("escape", "back", "Back", id="rs1.back"),
    ]

    def __init__(self, backups: list[Backup], *, now: float, rpo_note: str = "") -> None:
        super().__init__()
        self._backups = backups
        self._now = now
        self._rpo_note = rpo_note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(1, "which backup?")
            yield DataTable(id="rs-backups", cursor_type="row")
            if not self._backups:
                yield _help("no backups yet: `bva db backup` takes one · esc back")
            else:
                yield _help(
                    "a release's backup is taken before its migrations · only verified backups "
                    "restore · enter next · esc back"
                )

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one(DataTable)
        for key, label in (
            ("age", "AGE"),
            ("size", "SIZE"),
            ("for", "TAKEN FOR"),
            ("verified", "VERIFIED"),
            ("name", "BACKUP"),
        ):
            table.add_column(label, key=key)
        for b in self._backups:
            table.add_row(
                age_text(b.age(self._now)),
                human_bytes(b.size),
                sanitize_text(b.reason, 30),
                Text("✔ yes", style="green") if b.verified else Text("✖ no", style="bold red"),
                sanitize_text(b.name, 80),
                key=b.path,
            )
        first = next((i for i, b in enumerate(self._backups) if b.verified), 0)
        table.move_cursor(row=first)
        table.focus()

    def action_next(self) -> None:
        if not self._backups:
            return
        chosen = self._backups[self.query_one(DataTable).cursor_row]
        if not chosen.verified:
            self.notify("that backup was never verified: pick a verified one", severity="error")
            return
        self.dismiss(chosen)

    def action_back(self) -> None:
        self.dismiss(None)


def restore_plan_text(
    plan: RestorePlan, services: list[str], *, scale_down: bool, now: float
) -> Text:
    b = plan.backup
    text = Text()
    text.append(f"restore {plan.database}@{plan.environment}\n", style="bold")
    text.append(f"  from     {sanitize_text(b.name, 90)}\n")
    text.append(
        f"           taken {age_text(b.age(now))} ago for {sanitize_text(b.reason, 60)}, "
        f"{human_bytes(b.size)}, server {sanitize_text(b.server_version, 20)}, verified\n"
    )
    text.append("  loses    ", style="bold red")
    text.append(f"{plan.loss_words(now)}\n", style="red")
    text.append(f"  replicas ({plan.replicas}) follow the primary: they replay the restore\n")
    if plan.connected:
        who = ", ".join(
            f"{sanitize_text(c.application, 30)} ({c.sessions})" for c in plan.connected
        )
        text.append(f"  connected: {who}\n", style="yellow")
        if scale_down and services:
            text.append(
                f"  drains by scaling {', '.join(services)} to 0, and back afterwards\n",
                style="bold",
            )
        elif scale_down:
            text.append("  none of them is a service bva can scale: drain them first\n")
        else:
            text.append(
                "  not scaling down: the restore is refused until they disconnect (s scales)\n",
                style="yellow",
            )
    else:
        text.append("  connected: nobody\n", style="green")
    text.append(
        "  first a safety backup of the database as it is now; then one transaction\n"
        "  (pg_restore --clean --if-exists --single-transaction): it all lands or nothing changes"
    )
    return text


class ReviewRestoreStep(ModalScreen["bool | None"]):
    """Returns True to go on (with ``scale_down`` as toggled), None to go back."""

    DEFAULT_CSS = (
        STEP_CSS.format(cls="ReviewRestoreStep")
        + """
    ReviewRestoreStep VerticalScroll {
        height: auto;
        max-height: 20;
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next", "Confirm…", priority=True, id="rs2.next"),
        Binding("s", "toggle_scale", "Scale down", id="rs2.scale"),
        Binding("escape", "back", "Back", id="rs2.back"),
    ]

    def __init__(self, plan: RestorePlan, services: list[str], *, now: float) -> None:
        super().__init__()
        self.plan = plan
        self._services = services
        self._now = now
        self.scale_down = bool(services)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(2, "review the restore")
            with VerticalScroll():
                yield Static(self._text(), id="rs-plan")
            yield _help("enter goes on to the typed confirmation · s scale down or not · esc back")

    def _text(self) -> Text:
        return restore_plan_text(
            self.plan, self._services, scale_down=self.scale_down, now=self._now
        )

    def action_toggle_scale(self) -> None:
        self.scale_down = not self.scale_down
        self.query_one("#rs-plan", Static).update(self._text())

    def action_next(self) -> None:
        if not self.plan.drained and not (self.scale_down and self._services):
            self.notify(
                "the application is connected: s scales its services down, or drain it first",
                severity="error",
            )
            return
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(None)


class ExecuteRestoreStep(ModalScreen[None]):
    DEFAULT_CSS = (
        STEP_CSS.format(cls="ExecuteRestoreStep")
        + """
    ExecuteRestoreStep Log {
        height: 10;
    }
    ExecuteRestoreStep DataTable {
        height: auto;
        max-height: 8;
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Close", priority=True, id="rs4.close"),
    ]

    def __init__(
        self,
        engine: DatabaseRestores,
        plan: RestorePlan,
        *,
        scale_down: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._engine = engine
        self._plan = plan
        self._scale_down = scale_down
        self.outcome: RestoreOutcome | None = None
        self._busy = True

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(4, f"restoring {self._plan.confirmation_text}")
            yield Log(id="rs-events", highlight=False)
            yield DataTable(id="rs-tables", cursor_type="none")
            yield Static("running… (a restore cannot be cancelled halfway)", id="rs-summary")

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one(DataTable)
        table.add_column("TABLE", key="table")
        table.add_column("ROWS", key="rows")
        table.display = False
        self._run()

    def _on_event(self, event: RestoreEvent) -> None:
        stamp = time.strftime("%H:%M:%SZ ", time.gmtime(self._clock()))
        mark = {"error": "✖ ", "warning": "⚠ "}.get(event.level.value, "")
        line = f"{stamp}{event.step.value:<10} {mark}{event.text}"
        self.query_one(Log).write_line(sanitize_text(line, 300))

    @work(exclusive=True, group="restore-execute")
    async def _run(self) -> None:
        summary = self.query_one("#rs-summary", Static)
        try:
            outcome = await self._engine.execute(
                self._plan, scale_down=self._scale_down, on_event=self._on_event
            )
        except BvaError as exc:
            self._busy = False
            summary.update(Text(f"✖ {sanitize_text(str(exc), 200)}", style="bold red"))
            return
        self._busy = False
        self.outcome = outcome
        if outcome.result is not None:
            table: DataTable[Any] = self.query_one(DataTable)
            table.display = True
            for name, rows in outcome.result.tables:
                table.add_row(sanitize_text(name, 60), f"{rows:,}")
        if outcome.ok and outcome.result is not None:
            r = outcome.result
            text = Text(
                f"✔ restored from {sanitize_text(self._plan.backup.name, 80)} in "
                f"{r.duration_s:.1f}s · safety backup {sanitize_text(r.safety.name, 80)} · "
                "enter/esc closes",
                style="bold green",
            )
        else:
            parts = [sanitize_text(outcome.error, 200)] if outcome.error else []
            if outcome.not_scaled_back:
                parts.append(f"left at 0, scale by hand: {', '.join(outcome.not_scaled_back)}")
            text = Text("✖ " + " · ".join(parts or ["not restored"]), style="bold red")
        summary.update(text)

    def action_close(self) -> None:
        if self._busy:
            self.notify("still running: wait for the summary", severity="warning")
            return
        self.dismiss(None)
