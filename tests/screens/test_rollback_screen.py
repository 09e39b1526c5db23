"""The rollback wizard: every step at 80x24 and 120x36, every binding, and a wrong
confirmation that must not execute."""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.widgets import SelectionList

from screens.rollback import RollbackScreen
from screens.rollback_steps import ExecuteStep, PickRevisionStep, PickServicesStep, ReviewPlanStep
from tests.screens.conftest import fake_app
from tests.support.fake_rollback import FakeRollbackEngine
from widgets.confirm import TypeToConfirm

SIZES = [(80, 24), (120, 36)]


def app_with(engine: FakeRollbackEngine, scenario: str = "healthy") -> Any:
    app = fake_app(scenario)
    app.settings.rollback_engine = lambda _platform: engine
    return app


async def wait_for(pilot: Any, kind: type, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(pilot.app.screen, kind):
            await pilot.pause(0.05)
            return pilot.app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"{kind.__name__} never showed; screen is {pilot.app.screen}")


async def open_rollback(pilot: Any) -> RollbackScreen:
    await pilot.press("3")
    screen = await wait_for(pilot, RollbackScreen)
    deadline = time.monotonic() + 10
    while not screen.candidates and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.pause(0.1)
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
    deadline = time.monotonic() + 10
    while screen.result is None and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.pause(0.1)


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
        await pilot.pause(0.1)
        assert isinstance(app.screen, TypeToConfirm) and engine.executed == []
        await pilot.press("enter")  # bare Enter on an empty box
        await pilot.pause(0.1)
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
        await pilot.pause(0.2)
        assert engine.executed[0][0].services[0].target.revision == 1


async def test_degraded_first_and_preselected_and_selection_needed() -> None:
    app = app_with(FakeRollbackEngine())
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 1)
        pick = app.screen.query_one(SelectionList)
        assert list(pick.selected) == ["tweet-service"]
        pick.deselect_all()
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, PickServicesStep)  # nothing selected: no next step
        await pilot.press("space", "enter")
        await wait_for(pilot, PickRevisionStep)


async def test_read_only_shows_history_and_plan_but_cannot_execute() -> None:
    engine = FakeRollbackEngine(environment="production")
    app = app_with(engine, "read_only")
    async with app.run_test(size=(120, 36)) as pilot:
        await to_step(pilot, 3)
        await pilot.press("enter")
        await pilot.pause(0.2)
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
        await pilot.pause(0.3)
        assert len(calls) == before + 1
