"""Every binding of the Health screen and of the app, pressed, with its effect checked."""

from __future__ import annotations

from textual.widgets import DataTable, Input, TabbedContent

from screens.health import HealthScreen
from screens.help import HelpScreen
from tests.screens.conftest import burst, fake_app, health_settled, notifications
from tests.support.fake_platform import clock
from tests.support.waiting import pilot_until


def services(screen: HealthScreen) -> list[str]:
    table = screen.query_one("#services", DataTable)
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


def pod_names(screen: HealthScreen) -> list[str]:
    pods = screen.query_one("#pods-table", DataTable)
    return [str(pods.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(pods.row_count)]


async def test_rows_and_detail_follow_the_cursor() -> None:
    app = fake_app("rollout_failing")
    async with app.run_test(size=(120, 36)) as pilot:
        await health_settled(pilot)
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
        await pilot_until(
            pilot,
            lambda: any(n.startswith("tweet-service-5c4b") for n in pod_names(screen)),
            10,
            "tweet-service's pods in the detail",
            detail=lambda: f"pods: {pod_names(screen)}",
        )
        title = str(screen.query_one("#detail-title").render())
        assert "exceeded its progress deadline" in title


async def test_filter_slash_enter_escape() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await health_settled(pilot)
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"auth")
        await pilot_until(pilot, lambda: services(screen) == ["auth-service"], 10, "the filter")
        await pilot.press("enter")
        assert screen.query_one("#services", DataTable).has_focus
        assert services(screen) == ["auth-service"]
        await pilot.press("escape")
        await pilot_until(pilot, lambda: len(services(screen)) == 5, 10, "all five rows back")
        assert not box.display


async def test_filter_typed_in_one_burst_lands_in_the_box() -> None:
    """`/user` and enter sent in one write (a paste, keys over a slow link): every letter is
    in the filter, none taken as a binding (s sorts, r refreshes, e opens events)."""
    app = fake_app("healthy")
    said = notifications(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await health_settled(pilot)
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        burst(app, "/user", "enter", "s")
        # s, the last key, was taken (after enter it sorts): every key before it was too
        await pilot_until(
            pilot, lambda: any(m.startswith("sorted by") for m in said), 10, "s to sort"
        )
        assert screen.query_one("#filter", Input).value == "user"
        await pilot_until(pilot, lambda: services(screen) == ["user-service"], 10, "the filter")
        assert screen.query_one("#services", DataTable).has_focus
        burst(app, "/", "/")
        await pilot_until(
            pilot, lambda: screen.query_one("#filter", Input).value == "/", 10, "/ as text"
        )
        # The box selects its text when focused, so the second / replaces it, as text.
        assert screen.query_one("#filter", Input).value == "/"


async def test_sort_cycles_and_reverses() -> None:
    app = fake_app("one_down")
    async with app.run_test(size=(120, 36)) as pilot:
        await health_settled(pilot)
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
        await health_settled(pilot)
        platform = await app.platform()
        before = platform.health.sweeps  # type: ignore[attr-defined]
        await pilot.press("r")
        await pilot_until(pilot, lambda: platform.health.sweeps > before, 10, "a sweep")  # type: ignore[attr-defined]
        assert platform.health.sweeps == before + 1  # type: ignore[attr-defined]


async def test_enter_maximises_detail_and_tabs_switch() -> None:
    app = fake_app("one_down")
    async with app.run_test(size=(80, 24)) as pilot:
        await health_settled(pilot)
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
        await health_settled(pilot)
        await pilot.press("down", "c")
        comps = app.screen.query_one("#components-table", DataTable)

        def rows() -> list[str]:
            return [" ".join(str(c) for c in comps.get_row_at(i)) for i in range(comps.row_count)]

        await pilot_until(
            pilot,
            lambda: any("db" in r and "DOWN" in r and "HikariPool" in r for r in rows()),
            10,
            "the db component DOWN with its error",
            detail=lambda: f"components: {rows()}",
        )


async def test_help_lists_every_key_and_closes() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await health_settled(pilot)
        await pilot.press("question_mark")
        await pilot_until(pilot, lambda: isinstance(app.screen, HelpScreen), 10, "the help")
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
        await health_settled(pilot)
        platform = await app.platform()
        await pilot.press("question_mark")
        await pilot_until(pilot, lambda: isinstance(app.screen, HelpScreen), 10, "the help")
        hidden_from = platform.health.sweeps  # type: ignore[attr-defined]
        # Not a fixed sleep: a timer of the probe's period proves six probes were due, however
        # slowly this machine runs the app's timers.
        ticks: list[None] = []
        timer = app.set_interval(0.1, lambda: ticks.append(None))
        await pilot_until(pilot, lambda: len(ticks) >= 6, 10, "six probe periods to pass")
        timer.stop()
        assert platform.health.sweeps == hidden_from  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot_until(
            pilot,
            lambda: platform.health.sweeps > hidden_from + 1,  # type: ignore[attr-defined]
            5,
            "probes to resume",
        )


async def test_command_palette_and_quit() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await health_settled(pilot)
        await pilot.press("colon")
        from textual.command import CommandPalette

        await pilot_until(pilot, lambda: isinstance(app.screen, CommandPalette), 10, "palette")
        await pilot.press("escape")
        await pilot_until(pilot, lambda: isinstance(app.screen, HealthScreen), 10, "Health")
        await pilot.press("2")
        from screens.rollout import RolloutScreen

        await pilot_until(pilot, lambda: isinstance(app.screen, RolloutScreen), 10, "Rollout")
        await pilot.press("1")
        assert isinstance(app.screen, HealthScreen)
        await pilot.press("q")
        await pilot_until(pilot, lambda: app.return_code is not None, 10, "q to exit the app")
    assert app.return_code == 0


async def test_read_only_and_production_are_in_the_header() -> None:
    app = fake_app("read_only")
    async with app.run_test(size=(80, 24)) as pilot:
        await health_settled(pilot)
        header = str(app.screen.query_one("AppHeader").render())
        assert "READ-ONLY" in header and "PRODUCTION" in header


async def test_age_says_now_while_fresh_and_counts_once_stale() -> None:
    """Fresh data is a steady "now" (no redraw every two seconds); data older than two
    sweeps shows its age, so a stalled prober is seen."""
    app = fake_app("healthy", poll=60.0)
    later = 0.0
    app.clock = lambda: clock() + later
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await health_settled(pilot)
        table = screen.query_one("#services", DataTable)
        assert str(table.get_cell("auth-service", "age")) == "now"
        drawn = table._update_count
        screen._redraw()  # the two-second tick with nothing changed: no cell is touched
        assert table._update_count == drawn
        later = 5 * 60.0
        screen._redraw()
        assert str(table.get_cell("auth-service", "age")) == "5m"


async def test_a_redraw_with_nothing_changed_leaves_the_detail_alone() -> None:
    """The components table is rebuilt only when what it shows differs: a rebuild is a new
    layout, and the two-second tick redraws the screen."""
    app = fake_app("one_down")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await health_settled(pilot)
        comps = screen.query_one("#components-table", DataTable)
        await pilot_until(pilot, lambda: comps.row_count > 0, 10, "the components")
        drawn = comps._update_count
        screen._redraw()
        assert comps._update_count == drawn
