"""The Checklist screen: the seed's pre-deployment checklist with every box a machine can check
checked against the real systems, the rest signed by name, and the one Go/No-Go on top."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, ProgressBar, Static

from backends.checklist.models import ChecklistEngine, ChecklistReport, ItemResult, ItemState
from backends.errors import BvaError
from backends.sanitize import plural, sanitize_text
from screens.base import BvaScreen
from screens.checklist_sign import SignStep
from widgets.app_header import AppHeader
from widgets.badges import age_text

STYLE = {
    ItemState.PASS: ("✔ pass", "green"),
    ItemState.WARN: ("! warn", "yellow"),
    ItemState.FAIL: ("✖ FAIL", "bold red"),
    ItemState.UNKNOWN: ("? unknown", "yellow"),
    ItemState.RUNNING: ("… running", "cyan"),
    ItemState.NOT_RUN: ("· not run", "dim"),
    ItemState.SIGNED: ("✔ signed", "green"),
    ItemState.UNSIGNED: ("○ unsigned", ""),
}


COLUMNS = (
    ("state", "STATE", 10),
    ("item", "ITEM", 34),
    ("took", "TIME", 5),
    ("evidence", "EVIDENCE", None),
)


class ChecklistScreen(BvaScreen):
    CSS_PATH = "checklist.tcss"
    # The table, not the version box: digits must switch screens as everywhere else (and the
    # footer show this screen's keys); v goes into the box.
    AUTO_FOCUS = "#cl-items"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "version", "Version", id="checklist.version"),
        Binding("r", "run_all", "Re-run all", id="checklist.run_all"),
        Binding("enter", "run_one", "Re-run / detail", show=False, id="checklist.run_one"),
        Binding("space", "sign", "Sign", id="checklist.sign"),
        Binding("g", "go", "Go to Rollout", id="checklist.go"),
        Binding("escape", "leave_version", "Leave box", show=False, id="checklist.leave"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: ChecklistReport | None = None
        self.running = False
        self.signer = ""  # the name typed once, offered again for the session
        self._evidence_width: int | None = None
        self._running_items: set[str] = set()
        self.runs = 0

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("… reading the checklist", id="cl-verdict")
        with Vertical(id="cl-top"):
            yield Input(
                placeholder="v: version to release (image tag), enter checks it", id="cl-version"
            )
            yield ProgressBar(id="cl-progress", show_eta=False, show_percentage=False)
        yield DataTable(id="cl-items", cursor_type="row")
        yield Static("", id="cl-detail")
        yield self.compose_footer()

    def on_mount(self) -> None:
        self.init_header()
        table: DataTable[Any] = self.query_one("#cl-items", DataTable)
        self._add_columns(table, None)
        self.query_one("#cl-progress").display = False
        self._start()

    @staticmethod
    def _add_columns(table: DataTable[Any], evidence: int | None) -> None:
        # Fixed widths: the state and the item read in one column each at any size; the
        # evidence takes what is left (it is what the engineer reads).
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=evidence if key == "evidence" else width)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_columns)

    def _fit_columns(self) -> None:
        table: DataTable[Any] = self.query_one("#cl-items", DataTable)
        if not table.size.width:
            return
        fixed = sum(w for _, _, w in COLUMNS if w is not None)
        # Each cell has one column of padding on both sides; the scrollbar takes two.
        evidence = max(20, table.size.width - fixed - 2 * len(COLUMNS) - 2)
        if evidence == self._evidence_width:
            return
        self._evidence_width = evidence
        table.clear(columns=True)
        self._add_columns(table, evidence)
        if self.report is not None:
            self._draw(self.report, running=self._running_items)

    @property
    def engine(self) -> ChecklistEngine | None:
        return self.bva.checklist_engine()

    @property
    def version(self) -> str | None:
        return self.query_one("#cl-version", Input).value.strip() or None

    @work(exclusive=True, group="checklist-open")
    async def _start(self) -> None:
        try:
            platform = await self.bva.platform()
        except BvaError as exc:
            self._banner(Text(f"✖ {sanitize_text(str(exc), 160)}", style="bold red"))
            return
        self.header_live(platform)
        engine = self.engine
        if engine is not None:
            # Every item at once, not run yet (and the sign-offs held): then the checks land.
            try:
                self.report = await engine.run(self.version, only=set())
            except BvaError as exc:
                self._banner(Text(f"✖ {sanitize_text(str(exc), 160)}", style="bold red"))
                return
            self._draw(self.report)
        self.action_run_all()

    # -- running ---------------------------------------------------------------------------
    def action_run_all(self) -> None:
        self._run(None)

    def action_run_one(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.automated:
            self._run({row.item})
        else:
            self._detail(row)

    @work(exclusive=True, group="checklist-run")
    async def _run(self, only: set[str] | None) -> None:
        engine = self.engine
        if engine is None:
            return
        previous = self.report.results if self.report is not None else ()
        chosen = [r for r in previous if r.automated and (only is None or r.item in only)]
        self.running = True
        bar = self.query_one("#cl-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(len(chosen), 1), progress=0)
        self._running_items = {r.item for r in chosen}
        if self.report is not None:
            self._draw(self.report, running=self._running_items)
        done: list[ItemResult] = []
        self._draw_running(0, len(chosen))

        def landed(result: ItemResult) -> None:
            done.append(result)
            self._running_items.discard(result.item)
            bar.update(progress=len(done))
            self._upsert(result)
            self._draw_running(len(done), len(chosen))

        try:
            report = await engine.run(self.version, only=only, previous=previous, on_result=landed)
        except BvaError as exc:
            self._banner(Text(f"✖ {sanitize_text(str(exc), 160)}", style="bold red"))
            return
        finally:
            self.running = False
            self._running_items = set()
            bar.display = False
        self.report = report
        self.runs += 1
        self.bva.remember_checklist(report)
        self._draw(report)

    # -- drawing ---------------------------------------------------------------------------
    def _banner(self, text: Text) -> None:
        self.query_one("#cl-verdict", Static).update(text)

    def _cells(self, r: ItemResult, running: bool = False) -> tuple[Any, ...]:
        label, style = STYLE[ItemState.RUNNING if running else r.state]
        took = f"{r.duration_s:.1f}s" if r.duration_s is not None and not running else ""
        title = Text(sanitize_text(r.title, 60), style="" if r.required else "dim")
        return (Text(label, style=style), title, took, sanitize_text(r.evidence, 200))

    def _upsert(self, r: ItemResult, running: bool = False) -> None:
        table: DataTable[Any] = self.query_one("#cl-items", DataTable)
        cells = self._cells(r, running)
        if r.item in table.rows:
            for col, value in zip(("state", "item", "took", "evidence"), cells, strict=True):
                table.update_cell(r.item, col, value, update_width=col != "evidence")
        else:
            table.add_row(*cells, key=r.item)

    def _draw(self, report: ChecklistReport, running: set[str] | None = None) -> None:
        table: DataTable[Any] = self.query_one("#cl-items", DataTable)
        keep = table.cursor_row
        with self.app.batch_update():
            table.clear()
            section = ""
            for r in report.results:
                if r.section != section:
                    section = r.section
                    heading = Text(section, style="bold underline")
                    table.add_row("", heading, "", "", key=f"§{section}")
                table.add_row(*self._cells(r, r.item in (running or set())), key=r.item)
            table.move_cursor(row=min(keep, table.row_count - 1))
        if not running:
            self._draw_verdict(report)
        self._detail(self._selected())

    def _draw_running(self, done: int, total: int) -> None:
        """While checks run there is no verdict yet: saying No-Go then would be a lie."""
        version = self.version or "no version given"
        self._banner(
            Text.assemble(
                (" ⟳ CHECKING ", "bold reverse yellow"),
                f" {version} · {done}/{total} checks done · the verdict when they are through",
            )
        )

    def _draw_verdict(self, report: ChecklistReport) -> None:
        v = report.verdict
        counts: dict[ItemState, int] = {}
        for r in report.results:
            counts[r.state] = counts.get(r.state, 0) + 1
        tally = " · ".join(
            f"{n} {s.value}" for s, n in counts.items() if s not in (ItemState.RUNNING,)
        )
        version = report.version or "no version given"
        need = "a Go is required here" if report.require_go else "a Go is advised here"
        if v.go:
            text = Text.assemble((" ✔ GO ", "bold reverse green"), f" {version} · {tally} · {need}")
        else:
            first = sanitize_text(v.reasons[0], 120) if v.reasons else ""
            text = Text.assemble(
                (" ✖ NO-GO ", "bold reverse red"),
                f" {version} · {plural(len(v.reasons), 'reason')}, first: {first}",
            )
        self._banner(text)

    def _selected(self) -> ItemResult | None:
        if self.report is None:
            return None
        table: DataTable[Any] = self.query_one("#cl-items", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.report.results if r.item == key), None)

    @on(DataTable.RowSelected, "#cl-items")
    def _selected_row(self) -> None:
        # The table takes enter itself: its selection is the screen's enter.
        self.action_run_one()

    @on(DataTable.RowHighlighted, "#cl-items")
    def _highlighted(self) -> None:
        self._detail(self._selected())

    def _detail(self, r: ItemResult | None) -> None:
        box = self.query_one("#cl-detail", Static)
        if r is None:
            box.update("")
            return
        text = Text(f"{sanitize_text(r.title, 80)}\n", style="bold")
        text.append(sanitize_text(r.evidence, 400))
        if r.automated and r.ran_at is not None:
            text.append(f"\nchecked {age_text(self.bva.clock() - r.ran_at)} ago", style="dim")
            text.append(" · enter re-runs it", style="dim")
        elif not r.automated:
            for s in r.signoffs:
                text.append(
                    f"\n✔ {sanitize_text(s.who, 40)}, {age_text(self.bva.clock() - s.at)} ago"
                )
                if s.comment:
                    text.append(f": {sanitize_text(s.comment, 120)}")
            text.append(
                "\nspace signs it" if not self.bva.read_only else "\nread-only: no signing",
                style="dim",
            )
        box.update(text)

    # -- signing and going -----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sign":
            engine = self.engine
            return engine is not None and engine.can_sign and not self.bva.read_only
        if action == "go":
            return self.report is not None and self.report.verdict.go and not self.bva.read_only
        return True

    def action_sign(self) -> None:
        row = self._selected()
        engine = self.engine
        if row is None or engine is None or row.automated:
            if row is not None and row.automated:
                self.notify("that item is a check: enter re-runs it", severity="warning")
            return
        version = self.version
        if version is None:
            self.notify(
                "type the version being released first: sign-offs are for a version",
                severity="error",
            )
            return

        def signed(answer: tuple[str, str] | None) -> None:
            if answer is not None:
                self.signer = answer[0]
                self._sign(row.item, answer[0], answer[1], version)

        self.app.push_screen(SignStep(row.title, version, self.signer), signed)

    @work(group="checklist-sign")
    async def _sign(self, item: str, who: str, comment: str, version: str) -> None:
        engine = self.engine
        if engine is None:
            return
        try:
            await engine.sign(item, who, comment, version)
        except BvaError as exc:
            self.notify(f"not signed: {sanitize_text(str(exc), 160)}", severity="error", timeout=8)
            return
        self.notify(f"signed by {who}", timeout=3)
        self._run(set())  # reads the sign-offs again, runs no check

    def action_go(self) -> None:
        if self.report is None or not self.report.verdict.go:
            return
        self.bva.prefill_release(self.report.version or "")
        self.app.switch_mode("rollout")

    def action_version(self) -> None:
        """Into the version box: typing there never switches screens (its keys are text)."""
        self.query_one("#cl-version", Input).focus()

    def action_leave_version(self) -> None:
        self.query_one("#cl-items", DataTable).focus()

    @on(Input.Submitted, "#cl-version")
    def _version_given(self) -> None:
        self.query_one("#cl-items", DataTable).focus()
        self.action_run_all()
