"""A virtual log pane: rows are references to the screen's kept entries (LineRow tuples), and
only the rows on screen are ever turned into text.

A Textual ``Log`` keeps a string per line and measures each one as it is written; at tens
of thousands of lines a second that alone takes a core. Here appending is a list extend
(one row per entry and per continuation line), dropping the oldest rows is an index move,
and a frame renders the thirty-odd visible rows, each styled from the entry's fields (time,
pod colour, canary marker, level, message, search hits) rather than re-parsed from text.
Nothing from a log is read as markup: text goes into ``rich.text.Text`` as plain strings.

Over 500 lines on purpose: the row store, scrolling, search hits and row rendering share the
one row index that makes the pane virtual.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Iterable
from math import ceil
from operator import itemgetter
from typing import NamedTuple

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.color import Color
from textual.filter import LineFilter
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.style import Style as TextualStyle

from backends.logs.models import EXTRA, MESSAGE, LineRow, LogLine

POD_COLOURS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
)
LEVEL_STYLE = {
    "FATAL": "bold reverse red",
    "ERROR": "bold red",
    "WARN": "yellow",
    "INFO": "green",
    "DEBUG": "dim",
    "TRACE": "dim",
}
# A row: the entry (as the screen keeps it, a LineRow), which of its lines (-1 the head, i
# its extra[i]), and with wrap on, which slice of that line.
Row = tuple[LineRow, int, int]
HEAD = -1
_MESSAGE = itemgetter(MESSAGE)
CONTINUATION = "    ↳ "
WRAP_INDENT = "      "
# Frames a second while lines arrive: enough to look live, few enough to leave the CPU to
# the lines themselves.
FPS = 20
# Rows dropped from the front are removed from the list once this many pile up: often, so
# that each removal (which frees the entries too) is a short pause, not one long one.
_COMPACT_AT = 4096
_NO_SPACING = Spacing(0, 0, 0, 0)


class _Frame(NamedTuple):
    x: int
    y: int
    width: int
    style: Style
    finish: _Finish | None  # None: Textual's styles cache finishes the rows


class _Finish(NamedTuple):
    """What turns a row into the line the compositor takes, for a pane with no border,
    padding, outline, tint or opacity: pad it under the scrollbar, run the app's filters."""

    width: int
    pad: Style
    filters: tuple[LineFilter, ...]
    background: Color


class _Strips:
    """Strips by row number; past ``size`` the least recently used goes. A dict keeps that
    order without links: Textual's LRUCache is a ring of lists, so every ``clear()`` leaves
    its strips to the cyclic collector, which in a tail let them pile up by the hundred
    thousand between full collections."""

    __slots__ = ("_size", "_strips")

    def __init__(self, size: int) -> None:
        self._size = size
        self._strips: dict[int, Strip] = {}

    def get(self, key: int) -> Strip | None:
        strip = self._strips.pop(key, None)
        if strip is not None:
            self._strips[key] = strip
        return strip

    def put(self, key: int, strip: Strip) -> None:
        strips = self._strips
        strips[key] = strip
        if len(strips) > self._size:
            del strips[next(iter(strips))]

    def clear(self) -> None:
        self._strips.clear()


def pod_colour(pod: str) -> str:
    return POD_COLOURS[zlib.crc32(pod.encode()) % len(POD_COLOURS)]


def pod_label(line: LogLine) -> str:
    suffix = line.pod.rsplit("-", 1)[-1] if line.pod.startswith(line.service) else line.pod
    return f"{line.service}/{suffix}" if line.service else line.pod


def clock_text(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def row_parts(line: LogLine, part: int, *, timestamps: bool) -> list[tuple[str, str]]:
    """A row's pieces, each with its Rich style name ("" for the pane's own): the one layout
    that the drawn row, its ``Text`` and its plain text are all made from. ``part`` is HEAD
    or the index of a continuation line."""
    if part != HEAD:
        return [(CONTINUATION, "dim"), (line.extra[part], "")]
    parts = [(clock_text(line.ts) + " ", "dim")] if timestamps else []
    parts.append((pod_label(line), pod_colour(line.pod)))
    parts.append((" ", ""))
    if line.track == "canary":
        parts.append(("[canary] ", "bold magenta"))
    level = line.level or "  ·  "
    parts.append((level.ljust(5), LEVEL_STYLE.get(level, "")))
    parts.append((" ", ""))
    parts.append((line.message, "italic" if line.is_notice else ""))
    return parts


def render_plain(line: LogLine, *, timestamps: bool) -> list[str]:
    """One entry as display lines, the head then its continuation lines indented (what a save
    writes and what wrapping measures)."""
    return [
        "".join(text for text, _style in row_parts(line, part, timestamps=timestamps))
        for part in range(HEAD, len(line.extra))
    ]


class LogView(ScrollView, can_focus=True):
    """Rows of log entries, newest at the bottom, following unless the reader scrolls up."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        overflow-x: auto;
    }
    """

    class FollowChanged(Message):
        """The reader scrolled away from the end (following stops) or back to it."""

        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[Row] = []
        self._start = 0  # rows before this index were dropped
        self._base = 0  # rows removed from the list's front: row numbers stay unique
        self._entries = 0
        self._width = 0
        self.following = True
        self.timestamps = True
        self.wrap = False
        self.search: re.Pattern[str] | None = None
        self._cache = _Strips(1024)  # rows drawn for Textual's styles cache, by row number
        self._finished = _Strips(1024)  # rows finished here for the compositor
        # What the kept strips were drawn for: (width, scroll x, style, finish).
        self._cache_for: tuple[int, int, Style, _Finish | None] | None = None
        self._frame: _Frame | None = None
        self._styled: dict[str, Style] = {}  # span style name -> the widget's style + it
        self._dirty = False
        self._thumb: tuple[int, int, int, int] | None = None  # see _thumb_moved

    # -- content ---------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._rows) - self._start

    @property
    def entry_count(self) -> int:
        return self._entries

    def rows(self) -> list[Row]:
        return self._rows[self._start :]

    def append(self, lines: Iterable[LineRow]) -> None:
        lines = list(lines)
        if not lines:
            return
        rows = self._rows
        if self.wrap:
            for line in lines:
                rows += self._wrapped(line)
        else:
            for line in lines:
                rows.append((line, HEAD, 0))
                if line[EXTRA]:
                    rows += [(line, i, 0) for i in range(len(line[EXTRA]))]
        self._entries += len(lines)
        # Wide enough for the longest message and the columns before it (a guess: exact
        # cell widths would mean rendering every row).
        widest = max(map(len, map(_MESSAGE, lines))) + 48
        self._width = max(self._width, widest)
        self._resize()

    def drop(self, gone: Iterable[LineRow]) -> None:
        """Forget the rows of entries that left the buffer (the oldest ones, so the rows at
        the front). The rows on screen stay where they are unless they are the ones going."""
        ids = {id(line) for line in gone}
        rows, start = self._rows, self._start
        end = len(rows)
        seen: set[int] = set()
        while start < end and id(rows[start][0]) in ids:
            seen.add(id(rows[start][0]))
            start += 1
        removed = start - self._start
        if not removed:
            return
        self._start = start
        self._entries -= len(seen)
        if start >= _COMPACT_AT:
            del rows[:start]
            self._start = 0
            self._base += start
        if not self.following:
            # Keep the reader's place: the text under their eyes moves up by what left.
            self._set_size()
            self.scroll_to(y=max(self.scroll_y - removed, 0), animate=False, immediate=True)
        self._resize()

    def reset(self, lines: Iterable[LineRow]) -> None:
        """Show exactly ``lines`` (after a filter or a display setting changed)."""
        self._rows = []
        self._start = self._base = 0
        self._entries = 0
        self._width = 0
        self._forget_strips()
        self.append(lines)
        self.flush()

    def restyle(self) -> None:
        """Timestamps or the search changed: same rows, drawn anew."""
        self._forget_strips()
        self.refresh()

    def _wrapped(self, line: LineRow) -> list[Row]:
        width = max(self.scrollable_content_region.width - 1, 20)
        out: list[Row] = []
        texts = render_plain(LogLine(*line), timestamps=self.timestamps)
        for part, text in enumerate(texts, start=HEAD):
            segments = len(_wrap(text, width))
            out += [(line, part, seg) for seg in range(segments)]
        return out

    def _resize(self) -> None:
        # Drawn on the next tick, not now: a busy stream appends many batches a second, and
        # a frame per batch would cost more than the lines themselves.
        self._dirty = True

    def _tick(self) -> None:
        if self._dirty:
            self._dirty = False
            self._set_size()
            self.refresh()
        if self.following and self.scroll_y < self.max_scroll_y:
            # Also after the size change above has been laid out, which is not at once.
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def _set_size(self) -> None:
        size = Size(0 if self.wrap else self._width, self.row_count)
        old = self.virtual_size
        if size == old:
            return
        if size.width != old.width or not self.is_mounted:
            self.virtual_size = size
            return
        # Only the row count changed, as it does on every frame of a tail: a reactive
        # ``virtual_size`` would lay out the whole screen each time. The vertical scrollbar
        # is always shown (overflow-y: scroll), so telling it the new length is enough.
        self.set_reactive(LogView.virtual_size, size)
        self._tell_bar()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # ScrollView's, except that the scrollbar is told only when its thumb moves. A tail
        # moves the view a few rows in 100,000 every frame: redrawing the bar for that cost
        # a frame's worth of strips each time, short-lived enough to die as old garbage.
        if self.show_vertical_scrollbar:
            self._tell_bar()
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)

    def _tell_bar(self) -> None:
        if self._thumb_moved():
            bar = self.vertical_scrollbar
            bar.window_virtual_size = self.virtual_size.height
            bar.position = self._bar_position()

    def _bar_position(self) -> float:
        # Following, the view is at the end or about to be (the size changes first).
        if self.following:
            return float(max(self.virtual_size.height - self.scrollable_content_region.height, 0))
        return self.scroll_y

    def _thumb_moved(self) -> bool:
        """Whether the vertical scrollbar would draw its thumb elsewhere than it last did:
        its start and end in eighths of a cell (the finest step it draws), by the formula
        of Textual's ScrollBarRender."""
        window = self.scrollable_content_region.height
        virtual = self.virtual_size.height
        thumb = (window, virtual, 0, 0)
        if window and virtual > window:
            size = max(1.0, window / (virtual / window))
            start = int((window - size) * (self._bar_position() / (virtual - window)) * 8)
            thumb = (window, 0, start, start + ceil(size * 8))
        if thumb == self._thumb:
            return False
        self._thumb = thumb
        return True

    def on_mount(self) -> None:
        self.set_interval(1 / FPS, self._tick)

    def flush(self) -> None:
        """Apply pending changes now (a key that moves the view needs them)."""
        self._tick()

    # -- following -------------------------------------------------------------------------

    def set_following(self, following: bool) -> None:
        self.flush()
        if following == self.following:
            return
        self.following = following
        self._thumb = None  # the bar is told everything on its next check
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.post_message(self.FollowChanged(following))

    def scroll_to_row(self, row: int) -> None:
        """Stop following and put ``row`` near the top of the view."""
        self.set_following(False)
        self.scroll_to(y=max(row - 2, 0), animate=False, immediate=True)

    def _user_scrolled_up(self) -> None:
        if self.following and self.max_scroll_y > 0:
            self.set_following(False)

    def action_scroll_up(self) -> None:
        self._user_scrolled_up()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._user_scrolled_up()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._user_scrolled_up()
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.set_following(True)
        super().action_scroll_end()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._user_scrolled_up()
        super()._on_mouse_scroll_up(event)

    # -- drawing ---------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # What every row of a frame shares, looked up once a frame: the DOM walks behind
        # ``rich_style`` and the content region cost more than drawing a row.
        self._frame = frame = self._new_frame()
        self._valid_for(frame)
        try:
            if frame.finish is None:
                return super().render_lines(crop)
            # Textual's styles cache keeps lines by screen row, and a tail scrolls every
            # row every frame, so it would finish each visible row anew (several strips
            # each, most of a frame's time). Finished rows are kept by entry here instead.
            kept = [self._finished_line(frame, frame.finish, y) for y in crop.line_range]
            # The compositor's strip.divide() caches a full-width strip inside itself, a
            # cycle: a kept strip would outlive two collections and wait in the oldest
            # generation for a full one. It gets a copy, which dies young.
            strips = [Strip(list(strip), strip.cell_length) for strip in kept]
            x1, x2 = crop.column_span
            if (x1, x2) != (0, frame.finish.width):
                strips = [strip.crop(x1, x2) for strip in strips]
            return strips
        finally:
            self._frame = None

    def _new_frame(self) -> _Frame:
        scroll_x, scroll_y = self.scroll_offset
        return _Frame(
            scroll_x,
            scroll_y,
            self.scrollable_content_region.width,
            self.rich_style,
            self._finish(),
        )

    def _finish(self) -> _Finish | None:
        """How to finish rows here, or None when the pane has a box (border, padding,
        outline, hatch, tint, opacity, a title) that only Textual's styles cache draws."""
        styles = self.styles
        if (
            styles.gutter != _NO_SPACING
            or any(edge for edge, _colour in styles.outline)
            or styles.tint.a
            or self.opacity != 1.0
            or styles.text_opacity != 1.0
            or (styles.has_rule("hatch") and styles.hatch != "none")
            or self._border_title is not None
            or self._border_subtitle is not None
        ):
            return None
        base, background = self.background_colors
        pad = TextualStyle(background=base + background).rich_style
        filters = tuple(self.get_line_filters())
        return _Finish(self.region.width, pad, filters, background)

    def _valid_for(self, frame: _Frame) -> None:
        drawn_for = (frame.width, frame.x, frame.style, frame.finish)
        if drawn_for != self._cache_for:
            self._forget_strips()
            self._cache_for = drawn_for

    def _forget_strips(self) -> None:
        self._cache.clear()
        self._finished.clear()

    def _finished_line(self, frame: _Frame, finish: _Finish, y: int) -> Strip:
        """Row ``y`` as the styles cache would finish it: padded to the pane's width (the
        scrollbar's column, drawn over) and passed through the app's line filters. Only the
        finished strip is kept: the drawn row is a step towards it."""
        index = self._start + frame.y + y
        key = self._base + index if index < len(self._rows) else -1  # -1: the blank row
        strip = self._finished.get(key)
        if strip is None:
            row = self._draw(frame, index)
            segments = list(row)
            if finish.width > row.cell_length:
                segments.append(Segment(" " * (finish.width - row.cell_length), finish.pad))
            for line_filter in finish.filters:
                segments = line_filter.apply(segments, finish.background)
            strip = Strip(segments, max(finish.width, row.cell_length))
            self._finished.put(key, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        """Row ``y`` drawn, for Textual's styles cache (a pane with a box) and for tests."""
        frame = self._frame
        if frame is None:  # called on its own, not from render_lines
            frame = self._new_frame()
            self._valid_for(frame)
        index = self._start + frame.y + y
        if index >= len(self._rows):
            return self._draw(frame, index)
        key = self._base + index
        strip = self._cache.get(key)
        if strip is None:
            strip = self._draw(frame, index)
            self._cache.put(key, strip)
        return strip

    def _draw(self, frame: _Frame, index: int) -> Strip:
        """Row ``index`` of the list at the pane's width, scrolled sideways as the frame is
        (a blank row past the end)."""
        width, style = frame.width, frame.style
        if index >= len(self._rows):
            return Strip.blank(width, style)
        line, part, seg = self._rows[index]
        if self.wrap or self.search is not None:
            text = self.row_text((line, part, seg))
            if self.wrap:
                text = _slice(text, seg, max(width - 1, 20))
            # The widget's colours go under the row's own (pod, level), not over them.
            text.style = style
            segments = list(text.render(self.app.console))
        else:
            segments = self._segments(line, part, style)
        if frame.x:
            whole = Strip(segments, Segment.get_line_length(segments))
            return whole.crop_extend(frame.x, frame.x + width, style)
        # One strip at the final width: Textual strips are costly to make.
        return Strip(Segment.adjust_line_length(segments, width, style), width)

    def _segments(self, line: LineRow, part: int, base: Style) -> list[Segment]:
        """``row_text`` as segments, made directly: a tail draws every new row once, and
        this is several times cheaper than laying out a ``Text`` (same result, tested)."""
        styled = self._styled
        if styled.get("") is not base:
            styled.clear()
            styled[""] = base

        def on(name: str) -> Style:
            found = styled.get(name)
            if found is None:
                found = styled[name] = base + Style.parse(name)
            return found

        parts = row_parts(LogLine(*line), part, timestamps=self.timestamps)
        return [Segment(text, on(name)) for text, name in parts]

    def row_text(self, row: Row) -> Text:
        """A row's whole text, styled (before wrapping and cropping)."""
        line, part, _seg = row
        text = Text(no_wrap=True)
        for piece, name in row_parts(LogLine(*line), part, timestamps=self.timestamps):
            text.append(piece, style=name)
        self._mark(text)
        return text

    def _mark(self, text: Text) -> None:
        if self.search is None:
            return
        for hit in self.search.finditer(text.plain):
            if hit.end() > hit.start():
                text.stylize("reverse", hit.start(), hit.end())

    # -- finding ---------------------------------------------------------------------------

    def head_rows(self, hit: Callable[[LineRow], bool]) -> list[int]:
        """Row numbers (from the top of what is kept) of the heads of entries ``hit``
        accepts."""
        start = self._start
        return [
            i - start
            for i in range(start, len(self._rows))
            if self._rows[i][1] == HEAD and self._rows[i][2] == 0 and hit(self._rows[i][0])
        ]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_strips()


def _wrap(text: str, width: int) -> list[str]:
    if cell_len(text) <= width:
        return [text]
    first, *rest = chop_cells(text, width)
    if not rest:
        return [first]
    tail = "".join(rest)
    return [first] + [WRAP_INDENT + x for x in chop_cells(tail, width - len(WRAP_INDENT))]


def _slice(text: Text, seg: int, width: int) -> Text:
    """The ``seg``-th wrapped piece of ``text``, styles kept."""
    plain = text.plain
    pieces = _wrap(plain, width)
    if seg >= len(pieces):
        return Text("")
    if seg == 0:
        return text[: len(pieces[0])]
    start = len(pieces[0]) + sum(len(p) - len(WRAP_INDENT) for p in pieces[1:seg])
    end = start + len(pieces[seg]) - len(WRAP_INDENT)
    out = Text(WRAP_INDENT, no_wrap=True)
    out.append_text(text[start:end])
    return out


__all__ = [
    "LEVEL_STYLE",
    "POD_COLOURS",
    "LogView",
    "Row",
    "pod_colour",
    "pod_label",
    "render_plain",
    "row_parts",
]
