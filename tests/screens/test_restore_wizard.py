"""The database restore wizard on the Rollback screen: every step at 80x24 and 120x36, every
binding, a wrong confirmation that must not restore, and read-only refusing it before the
engine is even made."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static

from screens.restore_steps import ExecuteRestoreStep, PickBackupStep, ReviewRestoreStep
from screens.rollback import RollbackScreen
from tests.screens.conftest import fake_app, notifications
from tests.support.fake_restores import BACKUPS, FakeRestores
from tests.support.waiting import pilot_until
from widgets.confirm import TypeToConfirm

SIZES = [(80, 24), (120, 36)]


def app_with(engine: FakeRestores | None, scenario: str = "healthy") -> Any:
    app = fake_app(scenario)
    app.settings.database_restores = lambda _platform: engine
    return app


async def wait_for(pilot: Any, kind: type) -> Any:
    return await pilot_until(
        pilot,
        lambda: pilot.app.screen if isinstance(pilot.app.screen, kind) else None,
        10,
        f"{kind.__name__} to show",
    )


async def to_step(pilot: Any, step: int) -> Any:
    await pilot.press("3")
    screen: RollbackScreen = await wait_for(pilot, RollbackScreen)
    await pilot_until(pilot, lambda: screen.candidates, 10, "the rollback candidates")
    await pilot.press("D")
    shown = await wait_for(pilot, PickBackupStep)
    if step >= 2:
        await pilot.press("enter")
        shown = await wait_for(pilot, ReviewRestoreStep)
    if step >= 3:
        await pilot.press("enter")
        shown = await wait_for(pilot, TypeToConfirm)
    if step >= 4:
        await pilot.press(*"bharathva@sandbox", "enter")
        shown = await wait_for(pilot, ExecuteRestoreStep)
        await pilot_until(pilot, lambda: shown.outcome is not None, 10, "the restore to end")
    return shown


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_restore_wizard_snapshots(snap_compare: Any, step: int, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await to_step(pilot, step)

    assert snap_compare(app_with(FakeRestores()), terminal_size=size, run_before=run_before)


async def test_the_whole_way_with_scale_down_toggled_and_a_wrong_word_refused() -> None:
    engine = FakeRestores()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        pick = await to_step(pilot, 1)
        table: DataTable[Any] = pick.query_one(DataTable)
        assert table.row_count == len(BACKUPS) and table.cursor_row == 0
        review = await to_step_from_pick(pilot, 0)
        assert engine.planned == [BACKUPS[0].name]
        plan_text = str(review.query_one("#rs-plan", Static).render())
        assert "auth-service (3), tweet-service (4)" in plan_text
        assert "drains by scaling auth-service, tweet-service to 0" in plan_text
        assert "73,400,320 bytes of WAL" in plan_text and "replicas (2) follow" in plan_text
        await pilot.press("s")  # no scaling: the connected application refuses the restore
        await pilot_until(
            pilot,
            lambda: "not scaling down" in str(review.query_one("#rs-plan").render()),
            10,
            "s to turn scaling off",
        )
        said = notifications(app)
        await pilot.press("enter")
        await pilot_until(pilot, lambda: said, 10, "enter to be refused")
        assert "the application is connected" in said[-1] and app.screen is review
        await pilot.press("s", "enter")
        confirm = await wait_for(pilot, TypeToConfirm)
        await pilot.press(*"bharathva@production", "enter")
        await pilot_until(
            pilot,
            lambda: "nothing was done" in str(confirm.query_one("#confirm-error").render()),
            10,
            "the wrong word refused",
        )
        assert not engine.executed
        box = confirm.query_one(Input)
        box.value = ""
        await pilot.press(*"bharathva@sandbox", "enter")
        done = await wait_for(pilot, ExecuteRestoreStep)
        await pilot_until(pilot, lambda: done.outcome is not None, 10, "the restore")
        assert engine.executed == [(BACKUPS[0].name, True)]
        summary = str(done.query_one("#rs-summary", Static).render())
        assert summary.startswith("✔ restored from") and "safety-before-restore" in summary
        await pilot.press("enter")
        await wait_for(pilot, RollbackScreen)


async def to_step_from_pick(pilot: Any, row: int) -> Any:
    for _ in range(row):
        await pilot.press("down")
    await pilot.press("enter")
    return await wait_for(pilot, ReviewRestoreStep)


async def test_escape_goes_one_step_back_and_an_unverified_backup_is_refused() -> None:
    engine = FakeRestores(connected=False)
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 3)
        await pilot.press("escape")
        await wait_for(pilot, ReviewRestoreStep)
        await pilot.press("escape")
        pick = await wait_for(pilot, PickBackupStep)
        said = notifications(app)
        await pilot.press("down", "down", "enter")  # the third backup was never verified
        await pilot_until(pilot, lambda: said, 10, "the unverified backup refused")
        assert "never verified" in said[-1] and app.screen is pick
        await pilot.press("escape")
        await wait_for(pilot, RollbackScreen)
        assert not engine.executed


async def test_a_failed_restore_says_why_and_that_the_services_came_back() -> None:
    app = app_with(FakeRestores(fail=True))
    async with app.run_test(size=(120, 36)) as pilot:
        done = await to_step(pilot, 4)
        summary = str(done.query_one("#rs-summary", Static).render())
        assert summary.startswith("✖ pg_restore failed, nothing was changed")
        assert not done.query_one(DataTable).display


@pytest.mark.parametrize("scenario", ["read_only", "healthy"])
async def test_no_restore_key_where_it_cannot_run(scenario: str) -> None:
    """Read-only hides D (the engine is never asked for); an environment without a database
    has none to restore."""
    asked: list[bool] = []

    def engine(_platform: Any) -> FakeRestores | None:
        asked.append(True)
        return None if scenario == "healthy" else FakeRestores()

    app = fake_app(scenario)
    app.settings.database_restores = engine
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("3")
        screen: RollbackScreen = await wait_for(pilot, RollbackScreen)
        await pilot_until(pilot, lambda: screen.candidates, 10, "the rollback candidates")
        await pilot.press("D", "question_mark")
        await pilot_until(pilot, lambda: app.screen is not screen, 10, "help behind D")
        assert not isinstance(app.screen, PickBackupStep)
        note = str(screen.query_one("#rb-note", Static).render())
        assert "D restores" not in note
        if scenario == "read_only":
            assert not asked
