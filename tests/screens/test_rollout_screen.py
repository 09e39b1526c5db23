"""The Rollout screen: snapshots at 80x24 and 120x36, and every binding pressed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, SelectionList, Static

from backends.release.models import ReleaseState, ReleaseView
from screens.help import HelpScreen
from screens.rollout import RolloutScreen
from tests.screens.conftest import fake_app, notifications
from tests.support.fake_release import StubDriver, database_view, release_view
from tests.support.waiting import pilot_until
from widgets.confirm import TypeToConfirm, YesNo

SIZES = [(80, 24), (120, 36)]
CASES = {
    "planning": None,
    "gates_passing": release_view(),
    "gate_failing": release_view(failing=True),
    "aborted": release_view(ReleaseState.ABORTED, failing=True),
    "finished": release_view(ReleaseState.FINISHED),
    "db_migrating": database_view(failed=False),
    "db_failed": database_view(failed=True),
}


async def open_rollout(pilot: Any, case: str | None = None) -> RolloutScreen:
    app = pilot.app
    if case is not None and CASES.get(case) is not None:
        view = CASES[case]
        assert view is not None
        over = case in ("finished", "aborted")
        record = Path(f"/var/lib/bva/journal/releases/{view.release_id}.md") if over else None
        app.release_driver = StubDriver(view, record)
    await pilot.press("2")
    expect_view = case is not None and CASES.get(case) is not None

    def drawn() -> RolloutScreen | None:
        # Polled once, and the release it found (or the planning form) drawn.
        screen = app.screen
        if not isinstance(screen, RolloutScreen) or screen.polls == 0:
            return None
        plan, live = screen.query_one("#plan").display, screen.query_one("#live").display
        return screen if (live, plan) == (expect_view, not expect_view) else None

    return await pilot_until(pilot, drawn, 10, "the Rollout screen to draw its first poll")


def error_text(app: Any) -> str:
    return str(app.screen.query_one("#confirm-error", Static).render())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", [*CASES, "read_only", "db_plan", "compose"])
def test_rollout_snapshots(snap_compare: Any, case: str, size: tuple[int, int]) -> None:
    scenarios = {"read_only": "read_only", "db_plan": "db_release", "compose": "compose"}
    app = fake_app(scenarios.get(case, "healthy"))

    async def run_before(pilot: Any) -> None:
        shown = "gates_passing" if case in ("read_only", "compose") else case
        screen = await open_rollout(pilot, shown)
        if case == "db_plan":
            await pilot_until(
                pilot,
                lambda: "V7" in str(screen.query_one("#plan-preview", Static).render()),
                10,
                "the database step in the plan",
            )

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_start_needs_services_version_and_the_typed_environment() -> None:
    app = fake_app("healthy")
    started: list[tuple[list[str], str]] = []
    app.start_release = lambda s, v, override="": started.append((s, v))  # type: ignore[method-assign]
    said = notifications(app)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot)
        await pilot.press("ctrl+s")  # nothing chosen yet: no dialog, a reason
        await pilot_until(pilot, lambda: said, 10, "ctrl+s to say what is missing")
        assert "pick at least one service" in said[0]
        assert not isinstance(app.screen, TypeToConfirm)
        screen.query_one("#plan-services", SelectionList).select("auth-service")
        screen.query_one("#plan-version", Input).value = "1.2.0"
        await pilot.press("ctrl+s")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "the dialog")
        await pilot.press(*"production", "enter")  # wrong environment: refused
        await pilot_until(pilot, lambda: "nothing was done" in error_text(app), 10, "a refusal")
        assert isinstance(app.screen, TypeToConfirm) and not started
        # bare Enter on an empty box confirms nothing; the x behind it shows it was taken
        await pilot.press("enter", "x")
        box = app.screen.query_one(Input)
        await pilot_until(pilot, lambda: box.value == "x", 10, "the x after enter")
        assert isinstance(app.screen, TypeToConfirm) and not started
        await pilot.press("escape")  # back, never forward
        await pilot_until(pilot, lambda: isinstance(app.screen, RolloutScreen), 10, "Rollout")
        assert not started
        await pilot.press("ctrl+s")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "the dialog")
        await pilot.press(*"sandbox", "enter")
        await pilot_until(pilot, lambda: started, 10, "the release to start")
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
        await pilot_until(pilot, lambda: sent, 10, f"{key} to send {action}")
        assert sent == [action]


async def test_resume_only_when_paused_and_take_over_only_without_driver() -> None:
    app = fake_app("healthy")
    sent: list[str] = []
    took: list[bool] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    app.take_over_release = lambda: took.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot, "gates_passing")
        # Running, driver alive: neither r nor t applies; p (which does) shows they were taken.
        await pilot.press("r", "t", "p")
        await pilot_until(pilot, lambda: sent, 10, "p to send pause")
        assert sent == ["pause"] and took == []
        paused = release_view(ReleaseState.PAUSED)
        app.release_driver = StubDriver(paused)
        screen.show(paused)
        await pilot.press("r")
        await pilot_until(pilot, lambda: len(sent) > 1, 10, "r to send resume")
        assert sent == ["pause", "resume"]
        from dataclasses import replace

        lost = replace(release_view(ReleaseState.DRIVER_LOST), driver_alive=False)
        app.release_driver = None

        async def in_the_cluster() -> ReleaseView:
            return lost

        app.current_release = in_the_cluster  # type: ignore[method-assign]  # what polls find
        screen.show(lost)
        await pilot.press("t")
        await pilot_until(pilot, lambda: took, 10, "t to take over")
        assert took == [True]


async def test_abort_asks_for_the_environment_name() -> None:
    app = fake_app("healthy")
    sent: list[str] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await open_rollout(pilot, "gates_passing")
        await pilot.press("a")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "the dialog")
        await pilot.press("escape")
        await pilot_until(pilot, lambda: isinstance(app.screen, RolloutScreen), 10, "Rollout")
        assert sent == []
        await pilot.press("a")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "the dialog")
        await pilot.press(*"sandbox", "enter")
        await pilot_until(pilot, lambda: sent, 10, "the abort")
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
        # ? (help, allowed read-only) behind them shows every refused key was taken
        await pilot.press("p", "n", "f", "a", "ctrl+s", "question_mark")
        await pilot_until(pilot, lambda: isinstance(app.screen, HelpScreen), 10, "the help")
        assert sent == [] and not any(isinstance(s, TypeToConfirm) for s in app.screen_stack)
        await pilot.press("escape")
        await pilot_until(pilot, lambda: app.screen is screen, 10, "back on Rollout")
        assert screen.view is not None


async def test_quit_while_driving_warns_first() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(pilot, "gates_passing")
        import asyncio

        app._release_task = asyncio.ensure_future(asyncio.sleep(60))
        task = app._release_task
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, YesNo), 10, "the question")
        await pilot.press("n")
        await pilot_until(pilot, lambda: isinstance(app.screen, RolloutScreen), 10, "Rollout")
        assert not task.done()
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, YesNo), 10, "the question")
        await pilot.press("y")
        await pilot_until(pilot, task.done, 10, "y to cancel the release task")
        assert task.cancelled()


async def test_escape_leaves_the_version_box_so_global_keys_work() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_rollout(pilot)
        screen.query_one("#plan-version", Input).focus()
        await pilot.press("1")
        assert screen.query_one("#plan-version", Input).value == "1"
        await pilot.press("escape", "1")
        from screens.health import HealthScreen

        await pilot_until(pilot, lambda: isinstance(app.screen, HealthScreen), 10, "Health")


async def test_the_confirmation_names_the_database_step() -> None:
    app = fake_app("db_release")
    started: list[tuple[list[str], str]] = []
    app.start_release = lambda s, v, override="": started.append((s, v))  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot)
        preview = screen.query_one("#plan-preview", Static)
        await pilot_until(pilot, lambda: "V6 → V7" in str(preview.render()), 10, "the db plan")
        screen.query_one("#plan-services", SelectionList).select("tweet-service")
        screen.query_one("#plan-version", Input).value = "2.0.0"
        await pilot.press("ctrl+s")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "the dialog")
        body = str(app.screen.query_one("#confirm-body", Static).render())
        assert "First the database: backup, migrate V6 → V7, verify" in body
        await pilot.press(*"sandbox", "enter")
        await pilot_until(pilot, lambda: started, 10, "the release to start")


@pytest.mark.parametrize("case", ["db_migrating", "db_failed"])
async def test_no_control_key_acts_while_the_database_step_runs_or_after_it_failed(
    case: str,
) -> None:
    app = fake_app("healthy")
    sent: list[str] = []
    app.control_release = sent.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot, case)
        for key in ("p", "n", "f", "a"):
            await pilot.press(key)
        await pilot.press("question_mark")  # the help behind them shows they were all taken
        await pilot_until(pilot, lambda: isinstance(app.screen, HelpScreen), 10, "help")
        assert not sent and not screen.query_one("#gates").display
        steps = str(screen.query_one("#dbsteps", Static).render())
        assert ("✖ migrate" in steps) == (case == "db_failed")


async def test_a_release_over_names_its_record() -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_rollout(pilot, "finished")
        line = str(screen.query_one("#samples", Static).render())
        view = CASES["finished"]
        assert view is not None
        assert f"the release record: bva release record {view.release_id} --env " in line
        # A release this console did not drive has no record here to point at.
        app.release_driver = StubDriver(view)
        screen.show(view)
        await pilot.pause()
        assert "record:" not in str(screen.query_one("#samples", Static).render())
