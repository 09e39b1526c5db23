"""The Health screen's Database panel: its bindings on stand-in data, and the screen on a
real primary and replica that stops and comes back under the running app."""

from __future__ import annotations

import dataclasses

import pytest
from textual.widgets import DataTable, Static, TabbedContent

from backends.db.models import Role, ServerState
from backends.db.source import DbServer, PgDatabase
from screens.health import HealthScreen
from tests.screens.conftest import fake_app, health_settled, notifications
from tests.support.fake_platform import scenario
from tests.support.pg_world import PgWorld
from tests.support.waiting import pilot_until
from widgets.db_table import DatabaseTable


def _title(screen: HealthScreen) -> str:
    return str(screen.query_one("#detail-title", Static).render())


def _db_rows(screen: HealthScreen) -> list[str]:
    table = screen.query_one(DatabaseTable)
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


async def test_d_moves_between_services_and_servers_and_the_detail_follows() -> None:
    app = fake_app("db_degraded")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await health_settled(pilot)
        assert _db_rows(screen) == ["primary", "replica-1", "replica-2"]
        assert screen.query_one("#detail-tabs").display
        await pilot.press("d")
        await pilot_until(pilot, lambda: isinstance(screen.focused, DatabaseTable), 5, "focus")
        assert screen.query_one("#db-detail").display
        assert not screen.query_one("#detail-tabs").display
        assert "primary" in _title(screen) and "DEGRADED" in _title(screen)
        sessions = screen.query_one("#db-sessions", DataTable)
        # The blocked session first, with the pid blocking it.
        assert sessions.get_row_at(0)[0] == "4200"
        assert str(sessions.get_row_at(0)[5]) == "4102"
        await pilot.press("down")
        await pilot_until(pilot, lambda: "replica-1" in _title(screen), 5, "replica-1 title")
        assert "replay paused" in _title(screen)
        await pilot.press("l")
        tabs = screen.query_one("#db-tabs", TabbedContent)
        await pilot_until(pilot, lambda: tabs.active == "db-replication", 5, "replication tab")
        standbys = screen.query_one("#db-standbys", DataTable)
        assert standbys.get_row_at(0)[0] == "streaming"
        assert str(standbys.get_row_at(0)[5]) == "paused"
        await pilot.press("m")
        await pilot_until(pilot, lambda: tabs.active == "db-migrations", 5, "migrations tab")
        await pilot.press("a")
        await pilot_until(pilot, lambda: tabs.active == "db-activity", 5, "activity tab")
        await pilot.press("d")
        await pilot_until(
            pilot, lambda: screen.focused is screen.query_one("#services"), 5, "services focus"
        )
        assert screen.query_one("#detail-tabs").display
        assert "discovery-service" in _title(screen)


async def test_migrations_from_the_services_jump_to_the_database() -> None:
    app = fake_app("db_degraded")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await health_settled(pilot)
        await pilot.press("m")
        tabs = screen.query_one("#db-tabs", TabbedContent)
        await pilot_until(pilot, lambda: tabs.active == "db-migrations", 5, "migrations tab")
        assert isinstance(screen.focused, DatabaseTable)
        flyway = screen.query_one("#db-flyway", DataTable)
        assert flyway.get_row_at(0)[1] == "7" and str(flyway.get_row_at(0)[3]) == "Failed"
        await pilot.press("p")  # a service tab: back to the services
        await pilot_until(pilot, lambda: screen.query_one("#detail-tabs").display, 5, "pods")


async def test_enter_collapses_the_database_panel_with_the_services() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await health_settled(pilot)
        await pilot.press("enter")
        await pilot_until(
            pilot, lambda: screen.query_one("#databases").has_class("-collapsed"), 5, "collapse"
        )
        assert screen.query_one("#flyway-line").has_class("-collapsed")
        await pilot.press("enter")
        await pilot_until(
            pilot, lambda: not screen.query_one("#databases").has_class("-collapsed"), 5, "back"
        )


async def test_without_a_database_there_is_no_panel_and_d_does_nothing() -> None:
    platform = dataclasses.replace(scenario("healthy"), database=None)
    app = fake_app("healthy", platform=platform)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await health_settled(pilot)
        assert not screen.query_one("#databases").display
        said = notifications(app)
        # `s` behind `d` is the settle point: once its toast shows, `d` has been handled.
        await pilot.press("d", "s")
        await pilot_until(pilot, lambda: any(m.startswith("sorted by") for m in said), 5, "sort")
        assert screen.focused is screen.query_one("#services")
        assert not screen.query_one("#db-detail").display
        assert screen.db_reads == 0


# --- a real database under the running app ------------------------------------------------


@pytest.fixture(scope="module")
def world(pg_world: PgWorld) -> PgWorld:
    return pg_world


@pytest.mark.xdist_group("pg-screen")
async def test_the_primary_stops_under_the_app_and_the_screen_recovers(world: PgWorld) -> None:
    db = PgDatabase(
        [
            DbServer("primary", Role.PRIMARY, world.dsn("primary")),
            DbServer("replica-1", Role.REPLICA, world.dsn("replica-1")),
        ],
        pool_size=20,
        connect_timeout=1.0,
        statement_timeout=1.0,
    )
    platform = dataclasses.replace(scenario("healthy"), database=db)
    app = fake_app("healthy", platform=platform, db_poll=0.2)

    def primary_state(screen: HealthScreen) -> ServerState | None:
        p = screen.picture.database.primary if screen.picture and screen.picture.database else None
        return p.state if p is not None else None

    async with app.run_test(size=(120, 36)) as pilot:
        screen = await health_settled(pilot)
        await pilot_until(
            pilot, lambda: primary_state(screen) is ServerState.UP, 15, "the primary UP"
        )
        world.cluster.stop_server("primary")
        try:
            await pilot_until(
                pilot, lambda: primary_state(screen) is ServerState.DOWN, 15, "the primary DOWN"
            )
            picture = screen.picture
            assert picture is not None
            assert any(s.name == "database" and not s.ok for s in picture.sources)
            # The console still answers keys while the database is gone.
            await pilot.press("d")
            await pilot_until(pilot, lambda: "DOWN" in _title(screen), 5, "the DOWN title")
        finally:
            world.cluster.start_server("primary")
        await pilot_until(
            pilot, lambda: primary_state(screen) is ServerState.UP, 30, "the primary back UP"
        )
    await db.aclose()
