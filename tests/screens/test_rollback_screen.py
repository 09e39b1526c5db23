"""The rollback wizard: every step at 80x24 and 120x36, every binding, and a wrong
confirmation that must not execute."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, SelectionList, Static

from screens.rollback import RollbackScreen
from screens.rollback_steps import ExecuteStep, PickRevisionStep, PickServicesStep, ReviewPlanStep
from tests.screens.conftest import fake_app, notifications
from tests.support.fake_rollback import FakeRollbackEngine
from tests.support.waiting import pilot_until
from widgets.confirm import TypeToConfirm

SIZES = [(80, 24), (120, 36)]


def app_with(engine: FakeRollbackEngine, scenario: str = "healthy") -> Any:
    app = fake_app(scenario)
    app.settings.rollback_engine = lambda _platform: engine
    return app


async def wait_for(pilot: Any, kind: type, timeout: float = 10) -> Any:
    """The app's screen, once it is a ``kind``."""
    return await pilot_until(
        pilot,
        lambda: pilot.app.screen if isinstance(pilot.app.screen, kind) else None,
        timeout,
        f"{kind.__name__} to show",
    )


async def open_rollback(pilot: Any) -> RollbackScreen:
    await pilot.press("3")
    screen: RollbackScreen = await wait_for(pilot, RollbackScreen)
    # The candidates are drawn as soon as they are read (one step, no await between).
    await pilot_until(pilot, lambda: screen.candidates, 10, "the rollback candidates")
    return screen


async def to_step(pilot: Any, step: int) -> None:
    await open_rollback(pilot)
    if step == 0:
        return
    await pilot.press("w")
    await wait_for(pilot, PickServicesStep)
    if step == 1:
        return
    await pilot.press("enter")
    await wait_for(pilot, PickRevisionStep)
    if step == 2:
        return
    await pilot.press("enter")
    await wait_for(pilot, ReviewPlanStep)
    if step == 3:
        return
    await pilot.press("enter")
    await wait_for(pilot, TypeToConfirm)
    if step == 4:
        return
    await pilot.press(*"tweet-service@sandbox", "enter")
    screen = await wait_for(pilot, ExecuteStep)
    # The result and its summary are drawn in one step.
    await pilot_until(pilot, lambda: screen.result is not None, 10, "the rollback's result")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "step", [0, 1, 2, 3, 4, 5], ids=["services", "pick", "revision", "plan", "confirm", "execute"]
)
def test_wizard_snapshots(snap_compare: Any, step: int, size: tuple[int, int]) -> None:
    app = app_with(FakeRollbackEngine())

    async def run_before(pilot: Any) -> None:
        await to_step(pilot, step)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_happy_path_executes_with_the_typed_target() -> None:
    engine = FakeRollbackEngine()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 5)
        assert len(engine.executed) == 1
        plan, _resume, _abort = engine.executed[0]
        assert [s.service for s in plan.services] == ["tweet-service"]
        assert plan.services[0].target.revision == 2
        await pilot.press("enter")
        await wait_for(pilot, RollbackScreen)


async def test_wrong_confirmation_never_executes_and_escape_goes_back() -> None:
    engine = FakeRollbackEngine()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 4)
        await pilot.press(*"tweet-service@production", "enter")
        error = app.screen.query_one("#confirm-error", Static)
        await pilot_until(pilot, lambda: "nothing was done" in str(error.render()), 10, "refusal")
        assert isinstance(app.screen, TypeToConfirm) and engine.executed == []
        # bare Enter on an empty box; the x behind it shows it was taken
        await pilot.press("enter", "x")
        box = app.screen.query_one(Input)
        await pilot_until(pilot, lambda: box.value == "x", 10, "the x after enter")
        assert isinstance(app.screen, TypeToConfirm) and engine.executed == []
        await pilot.press("escape")  # back to the plan, not forward
        await wait_for(pilot, ReviewPlanStep)
        await pilot.press("escape")
        await wait_for(pilot, PickRevisionStep)
        await pilot.press("escape")
        await wait_for(pilot, PickServicesStep)
        await pilot.press("escape")
        await wait_for(pilot, RollbackScreen)
        assert engine.executed == []


async def test_pick_an_older_revision() -> None:
    engine = FakeRollbackEngine()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 2)
        await pilot.press("down", "enter")  # from the default (2) to revision 1
        await wait_for(pilot, ReviewPlanStep)
        await pilot.press("enter")
        await wait_for(pilot, TypeToConfirm)
        await pilot.press(*"tweet-service@sandbox", "enter")
        await wait_for(pilot, ExecuteStep)
        await pilot_until(pilot, lambda: engine.executed, 10, "the rollback to run")
        assert engine.executed[0][0].services[0].target.revision == 1


async def test_degraded_first_and_preselected_and_selection_needed() -> None:
    app = app_with(FakeRollbackEngine())
    said = notifications(app)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 1)
        pick = app.screen.query_one(SelectionList)
        assert list(pick.selected) == ["tweet-service"]
        pick.deselect_all()
        await pilot.press("enter")
        await pilot_until(pilot, lambda: said, 10, "enter to say a service is needed")
        assert "select at least one service" in said[0]
        assert isinstance(app.screen, PickServicesStep)  # nothing selected: no next step
        await pilot.press("space", "enter")
        await wait_for(pilot, PickRevisionStep)


async def test_read_only_shows_history_and_plan_but_cannot_execute() -> None:
    engine = FakeRollbackEngine(environment="production")
    app = app_with(engine, "read_only")
    said = notifications(app)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 3)
        await pilot.press("enter")
        await pilot_until(pilot, lambda: said, 10, "enter to be refused")
        assert said[0].startswith("read-only")
        assert isinstance(app.screen, ReviewPlanStep) and engine.executed == []


async def test_reload_key_reads_candidates_again() -> None:
    engine = FakeRollbackEngine()
    calls = []
    original = engine.candidates

    async def counting() -> Any:
        calls.append(1)
        return await original()

    engine.candidates = counting  # type: ignore[method-assign]
    app = app_with(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollback(pilot)
        before = len(calls)
        await pilot.press("R")
        await pilot_until(pilot, lambda: len(calls) > before, 10, "R to read the candidates")
        assert len(calls) == before + 1
