"""The Logs screen: every pod of every service (or the chosen ones), merged in time order,
filtered, searchable, safe to print, with a bounded buffer."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input, Static

from backends.errors import BvaError
from backends.logs.models import (
    LEVEL,
    FilterError,
    LineRow,
    LogFeed,
    LogFilter,
    LogLine,
    compile_pattern,
    found_in_row,
    level_rank,
    line_row,
)
from backends.models import Track
from backends.sanitize import sanitize_text
from screens.base import BvaScreen
from widgets.app_header import AppHeader
from widgets.log_view import LogView, render_plain

LEVELS = ("", "INFO", "WARN", "ERROR")
TRACKS: tuple[Track | None, ...] = (None, "stable", "canary")
ERROR_RANK = level_rank("ERROR")
# The status line's counters change with every batch; redrawn at most this often.
STATUS_EVERY = 0.25


def count(n: int) -> str:
    """A counter that fits the status line: 9,876 · 12.3k · 1.23M."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


class LogBatch(Message):
    """Lines from the log source; the tail waits for ``taken`` before it reads on."""

    def __init__(self, lines: list[LineRow] | list[LogLine], taken: asyncio.Event) -> None:
        super().__init__()
        self.lines, self.taken = lines, taken


class LogsScreen(BvaScreen):
    CSS_PATH = "logs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f,end", "follow", "Follow", id="logs.follow"),
        # Priority: a key typed right after one of these (a paste, a fast typist, keys sent
        # in one write over SSH) must land in the prompt it opens. The App forwards each
        # key to whatever has focus as it takes it, so the prompt takes focus in the same
        # turn; these keys are text while a prompt is open (see check_action).
        Binding("slash", "prompt('include')", "Include", id="logs.include", priority=True),
        Binding("backslash", "prompt('exclude')", "Exclude", id="logs.exclude", priority=True),
        Binding("s", "prompt('search')", "Search", id="logs.search", priority=True),
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
        # Priority too, for the keys behind them; only while a prompt is open.
        Binding("enter", "submit_prompt", "Apply", show=False, id="logs.submit", priority=True),
        Binding("escape", "cancel_prompt", "Cancel", show=False, id="logs.cancel", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        # The lines kept, as rows (LineRow): see LineRow for why not LogLine objects.
        self.buffer: deque[LineRow] = deque()
        self.received = 0
        self.dropped = 0
        self.level = ""
        self.track: Track | None = None
        self.include = ""
        self.exclude = ""
        self.search = ""
        self._prompt = ""  # the prompt open ("include", "exclude", "search"), or ""
        self._filter = LogFilter()
        self._search_re: re.Pattern[str] | None = None
        self._cursor = 0
        self._source: LogFeed | None = None
        self._status_due = False
        self.batches = 0

    @property
    def view(self) -> LogView:
        return self.query_one("#logs-view", LogView)

    @property
    def following(self) -> bool:
        return self.view.following

    @property
    def shown(self) -> int:
        return self.view.entry_count

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("", id="logs-status")
        yield Input(id="logs-input")
        yield LogView(id="logs-view")
        yield self.compose_footer()

    def on_mount(self) -> None:
        self.init_header()
        self.buffer = deque(maxlen=self.bva.settings.log_buffer)
        self.query_one("#logs-input", Input).display = False
        self.view.focus()
        self.set_interval(STATUS_EVERY, self._status_tick)
        self._status()
        self._tail()

    @work(exclusive=True, group="logs-tail")
    async def _tail(self) -> None:
        try:
            platform = await self.bva.platform()
            self.header_live(platform)
            source = self._source = self.bva.log_source(platform)
            self._tell_source()
            async for batch in source.stream():
                # One batch in the screen's queue at a time: keys and frames get their turn
                # between batches, and a flood waits in the source (which sheds), not here.
                taken = asyncio.Event()
                self.post_message(LogBatch(batch, taken))
                await taken.wait()
        except BvaError as exc:
            self._show_status(Text(f"✖ {sanitize_text(str(exc), 150)}", style="bold red"))

    async def on_unmount(self) -> None:
        if self._source is not None:
            await self._source.aclose()

    # -- data -------------------------------------------------------------------------------
    def on_log_batch(self, message: LogBatch) -> None:
        try:
            self._take(message.lines)
        finally:
            message.taken.set()

    def _take(self, lines: list[LineRow] | list[LogLine]) -> None:
        """A batch from the source (rows from the log reader's process, LogLines from one in
        this process): kept in the ring buffer, shown if it passes the filter."""
        batch = _rows(lines)
        self.batches += 1
        self.received += len(batch)
        buffer = self.buffer
        cap = buffer.maxlen or 0
        view = self.view
        if cap and len(batch) > cap:
            # A burst bigger than the whole buffer: only its newest lines could stay.
            self.dropped += len(batch) - cap
            batch = batch[-cap:]
        overflow = max(len(buffer) + len(batch) - cap, 0) if cap else 0
        if overflow:
            self.dropped += overflow
            # The oldest entries leave the buffer, and the view forgets their rows.
            view.drop(list(islice(buffer, overflow)))
        buffer.extend(batch)
        if not self._filter.active:
            view.append(batch)
        else:
            # A source that judges lines itself (in its own process) saves this process the
            # regex; batches it judged by an earlier filter are judged here.
            judged = self._source.matched(batch) if self._source is not None else None
            matches = self._filter.matches_row
            view.append(judged if judged is not None else [x for x in batch if matches(x)])
        self._status_due = True

    def _rebuild(self) -> None:
        matches = self._filter.matches_row
        self.view.reset([row for row in self.buffer if matches(row)])

    def _status_tick(self) -> None:
        if self._status_due:
            self._status()

    def _status(self) -> None:
        self._status_due = False
        parts = [f"{count(self.received)} received", f"{count(self.shown)} shown"]
        source = self._source
        stats = source.stats if source is not None else None
        if stats is not None and stats.dropped:
            parts.append(f"{count(stats.dropped)} skipped (behind)")
        parts.append(f"{count(self.dropped)} out of the buffer")
        if stats is not None:
            parts.append(f"{stats.streams} streams")
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
        # One row, always: no layout needed for new counters.
        self._show_status(text, layout=False)

    def _show_status(self, text: Text, *, layout: bool = True) -> None:
        # A tick or a failing tail can land while the screen is being taken down, its status
        # line already gone: nothing to show then.
        for status in self.query("#logs-status").results(Static):
            status.update(text, layout=layout)

    # -- following --------------------------------------------------------------------------
    @on(LogView.FollowChanged)
    def _follow_changed(self) -> None:
        self._status()

    def action_follow(self) -> None:
        self.view.set_following(True)
        self._status()

    def _pause_at(self, row: int) -> None:
        self.view.scroll_to_row(row)
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
        # Now, not on the next turn as focus() would: keys already queued behind this one
        # go to whatever has focus when the App takes them.
        self.set_focus(box)
        self.refresh_bindings()

    def action_cancel_prompt(self) -> None:
        if self._prompt:
            self._prompt = ""
            self.query_one("#logs-input", Input).display = False
            self.set_focus(self.view)
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While a prompt is open, the keys that open one are text in it; enter and escape
        # are the prompt's only then.
        if action == "prompt":
            return not self._prompt
        if action in ("submit_prompt", "cancel_prompt"):
            return bool(self._prompt)
        return True

    def action_submit_prompt(self) -> None:
        box = self.query_one("#logs-input", Input)
        what = self._prompt
        # Focus leaves the prompt now, so keys typed behind enter are bindings again; the
        # keys before it may still wait in the prompt's queue (one burst), so its value is
        # read once they are in.
        self.action_cancel_prompt()
        box.call_later(self._submitted, what, box)

    def _submitted(self, what: str, box: Input) -> None:
        typed = box.value
        value = typed.strip()
        try:
            if value:
                compile_pattern(value)
        except FilterError as exc:
            self.notify(str(exc), severity="error")
            self.action_prompt(what)
            box.value = typed  # to be mended, not typed again
            return
        if what == "include":
            self.include = value
        elif what == "exclude":
            self.exclude = value
        else:
            self.search = value
        self._apply_filters()
        if what == "search" and value:
            self.action_next_match(1)

    def _apply_filters(self) -> None:
        self._filter = LogFilter.build(
            min_level=self.level or None,
            track=self.track,
            include=self.include or None,
            exclude=self.exclude or None,
        )
        self._search_re = compile_pattern(self.search) if self.search else None
        self.view.search = self._search_re
        self._tell_source()
        self._rebuild()
        self._status()

    def _tell_source(self) -> None:
        if self._source is not None:
            self._source.set_filter(self._filter)

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
        self.view.wrap = not self.view.wrap
        self._rebuild()

    def action_toggle_timestamps(self) -> None:
        view = self.view
        view.timestamps = not view.timestamps
        if view.wrap:
            self._rebuild()  # row lengths changed, so did the wrapping
        else:
            view.restyle()

    def _jump(self, direction: int, hit: Callable[[LineRow], bool]) -> None:
        rows = self.view.head_rows(hit)
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
        self._jump(direction, lambda row: found_in_row(pattern, row))

    def action_next_error(self, direction: int) -> None:
        self._jump(direction, lambda row: level_rank(row[LEVEL]) >= ERROR_RANK)

    def action_save(self) -> None:
        folder = Path(os.environ.get("BVA_LOG_SAVE_DIR", "."))
        path = folder / time.strftime("bva-logs-%Y%m%d-%H%M%S.log", time.gmtime())
        matches = self._filter.matches_row
        kept = [row for row in self.buffer if matches(row)]
        try:
            with open(path, "w", encoding="utf-8") as fh:
                for row in kept:
                    fh.write("\n".join(render_plain(LogLine(*row), timestamps=True)) + "\n")
        except OSError as exc:
            self.notify(f"cannot save: {exc.strerror}", severity="error")
            return
        self.saved_to = path
        self.notify(f"saved {len(kept)} entries to {path}", timeout=5)


def _rows(lines: list[LineRow] | list[LogLine]) -> list[LineRow]:
    if lines and isinstance(lines[0], LogLine):
        return [line_row(line) for line in lines]
    return cast("list[LineRow]", lines)
