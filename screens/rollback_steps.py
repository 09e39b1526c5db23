"""The rollback wizard's steps, each a modal returning a typed result; None (Escape) means
one step back. Enter moves forward only where the step's own content says what it does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Log, SelectionList, Static

from backends.errors import BvaError
from backends.sanitize import sanitize_text
from widgets.badges import age_text

if TYPE_CHECKING:
    from backends.rollback.models import (
        RollbackEvent,
        RollbackPlan,
        RollbackResult,
        Rollbacks,
        ServiceCandidate,
    )

STEP_CSS = """
    {cls} {{
        align: center middle;
    }}
    {cls} > Vertical {{
        width: 110;
        max-width: 98%;
        height: auto;
        max-height: 96%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }}
    {cls} .step-title {{
        text-style: bold;
        height: auto;
    }}
    {cls} .step-help {{
        color: $text-muted;
        height: auto;
    }}
"""


def _title(step: int, text: str) -> Static:
    return Static(f"Rollback — step {step} of 5: {text}", classes="step-title")


def _help(text: str) -> Static:
    return Static(text, classes="step-help")


class PickServicesStep(ModalScreen[list[str] | None]):
    DEFAULT_CSS = STEP_CSS.format(cls="PickServicesStep")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next", "Next", priority=True, id="rb1.next"),
        Binding("escape", "back", "Back", id="rb1.back"),
    ]

    def __init__(self, candidates: list[ServiceCandidate]) -> None:
        super().__init__()
        self._candidates = candidates

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(1, "which services?")
            options = []
            for c in self._candidates:
                label = Text(c.service)
                if c.degraded:
                    label.append(f"  ✖ {sanitize_text(c.reason, 50)}", style="bold red")
                else:
                    label.append(f"  r{c.revision} {sanitize_text(c.image_tag, 20)}", style="dim")
                options.append((label, c.service, c.degraded))
            yield SelectionList[str](*options, id="rb-pick")
            yield _help(
                "space selects (degraded services come first, already selected) · "
                "enter next · esc cancel"
            )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_next(self) -> None:
        chosen = list(self.query_one("#rb-pick", SelectionList).selected)
        if not chosen:
            self.notify("select at least one service (space)", severity="warning")
            return
        self.dismiss(chosen)

    def action_back(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True, slots=True)
class RevisionChoice:
    revision: int | None  # None: kubectl's default, the previous revision


class PickRevisionStep(ModalScreen[RevisionChoice | None]):
    DEFAULT_CSS = (
        STEP_CSS.format(cls="PickRevisionStep")
        + """
    PickRevisionStep DataTable {
        height: auto;
        max-height: 16;
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next", "Pick", priority=True, id="rb2.next"),
        Binding("escape", "back", "Back", id="rb2.back"),
    ]

    def __init__(self, plan: RollbackPlan, now: float) -> None:
        super().__init__()
        self._plan = plan
        self._now = now
        self._single = len(plan.services) == 1

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(2, "which revision?")
            yield DataTable(id="rb-revisions", cursor_type="row")
            yield _help(
                "the kubectl default (the previous revision) is preselected · enter "
                "picks · esc back"
                if self._single
                else "several services: each goes back to its previous revision · enter "
                "next · esc back"
            )

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one(DataTable)
        now = self._now
        if self._single:
            sp = self._plan.services[0]
            for key, label in (
                ("rev", "REVISION"),
                ("image", "IMAGE"),
                ("cause", "CHANGE-CAUSE"),
                ("age", "AGE"),
                ("mark", ""),
            ):
                table.add_column(label, key=key)
            target = sp.target.revision if sp.target else None
            for rev in sorted(sp.history, key=lambda r: -r.revision):
                mark = (
                    "← current"
                    if rev.is_current
                    else ("← default" if rev.revision == target else "")
                )
                image = next(iter(rev.images.values()), "")
                table.add_row(
                    str(rev.revision),
                    sanitize_text(image, 40),
                    sanitize_text(rev.change_cause or "—", 40),
                    age_text(now - rev.created) if rev.created else "—",
                    mark,
                    key=str(rev.revision),
                )
            if target is not None:
                table.move_cursor(row=table.get_row_index(str(target)))
        else:
            for key, label in (
                ("service", "SERVICE"),
                ("from", "CURRENT"),
                ("to", "TARGET"),
                ("what", ""),
            ):
                table.add_column(label, key=key)
            for sp in self._plan.services:
                table.add_row(
                    sp.service,
                    f"r{sp.current.revision}",
                    f"r{sp.target.revision}" if sp.target else "—",
                    sanitize_text(sp.message, 60),
                    key=sp.service,
                )
        table.focus()

    def action_next(self) -> None:
        if not self._single:
            self.dismiss(RevisionChoice(None))
            return
        table: DataTable[Any] = self.query_one(DataTable)
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self.dismiss(RevisionChoice(int(str(row_key.value))))

    def action_back(self) -> None:
        self.dismiss(None)


class ReviewPlanStep(ModalScreen[bool | None]):
    DEFAULT_CSS = (
        STEP_CSS.format(cls="ReviewPlanStep")
        + """
    ReviewPlanStep VerticalScroll {
        height: auto;
        max-height: 30;
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next", "Confirm…", priority=True, id="rb3.next"),
        Binding("escape", "back", "Back", id="rb3.back"),
    ]

    def __init__(self, plan: RollbackPlan, *, read_only: bool, now: float) -> None:
        super().__init__()
        self._plan = plan
        self._read_only = read_only
        self._now = now

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(3, "review the plan")
            with VerticalScroll():
                yield Static(plan_text(self._plan, self._now), id="rb-plan")
            yield _help(
                "READ-ONLY: this plan cannot be executed here · esc back"
                if self._read_only
                else "enter goes on to the typed confirmation · esc back"
            )

    def action_next(self) -> None:
        if self._read_only:
            self.notify("read-only: a rollback cannot be executed from here", severity="error")
            return
        if not any(sp.action == "rollback" for sp in self._plan.services):
            self.notify("nothing to roll back in this plan", severity="warning")
            return
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)


def plan_text(plan: RollbackPlan, now: float) -> Text:
    text = Text()
    if plan.release is not None:
        text.append(
            f"⚠ release {plan.release.release_id} ({plan.release.version}) is in "
            "progress: it is aborted first (its canaries go, traffic back on "
            "stable).\n",
            style="bold yellow",
        )
    if plan.lock_holder:
        text.append(
            f"⚠ the release lock is held by {sanitize_text(plan.lock_holder, 100)}\n",
            style="bold yellow",
        )
    for sp in plan.services:
        text.append(f"\n{sp.service}", style="bold")
        cur = sp.current
        text.append(
            f"  r{cur.revision} {sanitize_text(next(iter(cur.images.values()), ''), 50)}"
            f" ({sanitize_text(cur.change_cause or 'no change-cause', 40)}, "
            f"{age_text(now - cur.created) if cur.created else '?'} old)"
        )
        if sp.action == "rollback" and sp.target is not None:
            tgt = sp.target
            text.append(
                f"\n  → r{tgt.revision} "
                f"{sanitize_text(next(iter(tgt.images.values()), ''), 50)} "
                f"({sanitize_text(tgt.change_cause or 'no change-cause', 40)}, "
                f"{age_text(now - tgt.created) if tgt.created else '?'} old)",
                style="green",
            )
        else:
            style = "yellow" if sp.action == "nothing" else "bold red"
            text.append(f"\n  {sp.action.upper()}: {sanitize_text(sp.message, 120)}", style=style)
        for ch in sp.changes:
            text.append(
                f"\n    {sanitize_text(ch.container, 30)} {sanitize_text(ch.field, 40)}"
                f": {sanitize_text(ch.current, 40)} → {sanitize_text(ch.target, 40)}"
            )
        for w in sp.warnings:
            text.append(f"\n  ⚠ {sanitize_text(w, 120)}", style="yellow")
    text.append("\n\nNOT rolled back: ", style="bold red")
    text.append("; ".join(plan.not_rolled_back))
    for note in plan.database:
        text.append(f"\n  database: {sanitize_text(note, 160)}", style="yellow")
    return text


class ExecuteStep(ModalScreen[None]):
    DEFAULT_CSS = (
        STEP_CSS.format(cls="ExecuteStep")
        + """
    ExecuteStep Log {
        height: 12;
    }
    ExecuteStep DataTable {
        height: auto;
        max-height: 8;
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Close", priority=True, id="rb5.close"),
    ]

    def __init__(self, engine: Rollbacks, plan: RollbackPlan) -> None:
        super().__init__()
        self._engine = engine
        self._plan = plan
        self.result: RollbackResult | None = None
        self._busy = True

    def compose(self) -> ComposeResult:
        with Vertical():
            yield _title(5, "rolling back")
            yield DataTable(id="rb-exec", cursor_type="none")
            yield Log(id="rb-events", highlight=False)
            yield Static("running… (this step cannot be cancelled halfway)", id="rb-summary")

    def on_mount(self) -> None:
        table: DataTable[Any] = self.query_one("#rb-exec", DataTable)
        table.add_column("SERVICE", key="service")
        table.add_column("OUTCOME", key="outcome")
        for sp in self._plan.services:
            table.add_row(sp.service, "waiting", key=sp.service)
        self._run()

    def _on_event(self, event: RollbackEvent) -> None:
        stamp = time.strftime("%H:%M:%SZ ", time.gmtime(event.ts))
        who = f"[{event.service}] " if event.service else ""
        self.query_one("#rb-events", Log).write_line(stamp + sanitize_text(who + event.text, 300))
        if event.service:
            self.query_one("#rb-exec", DataTable).update_cell(
                event.service, "outcome", sanitize_text(event.text, 60), update_width=True
            )

    @work(exclusive=True, group="rollback-execute")
    async def _run(self) -> None:
        plan = self._plan
        paused = any(sp.paused for sp in plan.services)
        try:
            result = await self._engine.execute(
                plan,
                resume_paused=paused,
                abort_release=plan.release is not None or bool(plan.lock_holder),
                on_event=self._on_event,
            )
        except BvaError as exc:
            self._busy = False
            self.query_one("#rb-summary", Static).update(
                Text(f"✖ {sanitize_text(str(exc), 200)}", style="bold red")
            )
            return
        self._busy = False
        self.result = result
        table: DataTable[Any] = self.query_one("#rb-exec", DataTable)
        for o in result.outcomes:
            table.update_cell(
                o.service,
                "outcome",
                Text(
                    ("✔ " if o.ok else "✖ ") + sanitize_text(o.outcome, 70),
                    style="green" if o.ok else "bold red",
                ),
                update_width=True,
            )
        took = result.finished - result.started
        if self._plan.database:
            # The services are back; the schema and data are not, and may not fit them.
            self.notify(
                "the database was not rolled back: D on the Rollback screen restores it "
                "(a separate, guarded step)",
                severity="warning",
                timeout=15,
            )
        verdict = (
            "✔ done: services are back and healthy"
            if result.ok
            else "✖ not everything came back: see above"
        )
        self.query_one("#rb-summary", Static).update(
            Text(
                f"{verdict} · took {took:.1f}s · journal: {result.journal} · enter/esc closes",
                style="bold green" if result.ok else "bold red",
            )
        )

    def action_close(self) -> None:
        if self._busy:
            self.notify("still running: wait for the summary", severity="warning")
            return
        self.dismiss(None)
