"""The Logs screen: snapshots (following, filtered, search hit, hostile input) at 80x24 and
120x36, and every binding pressed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment
from rich.style import Style
from textual.widgets import Input

from backends.logs.models import SEQ, LineRow, LogLine, line_row
from screens.logs import LogsScreen, count
from tests.screens.conftest import burst, fake_app
from tests.support.fake_logs import FakeLogSource, canned
from tests.support.waiting import pilot_until, wait_until
from widgets.log_view import HEAD

SIZES = [(80, 24), (120, 36)]


def app_with(lines: list[Any], buffer: int = 100_000) -> Any:
    app = fake_app("healthy")
    app.source = FakeLogSource(lines)
    app.settings.log_source = lambda _platform: app.source
    app.settings.log_buffer = buffer
    return app


def status(screen: LogsScreen) -> str:
    return str(screen.query_one("#logs-status").render())


def drawn(screen: LogsScreen) -> bool:
    """Whatever the screen took is drawn (the view's next frame) and told in its status line
    (a tick of its own): the point to look at either, instead of a fixed pause."""
    view, line = screen.view, status(screen)
    return (
        f"{count(screen.received)} received" in line
        and f"{count(screen.shown)} shown" in line
        and ("● following" in line) == screen.following
        and view.virtual_size.height == view.row_count
        and (not screen.following or view.is_vertical_scroll_end)
    )


async def settled(
    pilot: Any,
    screen: LogsScreen,
    ready: Callable[[], bool] = lambda: True,
    what: str = "the Logs screen to draw what it took",
) -> None:
    await pilot_until(
        pilot, lambda: ready() and drawn(screen), 10, what, detail=lambda: status(screen)
    )


async def open_logs(pilot: Any) -> LogsScreen:
    await pilot.press("4")

    def taken() -> LogsScreen | None:
        screen = pilot.app.screen
        return screen if isinstance(screen, LogsScreen) and screen.batches > 0 else None

    screen = await pilot_until(pilot, taken, 10, "the Logs screen to take its first batch")
    await settled(pilot, screen)
    return screen


def shown_text(screen: LogsScreen) -> str:
    """Every row the view holds, as it draws them."""
    view = screen.view
    return "\n".join(view.row_text(row).plain for row in view.rows())


def on_screen(screen: LogsScreen) -> str:
    """What the terminal shows of the view right now."""
    view = screen.view
    return "\n".join(view.render_line(y).text for y in range(view.size.height))


def shown(screen: LogsScreen) -> list[tuple[int, LogLine]]:
    """(row, entry) for every entry the view shows."""
    return [(i, LogLine(*row[0])) for i, row in enumerate(screen.view.rows()) if row[1] == HEAD]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", ["following", "filtered", "search", "hostile"])
def test_logs_snapshots(snap_compare: Any, case: str, size: tuple[int, int]) -> None:
    app = app_with(canned(hostile=case == "hostile"))

    async def run_before(pilot: Any) -> None:
        screen = await open_logs(pilot)
        if case == "filtered":
            await pilot.press("l", "l", "l")  # level >= ERROR
            await settled(pilot, screen, lambda: screen.level == "ERROR")
        if case == "search":
            await pilot.press("s", *"login", "enter")
            await settled(pilot, screen, lambda: screen.search == "login")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_hostile_text_stays_inert() -> None:
    app = app_with(canned(hostile=True))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        for text in (shown_text(screen), on_screen(screen)):
            assert "\x1b" not in text and "\x9b" not in text and "\x00" not in text
            assert "\\x1b[2J" in text and "[red]not markup[/red]" in text
            assert "[@click=app.quit]" in text
        assert isinstance(app.screen, LogsScreen)  # the click markup did nothing


async def test_level_track_include_exclude_and_clear() -> None:
    app = app_with(canned())
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        total = len(shown(screen))
        await pilot.press("l")  # >= INFO: everything here has a level
        assert len(shown(screen)) == total
        await pilot.press("l")  # >= WARN
        assert all(line.level in ("WARN", "ERROR") for _r, line in shown(screen))
        await pilot.press("l", "l")  # back to all
        assert len(shown(screen)) == total
        await pilot.press("k")  # stable only
        assert all(line.track == "stable" for _r, line in shown(screen))
        await pilot.press("k")  # canary only
        assert shown(screen) and all(line.track == "canary" for _r, line in shown(screen))
        await pilot.press("k")
        await pilot.press("slash", *"tweets", "enter")
        assert shown(screen) and all("tweets" in line.message for _r, line in shown(screen))
        await pilot.press("backslash", *"1010", "enter")
        assert all("1010" not in line.message for _r, line in shown(screen))
        await pilot.press("c")
        assert len(shown(screen)) == total
        await pilot.press("slash", *"(unclosed", "enter")  # a bad regex is refused
        assert screen.include == ""
        await pilot.press("escape")
        assert not screen.query_one("#logs-input", Input).display


async def test_search_and_error_jumps_pause_following_and_f_resumes() -> None:
    app = app_with(canned() * 3)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        assert screen.following
        await pilot.press("s", *"login", "enter")
        assert not screen.following
        first = screen._cursor
        await pilot.press("n")
        assert screen._cursor > first
        await pilot.press("N")
        assert screen._cursor == first
        await pilot.press("e")
        row = screen._cursor
        line = next(line for r, line in shown(screen) if r == row)
        assert line.level == "ERROR"
        await pilot.press("E")
        await pilot.press("f")
        assert screen.following
        await pilot_until(pilot, lambda: screen.view.is_vertical_scroll_end, 10, "the end")


async def test_a_prompt_typed_in_one_burst_gets_every_key() -> None:
    """`/GET\\s` and enter sent in one write (a paste, keys over a slow link): the keys behind
    the slash are text in the prompt it opened (E would jump to the previous error, s open
    search), and the keys behind enter are bindings again."""
    app = app_with(canned())
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        burst(app, "/GET\\s", "enter", "l")
        # l, the last key, was taken: every key before it was too
        await pilot_until(pilot, lambda: screen.level == "INFO", 10, "l to cycle the level")
        assert screen.include == "GET\\s" and screen.following
        assert screen.level == "INFO", "l after enter cycles the level"
        assert screen.focused is screen.view
        assert shown(screen) and all("GET " in line.message for _r, line in shown(screen))


async def test_wrap_timestamps_and_save(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("BVA_LOG_SAVE_DIR", str(tmp_path))
    app = app_with(canned())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        rows = screen.view.row_count
        assert on_screen(screen).splitlines()[0][:2].isdigit()
        await pilot.press("w")
        assert screen.view.row_count > rows  # long lines wrapped
        await pilot.press("w", "t")
        await settled(pilot, screen, lambda: screen.view.row_count == rows)
        assert not on_screen(screen).splitlines()[0][:2].isdigit()
        await pilot.press("t", "l", "l", "l", "ctrl+o")
        saved = wait_until(lambda: list(tmp_path.glob("bva-logs-*.log")), 10, "the saved file")
        assert len(saved) == 1
        text = saved[0].read_text()
        assert "ERROR" in text and "INFO" not in text


async def test_ring_buffer_bounds_memory_and_counts_drops() -> None:
    app = app_with(canned(), buffer=25)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        assert len(screen.buffer) == 25
        assert screen.dropped == 15 and screen.received == 40
        assert len(shown(screen)) == 25


async def test_following_keeps_up_and_scrolling_up_pauses_in_place() -> None:
    app = app_with(canned() * 2, buffer=100)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        view = screen.view
        assert screen.following and view.is_vertical_scroll_end
        app.source.push(canned())
        await settled(pilot, screen, lambda: screen.received == 120)
        assert view.is_vertical_scroll_end
        await pilot.press("up")  # the reader looks back: following stops
        await settled(pilot, screen, lambda: not screen.following)
        assert "paused" in status(screen)
        top = on_screen(screen).splitlines()[0]
        # New lines push the oldest out of the ring buffer; the text being read stays put.
        app.source.push(canned()[:10])
        await settled(pilot, screen, lambda: screen.received == 130)
        assert screen.dropped == 30 and len(screen.buffer) == 100
        assert on_screen(screen).splitlines()[0] == top
        assert not view.is_vertical_scroll_end
        await pilot.press("end")
        await settled(pilot, screen, lambda: screen.following)
        assert view.is_vertical_scroll_end
        app.source.push(canned()[:5])
        await settled(pilot, screen, lambda: screen.received == 135)
        assert view.is_vertical_scroll_end
        assert screen.view.rows()[-1][0] is screen.buffer[-1]


async def test_the_scrollbar_is_told_only_when_its_thumb_moves() -> None:
    """A tail moves the view a few rows in thousands each frame: the view tells the
    scrollbar only when its thumb would move by an eighth of a cell (its finest step), and
    tells it everything once it does or following stops. (A layout of the screen tells it
    too: not here, where nothing awaits between the rows and the check.)"""
    lines = canned()
    app = app_with([replace(lines[i % 40], seq=i, extra=()) for i in range(4000)])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        view = screen.view
        bar = view.vertical_scrollbar
        await pilot_until(
            pilot, lambda: bar.window_virtual_size == view.row_count, 10, "the bar told the size"
        )
        assert bar.window_virtual_size == view.row_count == 4000

        def more(n: int, seq: int) -> None:
            view.append([line_row(replace(lines[0], seq=seq + i, extra=())) for i in range(n)])
            view.flush()  # the frame tick: size, then following to the end

        # An eighth of the thumb's cell is 4000 / (20 rows * 8), 25 rows, here.
        more(3, 5000)
        assert view.row_count == 4003 and view.is_vertical_scroll_end
        assert bar.window_virtual_size == 4000, "a move too small to draw is not told"
        more(200, 6000)
        assert bar.window_virtual_size == 4000, "following, a 1-cell thumb stays at the end"
        view.scroll_to_row(2000)  # the reader looks back: told all at once
        assert bar.window_virtual_size == view.row_count == 4203
        assert bar.position == view.scroll_y == 1998


async def test_status_says_what_the_source_skipped_to_keep_up() -> None:
    app = app_with(canned())
    app.source.stats.dropped = 123_456
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)  # settled: the status tells what it took
        assert "123.5k skipped (behind)" in status(screen) and "40 received" in status(screen)


async def test_rows_drawn_directly_match_their_text_and_keep_their_colours() -> None:
    """The fast row drawing gives exactly the styled text's cells, and a row's own colours
    (pod, level) sit on top of the pane's, not under them."""
    notice = replace(canned()[0], raw_format="bva", level="WARN", message="pod left")
    app = app_with([*canned(hostile=True), notice])
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        view = screen.view
        base = view.rich_style

        def cells(segments: list[Segment]) -> list[tuple[str, Style | None]]:
            return [(ch, seg.style) for seg in segments for ch in seg.text]

        for timestamps in (True, False):
            view.timestamps = timestamps
            for row in view.rows():
                text = view.row_text(row)
                text.style = base
                expected = cells(list(text.render(app.console)))
                assert cells(view._segments(row[0], row[1], base)) == expected, row

        view.timestamps = True
        view.restyle()
        await settled(pilot, screen)
        lines = [view.render_line(y) for y in range(view.size.height)]
        levels = {seg.text.strip(): seg.style for strip in lines for seg in strip}
        error, warn = levels["ERROR"], levels["WARN"]
        assert error is not None and error.color is not None and error.color.name == "red"
        assert warn is not None and warn.color is not None and warn.color.name == "yellow"
        pods = {
            seg.style.color.name
            for strip in lines
            for seg in strip
            if seg.style is not None and seg.style.color is not None and "service/" in seg.text
        }
        assert len(pods) > 1, "pods keep their own colours"


async def test_finished_lines_are_what_textuals_styles_cache_would_draw() -> None:
    """The view finishes its rows itself (padding under the scrollbar, the app's colour
    filters) and keeps them by entry; the frame is cell for cell what Textual's own path
    draws: following, scrolled sideways, with search marks, wrapped, and in a box."""
    long = replace(canned()[3], message="x" * 300 + " tail")
    app = app_with([*canned(hostile=True), long])
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        view = screen.view

        def cells(strips: list[Any]) -> list[list[tuple[str, Style | None]]]:
            return [[(ch, seg.style) for seg in strip for ch in seg.text] for strip in strips]

        def both() -> tuple[Any, Any]:
            region = view.size.region
            mine = view.render_lines(region)
            finish, view._finish = view._finish, lambda: None  # type: ignore[method-assign]
            try:
                view._styles_cache.clear()
                textuals = view.render_lines(region)
            finally:
                view._finish = finish  # type: ignore[method-assign]
            return cells(mine), cells(textuals)

        async def same(ready: Callable[[], bool], what: str) -> None:
            await settled(pilot, screen, ready, what)
            mine, textuals = both()
            assert mine == textuals
            assert any(row[0][0] != " " for row in mine), "the frame shows rows"

        await same(lambda: True, "the first frame")
        view.scroll_to(x=40, animate=False, immediate=True)
        await same(lambda: view.scroll_x == 40, "the scroll sideways")
        await pilot.press("s", *"GET", "enter")
        await same(lambda: screen.search == "GET", "the search")
        await pilot.press("f", "w")
        await same(lambda: screen.following and view.wrap, "following, wrapped")
        unboxed = view.size
        view.styles.border = ("round", "green")
        await same(lambda: view.size != unboxed, "the box laid out")
        assert view._finish() is None, "a box is left to Textual"


async def test_a_source_that_judges_lines_is_told_the_filter_and_trusted() -> None:
    """A source that runs the filter itself (the log reader's process) is told every change,
    and its verdicts are what the view shows; without a verdict the screen judges."""

    class Judging(FakeLogSource):
        def __init__(self, lines: list[LogLine]) -> None:
            super().__init__(lines)
            self.filters: list[Any] = []
            self.verdicts = True

        def set_filter(self, f: Any) -> None:
            self.filters.append(f)

        def matched(self, batch: list[LineRow]) -> list[LineRow] | None:
            # A verdict the screen could not reach itself: only even seqs, when filtered.
            return [x for x in batch if x[SEQ] % 2 == 0] if self.verdicts else None

    app = app_with([])
    app.source = source = Judging([])
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        assert len(source.filters) == 1 and not source.filters[0].active
        await pilot.press("slash", *"GET", "enter")
        assert source.filters[-1].include.pattern == "GET"
        source.push(canned())
        await settled(pilot, screen, lambda: screen.received == 40)
        seqs = [line.seq for _, line in shown(screen)]
        assert seqs and all(s % 2 == 0 for s in seqs)
        source.verdicts = False  # e.g. judged by a filter since replaced
        source.push(canned())
        await settled(pilot, screen, lambda: screen.received == 80)
        later = [line for _, line in shown(screen)][len(seqs) :]
        assert later and any(x.seq % 2 for x in later), "no verdict: the screen judges"
        assert all("GET" in x.message for x in later)
        await pilot.press("c")
        assert not source.filters[-1].active
