"""The Logs screen: snapshots (following, filtered, search hit, hostile input) at 80x24 and
120x36, and every binding pressed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Log

from screens.logs import LogsScreen
from tests.screens.conftest import fake_app
from tests.support.fake_logs import FakeLogSource, canned

SIZES = [(80, 24), (120, 36)]


def app_with(lines: list[Any], buffer: int = 100_000) -> Any:
    app = fake_app("healthy")
    app.settings.log_source = lambda _platform: FakeLogSource(lines)
    app.settings.log_buffer = buffer
    return app


async def open_logs(pilot: Any) -> LogsScreen:
    await pilot.press("4")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        screen = pilot.app.screen
        if isinstance(screen, LogsScreen) and screen.batches > 0:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)
    screen = pilot.app.screen
    assert isinstance(screen, LogsScreen)
    return screen


def shown_text(screen: LogsScreen) -> str:
    return "\n".join(screen.query_one("#logs-view", Log).lines)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", ["following", "filtered", "search", "hostile"])
def test_logs_snapshots(snap_compare: Any, case: str, size: tuple[int, int]) -> None:
    app = app_with(canned(hostile=case == "hostile"))

    async def run_before(pilot: Any) -> None:
        await open_logs(pilot)
        if case == "filtered":
            await pilot.press("l", "l", "l")  # level >= ERROR
        if case == "search":
            await pilot.press("s", *"login", "enter")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_hostile_text_stays_inert() -> None:
    app = app_with(canned(hostile=True))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        text = shown_text(screen)
        assert "\x1b" not in text and "\x9b" not in text and "\x00" not in text
        assert "\\x1b[2J" in text and "[red]not markup[/red]" in text
        assert "[@click=app.quit]" in text
        assert isinstance(app.screen, LogsScreen)  # the click markup did nothing


async def test_level_track_include_exclude_and_clear() -> None:
    app = app_with(canned())
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_logs(pilot)
        total = len(screen._shown)
        await pilot.press("l")  # >= INFO: everything here has a level
        assert len(screen._shown) == total
        await pilot.press("l")  # >= WARN
        assert all(line.level in ("WARN", "ERROR") for _r, line in screen._shown)
        await pilot.press("l", "l")  # back to all
        assert len(screen._shown) == total
        await pilot.press("k")  # stable only
        assert all(line.track == "stable" for _r, line in screen._shown)
        await pilot.press("k")  # canary only
        assert screen._shown and all(line.track == "canary" for _r, line in screen._shown)
        await pilot.press("k")
        await pilot.press("slash", *"tweets", "enter")
        assert screen._shown and all("tweets" in line.message for _r, line in screen._shown)
        await pilot.press("backslash", *"1010", "enter")
        assert all("1010" not in line.message for _r, line in screen._shown)
        await pilot.press("c")
        assert len(screen._shown) == total
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
        line = next(line for r, line in screen._shown if r == row)
        assert line.level == "ERROR"
        await pilot.press("E")
        await pilot.press("f")
        assert screen.following
        log = screen.query_one("#logs-view", Log)
        await pilot.pause(0.1)
        assert log.is_vertical_scroll_end


async def test_wrap_timestamps_and_save(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("BVA_LOG_SAVE_DIR", str(tmp_path))
    app = app_with(canned())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        rows = screen.query_one("#logs-view", Log).line_count
        await pilot.press("w")
        assert screen.query_one("#logs-view", Log).line_count > rows  # long lines wrapped
        await pilot.press("w", "t")
        assert not screen.query_one("#logs-view", Log).lines[0][:2].isdigit()
        await pilot.press("t", "l", "l", "l", "ctrl+o")
        await pilot.pause(0.1)
        saved = list(tmp_path.glob("bva-logs-*.log"))
        assert len(saved) == 1
        text = saved[0].read_text()
        assert "ERROR" in text and "INFO" not in text


async def test_ring_buffer_bounds_memory_and_counts_drops() -> None:
    app = app_with(canned(), buffer=25)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_logs(pilot)
        assert len(screen.buffer) == 25
        assert screen.dropped == 15 and screen.received == 40
        assert len(screen._shown) == 25
