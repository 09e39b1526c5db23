"""Every binding of the Health screen and of the app, pressed, with its effect checked."""

from __future__ import annotations

import time
from typing import Any

from textual.widgets import DataTable, Input, TabbedContent

from screens.health import HealthScreen
from screens.help import HelpScreen
from tests.screens.conftest import burst, fake_app, until


async def settle(pilot: Any, rounds: int = 6) -> None:
    for _ in range(rounds):
        await pilot.pause(0.05)


def services(screen: HealthScreen) -> list[str]:
    table = screen.query_one("#services", DataTable)
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


async def test_rows_and_detail_follow_the_cursor() -> None:
    app = fake_app("rollout_failing")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        assert services(screen) == [
            "discovery-service",
            "auth-service",
            "user-service",
            "tweet-service",
            "gateway-service",
        ]
        await pilot.press("down", "down", "down")
        await settle(pilot)
        pods = screen.query_one("#pods-table", DataTable)
        names = [
            str(pods.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(pods.row_count)
        ]
        assert any(n.startswith("tweet-service-5c4b") for n in names)
        title = str(screen.query_one("#detail-title").render())
        assert "exceeded its progress deadline" in title


async def test_filter_slash_enter_escape() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"auth")
        await settle(pilot, 2)
        assert services(screen) == ["auth-service"]
        await pilot.press("enter")
        assert screen.query_one("#services", DataTable).has_focus
        assert services(screen) == ["auth-service"]
        await pilot.press("escape")
        await settle(pilot, 2)
        assert len(services(screen)) == 5
        assert not box.display


async def test_filter_typed_in_one_burst_lands_in_the_box() -> None:
    """`/user` and enter sent in one write (a paste, keys over a slow link): every letter is
    in the filter, none taken as a binding (s sorts, r refreshes, e opens events)."""
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        sort = screen._sort
        burst(app, "/user", "enter", "s")
        await until(pilot, lambda: screen._sort != sort)  # s, the last key, was taken
        await settle(pilot, 2)
        assert screen.query_one("#filter", Input).value == "user"
        assert services(screen) == ["user-service"]
        assert screen._sort != sort, "s after enter sorts"
        assert screen.query_one("#services", DataTable).has_focus
        burst(app, "/", "/")
        await until(pilot, lambda: screen.query_one("#filter", Input).value == "/")
        # The box selects its text when focused, so the second / replaces it, as text.
        assert screen.query_one("#filter", Input).value == "/"


async def test_sort_cycles_and_reverses() -> None:
    app = fake_app("one_down")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        await pilot.press("s")  # by name
        assert services(screen)[0] == "auth-service"
        assert services(screen)[-1] == "user-service"
        await pilot.press("s")  # by health: the DOWN one first
        assert services(screen)[0] == "auth-service"
        await pilot.press("s")  # by latency: slowest first
        assert services(screen)[0] == "auth-service"
        await pilot.press("S")
        assert services(screen)[-1] == "auth-service"


async def test_refresh_probes_now() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        platform = await app.platform()
        before = platform.health.sweeps  # type: ignore[attr-defined]
        await pilot.press("r")
        await settle(pilot, 3)
        assert platform.health.sweeps == before + 1  # type: ignore[attr-defined]


async def test_enter_maximises_detail_and_tabs_switch() -> None:
    app = fake_app("one_down")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("enter")
        assert screen.query_one("#detail").has_class("-maximized")
        assert not screen.query_one("#services").display
        await pilot.press("enter")
        assert screen.query_one("#services").display
        tabs = screen.query_one("#detail-tabs", TabbedContent)
        await pilot.press("c")
        assert tabs.active == "components"
        await pilot.press("e")
        assert tabs.active == "events"
        await pilot.press("p")
        assert tabs.active == "pods"


async def test_components_show_down_details() -> None:
    app = fake_app("one_down")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("down", "c")
        await settle(pilot, 2)
        comps = app.screen.query_one("#components-table", DataTable)
        rows = [" ".join(str(c) for c in comps.get_row_at(i)) for i in range(comps.row_count)]
        assert any("db" in r and "DOWN" in r and "HikariPool" in r for r in rows)


async def test_help_lists_every_key_and_closes() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot, 2)
        assert isinstance(app.screen, HelpScreen)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        text = " ".join(f"{k} {d}" for _t, rows in help_screen.sections for k, d in rows)
        for key in ("/", "s", "S", "r", "enter", "p", "c", "e", "q", "?", "ctrl+p"):
            assert key in text
        for word in ("Filter", "Sort", "Refresh", "Detail", "Quit", "Help"):
            assert word in text
        await pilot.press("escape")
        assert isinstance(app.screen, HealthScreen)


async def test_probes_pause_while_screen_hidden() -> None:
    app = fake_app("healthy", poll=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        platform = await app.platform()
        await pilot.press("question_mark")
        await settle(pilot, 2)
        hidden_from = platform.health.sweeps  # type: ignore[attr-defined]
        await pilot.pause(0.6)
        assert platform.health.sweeps == hidden_from  # type: ignore[attr-defined]
        await pilot.press("escape")
        deadline = time.monotonic() + 5
        while platform.health.sweeps <= hidden_from + 1 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            await pilot.pause(0.05)
        assert platform.health.sweeps > hidden_from + 1  # type: ignore[attr-defined]


async def test_command_palette_and_quit() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        await settle(pilot, 2)
        from textual.command import CommandPalette

        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await settle(pilot, 2)
        assert isinstance(app.screen, HealthScreen)
        await pilot.press("2")
        await settle(pilot, 2)
        from screens.rollout import RolloutScreen

        assert isinstance(app.screen, RolloutScreen)
        await pilot.press("1")
        assert isinstance(app.screen, HealthScreen)
        await pilot.press("q")
        await settle(pilot, 2)
    assert app.return_code in (0, None)


async def test_read_only_and_production_are_in_the_header() -> None:
    app = fake_app("read_only")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        header = str(app.screen.query_one("AppHeader").render())
        assert "READ-ONLY" in header and "PRODUCTION" in header
