"""The Logs screen: every pod of every service (or the chosen ones), merged in time order,
filtered, searchable, safe to print, with a bounded buffer."""

from __future__ import annotations

import os
import re
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Log, Static

from backends.errors import BvaError
from backends.log_models import FilterError, LogFilter, LogLine, compile_pattern, level_rank
from backends.models import Track
from backends.sanitize import sanitize_text
from screens.base import BvaScreen
from widgets.app_header import AppHeader
from widgets.log_highlight import LogHighlighter

if TYPE_CHECKING:
    pass

LEVELS = ("", "INFO", "WARN", "ERROR")
TRACKS: tuple[Track | None, ...] = (None, "stable", "canary")
ERROR_RANK = level_rank("ERROR")


def pod_label(line: LogLine) -> str:
    suffix = line.pod.rsplit("-", 1)[-1] if line.pod.startswith(line.service) else line.pod
    return f"{line.service}/{suffix}" if line.service else line.pod


def render(line: LogLine, *, timestamps: bool) -> list[str]:
    """One entry as display lines: a head line, then its continuation lines indented."""
    head = ""
    if timestamps:
        head = (
            time.strftime("%H:%M:%S", time.gmtime(line.ts)) + f".{int(line.ts * 1000) % 1000:03d} "
        )
    head += pod_label(line) + " "
    if line.track == "canary":
        head += "[canary] "
    head += (line.level or "  ·  ").ljust(5) + " "
    out = [head + line.message]
    out += [f"    ↳ {extra}" for extra in line.extra]
    return out


class LogsScreen(BvaScreen):
    CSS_PATH = "logs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f,end", "follow", "Follow", id="logs.follow"),
        Binding("slash", "prompt('include')", "Include", id="logs.include"),
        Binding("backslash", "prompt('exclude')", "Exclude", id="logs.exclude"),
        Binding("s", "prompt('search')", "Search", id="logs.search"),
        Binding("n", "next_match(1)", "Next", id="logs.next"),
        Binding("N", "next_match(-1)", "Previous", show=False, id="logs.prev"),
        Binding("e", "next_error(1)", "Next error", id="logs.next_error"),
        Binding("E", "next_error(-1)", "Previous error", show=False, id="logs.prev_error"),
        Binding("l", "cycle_level", "Level", id="logs.level"),
        Binding("k", "cycle_track", "Track", show=False, id="logs.track"),
        Binding("w", "toggle_wrap", "Wrap", show=False, id="logs.wrap"),
        Binding("t", "toggle_timestamps", "Times", show=False, id="logs.timestamps"),
        Binding("c", "clear_filters", "Clear", show=False, id="logs.clear"),
        Binding("ctrl+o", "save", "Save", id="logs.save"),
        Binding("escape", "cancel_prompt", "Cancel", show=False, id="logs.cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.buffer: deque[LogLine] = deque()
        self.received = 0
        self.dropped = 0
        self.following = True
        self.wrap = False
        self.timestamps = True
        self.level = ""
        self.track: Track | None = None
        self.include = ""
        self.exclude = ""
        self.search = ""
        self._prompt = ""
        self._filter = LogFilter()
        self._search_re: re.Pattern[str] | None = None
        self._shown: list[tuple[int, LogLine]] = []  # (first display row, entry)
        self._rows = 0
        self._cursor = 0
        self._source: Any = None
        self.batches = 0

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("", id="logs-status")
        yield Input(id="logs-input")
        log = Log(id="logs-view", highlight=True, max_lines=None)
        log.highlighter = LogHighlighter()
        yield log
        yield Footer()

    def on_mount(self) -> None:
        self.init_header()
        self.buffer = deque(maxlen=self.bva.settings.log_buffer)
        self.query_one("#logs-input", Input).display = False
        self.query_one("#logs-view", Log).focus()
        self.set_interval(0.25, self._check_follow)
        self._status()
        self._tail()

    @work(exclusive=True, group="logs-tail")
    async def _tail(self) -> None:
        try:
            platform = await self.bva.platform()
            self.header_live(platform)
            self._source = self.bva.log_source(platform)
            async for batch in self._source.stream():
                self._take(batch)
        except BvaError as exc:
            self.query_one("#logs-status", Static).update(
                Text(f"✖ {sanitize_text(str(exc), 150)}", style="bold red")
            )

    async def on_unmount(self) -> None:
        if self._source is not None:
            await self._source.aclose()

    # -- data -------------------------------------------------------------------------------
    def _take(self, batch: list[LogLine]) -> None:
        """A batch from the source: kept in the ring buffer, shown if it passes the filter."""
        self.batches += 1
        self.received += len(batch)
        cap = self.buffer.maxlen or 0
        overflow = max(len(self.buffer) + len(batch) - cap, 0) if cap else 0
        self.dropped += overflow
        self.buffer.extend(batch)
        if overflow:
            # Entries left the buffer: the display must forget them too.
            self._rebuild()
        else:
            self._append([line for line in batch if self._filter.matches(line)])
        self._status()

    def _display(self, line: LogLine) -> list[str]:
        rows = render(line, timestamps=self.timestamps)
        if not self.wrap:
            return rows
        width = max(self.query_one("#logs-view", Log).size.width - 1, 20)
        out: list[str] = []
        for row in rows:
            out.append(row[:width])
            rest = row[width:]
            while rest:
                out.append("      " + rest[: width - 6])
                rest = rest[width - 6 :]
        return out

    def _append(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        log = self.query_one("#logs-view", Log)
        rows: list[str] = []
        for line in lines:
            self._shown.append((self._rows + len(rows), line))
            rows += self._display(line)
        self._rows += len(rows)
        log.write_lines(rows)

    def _rebuild(self) -> None:
        log = self.query_one("#logs-view", Log)
        log.clear()
        self._shown, self._rows = [], 0
        log.auto_scroll = self.following
        self._append([line for line in self.buffer if self._filter.matches(line)])
        if self.following:
            log.scroll_end(animate=False)

    def _status(self) -> None:
        parts = [
            f"{self.received} received",
            f"{len(self._shown)} shown",
            f"{self.dropped} dropped by the buffer",
        ]
        source = self._source
        if source is not None and getattr(source, "stats", None) is not None:
            if source.stats.dropped:
                parts.append(f"{source.stats.dropped} dropped by the source")
            parts.append(f"{source.stats.streams} streams")
        filters = []
        if self.level:
            filters.append(f"level ≥ {self.level}")
        if self.track:
            filters.append(f"track {self.track}")
        if self.include:
            filters.append(f"/{self.include}/")
        if self.exclude:
            filters.append(f"not /{self.exclude}/")
        if self.search:
            filters.append(f"search {self.search!r}")
        state = "● following" if self.following else "‖ paused (f follows)"
        text = Text(state + " · ", style="green" if self.following else "bold yellow")
        text.append(" · ".join(parts))
        if filters:
            text.append(" · " + ", ".join(sanitize_text(f, 60) for f in filters), style="cyan")
        self.query_one("#logs-status", Static).update(text)

    # -- following --------------------------------------------------------------------------
    def _check_follow(self) -> None:
        log = self.query_one("#logs-view", Log)
        if self.following and log.max_scroll_y > 0 and not log.is_vertical_scroll_end:
            # The reader scrolled up: stop dragging the view down under them.
            self.following = False
            log.auto_scroll = False
            self._status()

    def action_follow(self) -> None:
        self.following = True
        log = self.query_one("#logs-view", Log)
        log.auto_scroll = True
        log.scroll_end(animate=False)
        self._status()

    def _pause_at(self, row: int) -> None:
        self.following = False
        log = self.query_one("#logs-view", Log)
        log.auto_scroll = False
        log.scroll_to(y=max(row - 2, 0), animate=False)
        self._cursor = row
        self._status()

    # -- filters and search ------------------------------------------------------------------
    def action_prompt(self, what: str) -> None:
        box = self.query_one("#logs-input", Input)
        self._prompt = what
        box.placeholder = {
            "include": "keep lines matching (regex)",
            "exclude": "hide lines matching (regex)",
            "search": "highlight and jump (regex)",
        }[what]
        box.value = {"include": self.include, "exclude": self.exclude, "search": self.search}[what]
        box.display = True
        box.focus()

    def action_cancel_prompt(self) -> None:
        box = self.query_one("#logs-input", Input)
        if box.display:
            box.display = False
            self.query_one("#logs-view", Log).focus()

    @on(Input.Submitted, "#logs-input")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        try:
            if value:
                compile_pattern(value)
        except FilterError as exc:
            self.notify(str(exc), severity="error")
            return
        if self._prompt == "include":
            self.include = value
        elif self._prompt == "exclude":
            self.exclude = value
        else:
            self.search = value
        self.action_cancel_prompt()
        self._apply_filters()
        if self._prompt == "search" and value:
            self.action_next_match(1)

    def _apply_filters(self) -> None:
        self._filter = LogFilter.build(
            min_level=self.level or None,
            track=self.track,
            include=self.include or None,
            exclude=self.exclude or None,
        )
        self._search_re = compile_pattern(self.search) if self.search else None
        highlighter = self.query_one("#logs-view", Log).highlighter
        if isinstance(highlighter, LogHighlighter):
            highlighter.search = self._search_re
        self._rebuild()
        self._status()

    def action_cycle_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self._apply_filters()

    def action_cycle_track(self) -> None:
        self.track = TRACKS[(TRACKS.index(self.track) + 1) % len(TRACKS)]
        self._apply_filters()

    def action_clear_filters(self) -> None:
        self.level, self.track, self.include, self.exclude, self.search = "", None, "", "", ""
        self._apply_filters()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self._rebuild()

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self._rebuild()

    def _jump(self, direction: int, hit: Any) -> None:
        rows = [row for row, line in self._shown if hit(line)]
        if not rows:
            self.notify("no match", severity="warning", timeout=2)
            return
        if direction > 0:
            nxt = next((r for r in rows if r > self._cursor), rows[0])
        else:
            nxt = next((r for r in reversed(rows) if r < self._cursor), rows[-1])
        self._pause_at(nxt)

    def action_next_match(self, direction: int) -> None:
        pattern = self._search_re
        if pattern is None:
            self.action_prompt("search")
            return
        self._jump(direction, lambda line: any(pattern.search(t) for t in line.texts()))

    def action_next_error(self, direction: int) -> None:
        self._jump(direction, lambda line: level_rank(line.level) >= ERROR_RANK)

    def action_save(self) -> None:
        folder = Path(os.environ.get("BVA_LOG_SAVE_DIR", "."))
        path = folder / time.strftime("bva-logs-%Y%m%d-%H%M%S.log", time.gmtime())
        try:
            with open(path, "w", encoding="utf-8") as fh:
                for _row, line in self._shown:
                    fh.write("\n".join(render(line, timestamps=True)) + "\n")
        except OSError as exc:
            self.notify(f"cannot save: {exc.strerror}", severity="error")
            return
        self.saved_to = path
        self.notify(f"saved {len(self._shown)} entries to {path}", timeout=5)
