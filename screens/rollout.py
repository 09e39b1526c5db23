"""The Rollout screen: plan and start a phased release, or attach to the one in progress;
watch its phases, weights, pods and gates live; pause, resume, promote or abort it."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import (
    DataTable,
    Input,
    Log,
    ProgressBar,
    SelectionList,
    Static,
)

from backends.errors import BvaError
from backends.release.models import (
    DatabasePlan,
    ReleaseState,
    ReleaseView,
    StepState,
)
from backends.sanitize import sanitize_text
from screens.base import BvaScreen
from screens.rollout_start import confirm_start
from widgets.app_header import AppHeader
from widgets.badges import sparkline
from widgets.confirm import TypeToConfirm
from widgets.db_steps import DatabaseSteps
from widgets.gate_cells import RESULT_STYLE, gate_cells
from widgets.phase_stepper import PhaseStepper


class ReleaseChanged(Message):
    """A release as it is now, from this console's driver or from the cluster: the one way
    the screen learns of a change. A newer one replaces an older one still queued."""

    def __init__(self, view: ReleaseView | None) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ReleaseChanged)


MUTATING = {"start", "pause", "resume", "promote", "promote_full", "abort", "take_over"}
POLL_S = 1.0
STATE_STYLE = {
    ReleaseState.RUNNING: ("● running", "green"),
    ReleaseState.PAUSED: ("‖ paused", "bold yellow"),
    ReleaseState.AWAITING_APPROVAL: ("? awaiting approval", "bold yellow"),
    ReleaseState.PROMOTING: ("↻ promoting", "cyan"),
    ReleaseState.FINISHED: ("✔ finished", "bold green"),
    ReleaseState.ABORTED: ("✖ aborted", "bold red"),
    ReleaseState.FAILED: ("✖ failed", "bold red"),
    ReleaseState.DRIVER_LOST: ("✖ driver lost", "bold red"),
}


class RolloutScreen(BvaScreen):
    CSS_PATH = "rollout.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start release", id="rollout.start"),
        Binding("p", "pause", "Pause", id="rollout.pause"),
        Binding("r", "resume", "Resume", id="rollout.resume"),
        Binding("n", "promote", "Promote", id="rollout.promote"),
        Binding("f", "promote_full", "Promote fully", id="rollout.promote_full"),
        Binding("a", "abort", "Abort", id="rollout.abort"),
        Binding("t", "take_over", "Take over", id="rollout.take_over"),
        Binding("escape", "leave_form", "Leave form", show=False, id="rollout.leave_form"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: ReleaseView | None = None
        self._seen_timeline = 0
        self._last_key: tuple[Any, ...] | None = None
        self._active = True
        self.polls = 0
        self._db_lines: list[str] = []
        self._db_plan: DatabasePlan | None = None
        self._drawn_release: str | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("… looking for a release in progress", id="banner")
        with Vertical(id="plan"), Horizontal(id="plan-row"):
            yield SelectionList[str](id="plan-services")
            with Vertical(id="plan-side"):
                yield Input(placeholder="version (image tag), e.g. 1.2.0", id="plan-version")
                yield Static("", id="plan-preview")
        with Vertical(id="live"):
            yield PhaseStepper(id="stepper")
            yield DatabaseSteps(id="dbsteps")
            yield ProgressBar(id="hold-bar", show_eta=False, show_percentage=True)
            yield Static("", id="samples")
            yield DataTable(id="progress", cursor_type="row")
            yield DataTable(id="gates", cursor_type="row")
            yield Log(id="timeline", max_lines=500, highlight=False)
        yield self.compose_footer()

    def on_mount(self) -> None:
        self.init_header()
        progress: DataTable[Any] = self.query_one("#progress", DataTable)
        for key, label in (
            ("service", "SERVICE"),
            ("set", "SET"),
            ("actual", "ACTUAL"),
            ("stable", "STABLE"),
            ("canary", "CANARY"),
            ("restarts", "RESTARTS"),
        ):
            progress.add_column(label, key=key)
        gates: DataTable[Any] = self.query_one("#gates", DataTable)
        for key, label in (
            ("service", "SERVICE"),
            ("gate", "GATE"),
            ("value", "NOW"),
            ("limit", "LIMIT"),
            ("result", "RESULT"),
            ("tally", "PASS/FAIL"),
            ("trend", "TREND"),
        ):
            gates.add_column(label, key=key)
        self.query_one("#live").display = False
        self.query_one("#plan").display = False
        self._connect()

    @work(exclusive=True, group="rollout-connect")
    async def _connect(self) -> None:
        try:
            platform = await self.bva.platform()
        except BvaError as exc:
            self.query_one("#banner", Static).update(
                Text(f"✖ {sanitize_text(str(exc), 160)}", style="bold red")
            )
            return
        self.header_live(platform)
        services = self.query_one("#plan-services", SelectionList)
        services.clear_options()
        services.add_options([(s, s) for s, _ in platform.services()])
        self._update_preview()
        self._read_database_plan()
        if self.bva.release_driver is not None:
            self.post_message(ReleaseChanged(self.bva.release_driver.view()))
        self._poll()

    @work(exclusive=True, group="rollout-db-plan")
    async def _read_database_plan(self) -> None:
        """The release's database step for the planning form (read again at the start)."""
        platform = self.bva.loaded_platform
        self._db_plan = None
        if platform is None or platform.database_admin is None:
            self._db_lines = []
            return
        try:
            self._db_plan = plan = await self.bva.release_database_plan()
        except BvaError as exc:
            self._db_lines = [f"database: ✖ {sanitize_text(str(exc), 240)}"]
        else:
            self._db_lines = (
                ["database: no pending migrations, no database step"]
                if plan is None
                else plan.lines(self.bva.clock())
            )
        self._update_preview()

    @work(exclusive=True, group="rollout-poll")
    async def _poll(self) -> None:
        await self.bva.platform()
        if self.bva.release_driver is None or self.bva.release_driver.state.over:
            try:
                view = await self.bva.current_release()
            except BvaError as exc:
                self.query_one("#banner", Static).update(
                    Text(f"✖ {sanitize_text(str(exc), 120)}", style="bold red")
                )
            else:
                driven = self.bva.release_driver
                if view is None and driven is not None:
                    view = driven.view()
                self.post_message(ReleaseChanged(view))
        self.polls += 1
        if self._active:
            self.set_timer(POLL_S, self._poll)

    def on_screen_suspend(self) -> None:
        self._active = False

    def on_screen_resume(self) -> None:
        prefill = self.bva.release_prefill
        if prefill:
            # The checklist said Go for this version: the form starts from it.
            self.query_one("#plan-version", Input).value = prefill
            self.bva.prefill_release("")
        if not self._active:
            self._active = True
            self._poll()

    # -- drawing ----------------------------------------------------------------------------
    def on_release_changed(self, message: ReleaseChanged) -> None:
        self.show(message.view)

    def show(self, view: ReleaseView | None) -> None:
        """Draw a release (or the planning form when there is none)."""
        self.view = view
        self.query_one("#plan").display = view is None
        self.query_one("#live").display = view is not None
        self.refresh_bindings()
        banner = self.query_one("#banner", Static)
        if view is None:
            banner.update(
                Text(
                    "No release in progress. Pick services and a version, then "
                    "ctrl+s to review the plan and start.",
                    style="dim",
                )
            )
            return
        if view.release_id != self._drawn_release:
            # Another release: nothing of the last one's rows or timeline may linger.
            self._drawn_release = view.release_id
            self.query_one("#progress", DataTable).clear()
            self.query_one("#gates", DataTable).clear()
            self.query_one("#timeline", Log).clear()
            self._seen_timeline = 0
            self._last_key = None
        label, style = STATE_STYLE[view.state]
        text = Text.assemble(
            (f" {view.release_id} ", "bold reverse"),
            " ",
            (view.version, "bold"),
            f" by {sanitize_text(view.owner, 40)} ",
            (label, style),
        )
        if view.reason:
            reason = view.reason
            if any(s.state is StepState.FAILED for s in view.database):
                reason = reason.split(";", 1)[0]  # the rest is in the steps below
            text.append(f" — {sanitize_text(reason, 160)}")
        if view.state.over and not self.bva.read_only:
            text.append("  (ctrl+s plans a new release)", style="dim")
        banner.update(text)
        self._draw_phase(view)
        self._draw_progress(view)
        self._draw_gates(view)
        self._draw_timeline(view)

    def _record_command(self, view: ReleaseView) -> str:
        """How to read the release record, when this process drove the release (its record
        is in this machine's journal dir)."""
        driver = self.bva.release_driver
        record = driver.record if driver is not None else None
        if record is None or record.stem != view.release_id:
            return ""
        return f"bva release record {view.release_id} --env {self.bva.environment_label}"

    def _draw_phase(self, view: ReleaseView) -> None:
        now = self.bva.clock()
        done = view.state is ReleaseState.FINISHED
        failed = view.state in (ReleaseState.ABORTED, ReleaseState.FAILED)
        self.query_one(PhaseStepper).show(
            view.phases, view.phase_index, done=done, failed=failed, database=view.database
        )
        steps = self.query_one(DatabaseSteps)
        db_failed = any(s.state is StepState.FAILED for s in view.database)
        steps.display = view.database_busy or db_failed
        if steps.display:
            steps.show(view.database)
            self.query_one("#hold-bar").display = False
            said = Text(
                "the database step fails the release before any service changes"
                if db_failed
                else "database step first: no service changes until it is through"
            )
            self.query_one("#samples", Static).update(self._with_record(said, view))
            return
        self.query_one("#hold-bar").display = True
        bar = self.query_one("#hold-bar", ProgressBar)
        hold = view.holds[view.phase_index] if view.phase_index < len(view.holds) else 0.0
        left = view.hold_left(now)
        if hold and left is not None and not view.state.over:
            bar.update(total=hold, progress=hold - left)
        else:
            bar.update(total=1, progress=1 if done else 0)
        parts = [f"phase {view.phase_index + 1}/{len(view.phases)} at {view.weight}%"]
        if left is not None and not view.state.over:
            parts.append(f"hold {left:.0f}s left")
        total = view.samples_passed + view.samples_failed
        parts.append(
            f"{view.samples_passed}/{total} samples passed, "
            f"{view.samples_failed}/{view.failure_limit} failures allowed"
        )
        if view.next_sample_at is not None and view.state is ReleaseState.RUNNING:
            parts.append(f"next check in {max(view.next_sample_at - now, 0):.0f}s")
        if not view.driver_alive and not view.state.over:
            parts.append("no driver: t takes it over, a aborts it")
        self.query_one("#samples", Static).update(self._with_record(Text(" · ".join(parts)), view))

    def _with_record(self, line: Text, view: ReleaseView) -> Text:
        record = self._record_command(view) if view.state.over else ""
        if record:
            line.append(f"\nthe release record: {record}", style="bold")
        return line

    def _draw_progress(self, view: ReleaseView) -> None:
        table: DataTable[Any] = self.query_one("#progress", DataTable)
        # No canary (a release stopped in its database step): no empty tables either.
        table.display = bool(view.progress)
        self.query_one("#gates", DataTable).display = bool(view.progress)
        with self.app.batch_update():
            for p in view.progress:
                cells = (
                    p.service,
                    f"{p.set_weight}%",
                    f"{p.actual_weight:.0f}%",
                    f"{p.stable_ready}/{p.stable_desired}",
                    f"{p.canary_ready}/{p.canary_desired}",
                    Text(str(p.canary_restarts), style="bold red" if p.canary_restarts else ""),
                )
                self._upsert(
                    table,
                    p.service,
                    cells,
                    ("service", "set", "actual", "stable", "canary", "restarts"),
                )

    def _draw_gates(self, view: ReleaseView) -> None:
        table: DataTable[Any] = self.query_one("#gates", DataTable)
        with self.app.batch_update():
            for p in view.progress:
                for g in p.gates:
                    last = g.last
                    value, limit = gate_cells(last)
                    result = Text("—") if last is None else Text(*RESULT_STYLE[last.result])
                    tally = f"{g.passed}/{g.failed}" if (g.passed or g.failed) else "—"
                    cells = (
                        p.service,
                        g.gate,
                        value,
                        limit,
                        result,
                        tally,
                        sparkline(g.history, 10),
                    )
                    self._upsert(
                        table,
                        f"{p.service}/{g.gate}",
                        cells,
                        ("service", "gate", "value", "limit", "result", "tally", "trend"),
                    )

    def _upsert(
        self, table: DataTable[Any], key: str, cells: tuple[Any, ...], columns: tuple[str, ...]
    ) -> None:
        if key in table.rows:
            for col, value in zip(columns, cells, strict=True):
                table.update_cell(key, col, value)
        else:
            table.add_row(*cells, key=key)

    def _draw_timeline(self, view: ReleaseView) -> None:
        log = self.query_one("#timeline", Log)
        entries = view.timeline
        if entries:
            if len(entries) < self._seen_timeline:
                self._seen_timeline = 0
                log.clear()
            for e in entries[self._seen_timeline :]:
                log.write_line(
                    self._stamp(e.ts)
                    + sanitize_text((f"[{e.service}] " if e.service else "") + e.text, 300)
                )
            self._seen_timeline = len(entries)
            return
        # A release driven elsewhere: note what changed as this screen sees it.
        key = (view.release_id, view.phase_index, view.state, view.reason)
        if key != self._last_key:
            self._last_key = key
            text = (
                f"{view.release_id}: phase {view.phase_index + 1} at {view.weight}%, "
                f"{view.state.value}" + (f" ({view.reason})" if view.reason else "")
            )
            log.write_line(self._stamp(self.bva.clock()) + sanitize_text(text, 300))

    def _stamp(self, ts: float) -> str:
        import time

        # UTC: an incident timeline is read across time zones.
        return time.strftime("%H:%M:%SZ ", time.gmtime(ts))

    # -- planning ---------------------------------------------------------------------------
    @on(SelectionList.SelectedChanged, "#plan-services")
    @on(Input.Changed, "#plan-version")
    def _update_preview(self) -> None:
        preview = self.query_one("#plan-preview", Static)
        platform = self.bva.loaded_platform
        if platform is None:
            return
        rollout = platform.config.rollout_for(platform.env_name)
        t = platform.config.thresholds
        chosen = list(self.query_one("#plan-services", SelectionList).selected)
        version = self.query_one("#plan-version", Input).value.strip()
        lines = [
            f"services: {', '.join(chosen) or '(space selects)'}",
            f"version:  {version or '(type the image tag)'}",
            f"strategy: {rollout.strategy}",
            "phases:   " + " → ".join(f"{w}%" for w in rollout.phases),
            "holds:    " + ", ".join(f"{h:g}s" for h in rollout.holds),
            f"gates:    every {rollout.gate_interval:g}s — error rate < {t.error_rate_pct:g}%, "
            f"p95 < {t.p95_ms:g} ms, canary ready, no restarts",
            f"abort after {rollout.failure_limit} failed samples; no data pauses for a human",
            *self._db_lines,
        ]
        preview.update("\n".join(lines))

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in MUTATING:
            return True
        if self.bva.read_only:
            return False  # hidden, and the adapters would refuse anyway
        view = self.view
        if action == "start":
            return view is None or view.state.over
        if view is None or view.state.over:
            return False
        if view.database_busy:
            return False  # no canary yet: nothing to pause, promote or abort
        if action == "take_over":
            return not view.driver_alive
        if action == "pause":
            return view.state in (ReleaseState.RUNNING, ReleaseState.AWAITING_APPROVAL)
        if action == "resume":
            return view.state is ReleaseState.PAUSED
        return view.driver_alive

    def action_start(self) -> None:
        if self.view is not None and self.view.state.over:
            # The last release stays on screen until the captain asks for a new plan.
            self.bva.forget_release()
            self.show(None)
            self._read_database_plan()
            self.query_one("#plan-services", SelectionList).focus()
            return
        platform = self.bva.loaded_platform
        chosen = list(self.query_one("#plan-services", SelectionList).selected)
        version = self.query_one("#plan-version", Input).value.strip()
        if platform is None or not chosen or not version:
            self.notify("pick at least one service and type a version first", severity="error")
            return
        confirm_start(self, platform, chosen, version, self._db_plan)

    def action_leave_form(self) -> None:
        """Escape out of the version box, so the global keys (1, 2, q, ?) work again."""
        self.query_one("#plan-services", SelectionList).focus()

    def _control(self, action: str) -> None:
        self.bva.control_release(action)

    def action_pause(self) -> None:
        self._control("pause")

    def action_resume(self) -> None:
        self._control("resume")

    def action_promote(self) -> None:
        self._control("promote")

    def action_promote_full(self) -> None:
        self._control("promote-full")

    def action_take_over(self) -> None:
        self.bva.take_over_release()

    def action_abort(self) -> None:
        view = self.view
        platform = self.bva.loaded_platform
        if view is None or platform is None:
            return
        body = (
            f"Abort {view.release_id} ({view.version} on {', '.join(view.services)}): the "
            "canaries are removed and all traffic goes back to stable at once."
        )

        def go(confirmed: bool | None) -> None:
            if confirmed:
                self._control("abort")

        self.app.push_screen(TypeToConfirm("Abort the release?", body, platform.env_name), go)
