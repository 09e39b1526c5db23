"""The Rollout screen: snapshots at 80x24 and 120x36, and every binding pressed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.widgets import Input, SelectionList

from backends.release.models import ReleaseState
from screens.rollout import RolloutScreen
from tests.screens.conftest import fake_app
from tests.support.fake_release import StubDriver, release_view
from widgets.confirm import TypeToConfirm, YesNo

SIZES = [(80, 24), (120, 36)]
CASES = {
    "planning": None,
    "gates_passing": release_view(),
    "gate_failing": release_view(failing=True),
    "aborted": release_view(ReleaseState.ABORTED, failing=True),
    "finished": release_view(ReleaseState.FINISHED),
}


async def open_rollout(pilot: Any, case: str | None = None) -> RolloutScreen:
    app = pilot.app
    if case is not None and CASES.get(case) is not None:
        app.release_driver = StubDriver(CASES[case])
    await pilot.press("2")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        screen = app.screen
        if isinstance(screen, RolloutScreen) and screen.polls > 0:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)
    screen = app.screen
    assert isinstance(screen, RolloutScreen)
    return screen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", [*CASES, "read_only"])
def test_rollout_snapshots(snap_compare: Any, case: str, size: tuple[int, int]) -> None:
    app = fake_app("read_only" if case == "read_only" else "healthy")

    async def run_before(pilot: Any) -> None:
        await open_rollout(pilot, "gates_passing" if case == "read_only" else case)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_start_needs_services_version_and_the_typed_environment() -> None:
    app = fake_app("healthy")
    started: list[tuple[list[str], str]] = []
    app.start_release = lambda s, v: started.append((s, v))  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot)
        await pilot.press("ctrl+s")  # nothing chosen yet: no dialog
        await pilot.pause(0.1)
        assert not isinstance(app.screen, TypeToConfirm)
        screen.query_one("#plan-services", SelectionList).select("auth-service")
        screen.query_one("#plan-version", Input).value = "1.2.0"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TypeToConfirm)
        await pilot.press(*"production", "enter")  # wrong environment: refused
        await pilot.pause(0.1)
        assert isinstance(app.screen, TypeToConfirm) and not started
        await pilot.press("enter")  # bare Enter on an empty box confirms nothing
        assert isinstance(app.screen, TypeToConfirm) and not started
        await pilot.press("escape")  # back, never forward
        await pilot.pause(0.1)
        assert isinstance(app.screen, RolloutScreen) and not started
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        await pilot.press(*"sandbox", "enter")
        await pilot.pause(0.1)
        assert started == [(["auth-service"], "1.2.0")]


@pytest.mark.parametrize(
    ("key", "action"), [("p", "pause"), ("n", "promote"), ("f", "promote-full")]
)
async def test_control_keys_send_their_action(key: str, action: str) -> None:
    app = fake_app("healthy")
    sent: list[str] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await open_rollout(pilot, "gates_passing")
        await pilot.press(key)
        await pilot.pause(0.1)
        assert sent == [action]


async def test_resume_only_when_paused_and_take_over_only_without_driver() -> None:
    app = fake_app("healthy")
    sent: list[str] = []
    took: list[bool] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    app.take_over_release = lambda: took.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot, "gates_passing")
        await pilot.press("r", "t")  # running, driver alive: neither applies
        await pilot.pause(0.1)
        assert sent == [] and took == []
        paused = release_view(ReleaseState.PAUSED)
        app.release_driver = StubDriver(paused)
        screen.show(paused)
        await pilot.press("r")
        await pilot.pause(0.1)
        assert sent == ["resume"]
        from dataclasses import replace

        lost = replace(release_view(ReleaseState.DRIVER_LOST), driver_alive=False)
        app.release_driver = None
        screen._poll = lambda: None  # type: ignore[method-assign]
        screen.show(lost)
        await pilot.press("t")
        await pilot.pause(0.1)
        assert took == [True]


async def test_abort_asks_for_the_environment_name() -> None:
    app = fake_app("healthy")
    sent: list[str] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await open_rollout(pilot, "gates_passing")
        await pilot.press("a")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TypeToConfirm)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert sent == []
        await pilot.press("a")
        await pilot.pause(0.1)
        await pilot.press(*"sandbox", "enter")
        await pilot.pause(0.1)
        assert sent == ["abort"]


async def test_read_only_hides_and_refuses_every_control() -> None:
    app = fake_app("read_only")
    sent: list[str] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot, "gates_passing")
        shown = {b.binding.action for b in app.active_bindings.values() if b.enabled}
        for action in ("pause", "resume", "promote", "promote_full", "abort", "start", "take_over"):
            assert action not in shown
        await pilot.press("p", "n", "f", "a", "ctrl+s")
        await pilot.pause(0.1)
        assert sent == [] and isinstance(app.screen, RolloutScreen)
        assert screen.view is not None


async def test_quit_while_driving_warns_first() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(pilot, "gates_passing")
        import asyncio

        app._release_task = asyncio.ensure_future(asyncio.sleep(60))
        await pilot.press("q")
        await pilot.pause(0.1)
        assert isinstance(app.screen, YesNo)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RolloutScreen)
        await pilot.press("q")
        await pilot.pause(0.1)
        await pilot.press("y")
        await pilot.pause(0.2)
        assert app._release_task.cancelled() or app._release_task.done()


async def test_escape_leaves_the_version_box_so_global_keys_work() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_rollout(pilot)
        screen.query_one("#plan-version", Input).focus()
        await pilot.press("1")
        assert screen.query_one("#plan-version", Input).value == "1"
        await pilot.press("escape", "1")
        await pilot.pause(0.1)
        from screens.health import HealthScreen

        assert isinstance(app.screen, HealthScreen)
