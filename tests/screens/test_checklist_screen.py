"""The Checklist screen: snapshots at 80x24 and 120x36 (running, Go, No-Go), every binding
pressed, and the Rollout screen refusing a No-Go start without a typed reason."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static

from backends.checklist.models import SignOff
from screens.checklist import ChecklistScreen
from screens.checklist_sign import SignStep
from screens.rollout import RolloutScreen
from tests.screens.conftest import fake_app
from tests.support.fake_checklist import CFG, FakeChecklist
from tests.support.fake_platform import NOW
from tests.support.waiting import pilot_until
from widgets.confirm import GiveReason, TypeToConfirm

SIZES = [(80, 24), (120, 36)]
ALL_SIGNED = [
    SignOff(i.id, "asha", NOW - 60, "") for i in CFG.checklist.resolved() if not i.automated
]


def app_with(engine: FakeChecklist, scenario: str = "healthy") -> Any:
    app = fake_app(scenario)
    app.settings.checklist_engine = lambda _platform: engine
    return app


async def open_checklist(pilot: Any, *, done: bool = True) -> ChecklistScreen:
    await pilot.press("0")
    screen: ChecklistScreen = await pilot_until(
        pilot,
        lambda: pilot.app.screen if isinstance(pilot.app.screen, ChecklistScreen) else None,
        10,
        "the Checklist screen",
    )
    if done:
        await pilot_until(pilot, lambda: screen.runs > 0, 10, "the first run")
    return screen


CASES = {
    "go": lambda: FakeChecklist(signoffs=ALL_SIGNED),
    "no_go": lambda: FakeChecklist(failing=True),
    "running": lambda: FakeChecklist(hang=True),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", list(CASES))
def test_checklist_snapshots(snap_compare: Any, case: str, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        screen = await open_checklist(pilot, done=case != "running")
        if case == "running":
            table = screen.query_one(DataTable)
            await pilot_until(pilot, lambda: table.row_count > 8, 10, "results landing")
        await pilot.pause()

    assert snap_compare(app_with(CASES[case]()), terminal_size=size, run_before=run_before)


async def test_r_reruns_all_and_enter_reruns_the_selected_check() -> None:
    engine = FakeChecklist()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checklist(pilot)
        table = screen.query_one(DataTable)
        table.focus()
        await pilot.press("r")
        await pilot_until(pilot, lambda: screen.runs == 2, 10, "r to re-run all")
        assert engine.runs[-1] is None
        row = list(table.rows).index("monitoring")
        table.move_cursor(row=row)
        await pilot.press("enter")
        await pilot_until(pilot, lambda: screen.runs == 3, 10, "enter to re-run one")
        assert engine.runs[-1] == {"monitoring"}
        detail = str(screen.query_one("#cl-detail", Static).render())
        assert "Monitoring and alerting setup" in detail and "enter re-runs it" in detail


async def test_v_types_the_version_and_enter_checks_it() -> None:
    engine = FakeChecklist()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checklist(pilot)
        screen.query_one(DataTable).focus()
        await pilot.press("v", *"1.7.0")
        # The digits went into the box: "1" did not switch to the Health screen.
        assert app.screen is screen
        assert screen.query_one("#cl-version", Input).value == "1.7.0"
        runs = screen.runs
        await pilot.press("enter")
        await pilot_until(pilot, lambda: screen.runs == runs + 1, 10, "enter to check 1.7.0")
        assert engine.versions[-1] == "1.7.0"
        assert screen.query_one(DataTable).has_focus


async def test_space_signs_with_the_name_remembered_and_needs_a_version() -> None:
    engine = FakeChecklist()
    app = app_with(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checklist(pilot)
        table = screen.query_one(DataTable)
        table.focus()
        table.move_cursor(row=list(table.rows).index("code-reviewed"))
        said: list[str] = []
        app.notify = lambda message, **_: said.append(str(message))  # type: ignore[method-assign]
        await pilot.press("space")
        await pilot_until(pilot, lambda: said, 10, "no version refused")
        assert "type the version" in said[-1] and not engine.signed
        screen.query_one("#cl-version", Input).value = "1.2.0"
        await pilot.press("space")
        step = await pilot_until(
            pilot, lambda: app.screen if isinstance(app.screen, SignStep) else None, 10, "sign"
        )
        await pilot.press("enter")  # no name yet: refused
        assert isinstance(app.screen, SignStep)
        await pilot.press(*"asha", "enter", *"PR 88 approved", "enter")
        await pilot_until(pilot, lambda: engine.signed, 10, "the sign-off")
        assert engine.signed == [("code-reviewed", "asha", "PR 88 approved", "1.2.0")]
        await pilot_until(pilot, lambda: app.screen is screen, 10, "back")
        table.move_cursor(row=list(table.rows).index("cdn"))
        await pilot.press("space")
        step = await pilot_until(
            pilot, lambda: app.screen if isinstance(app.screen, SignStep) else None, 10, "again"
        )
        assert step.query_one("#sign-who", Input).value == "asha"


async def test_read_only_runs_checks_but_cannot_sign() -> None:
    engine = FakeChecklist()
    app = app_with(engine, "read_only")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checklist(pilot)
        table = screen.query_one(DataTable)
        table.focus()
        table.move_cursor(row=list(table.rows).index("code-reviewed"))
        await pilot.press("space", "question_mark")
        await pilot_until(pilot, lambda: app.screen is not screen, 10, "help after space")
        assert not isinstance(app.screen, SignStep) and not engine.signed
        assert "read-only: no signing" in str(screen.query_one("#cl-detail", Static).render())


async def test_g_on_go_takes_the_version_to_the_rollout_screen() -> None:
    app = app_with(FakeChecklist(signoffs=ALL_SIGNED))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checklist(pilot)
        screen.query_one("#cl-version", Input).value = "1.2.0"
        screen.query_one(DataTable).focus()
        await pilot.press("r")
        await pilot_until(pilot, lambda: screen.runs == 2, 10, "the run for 1.2.0")
        assert screen.report is not None and screen.report.verdict.go
        await pilot.press("g")
        rollout = await pilot_until(
            pilot, lambda: app.screen if isinstance(app.screen, RolloutScreen) else None, 10, ""
        )
        box = rollout.query_one("#plan-version", Input)
        await pilot_until(pilot, lambda: box.value == "1.2.0", 10, "the version carried over")


async def test_no_go_where_a_go_is_required_needs_a_typed_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import backends.checklist.runner as runner

    monkeypatch.setattr(runner, "rules", lambda _platform: (True, True))  # as production
    app = app_with(FakeChecklist(failing=True))
    started: list[tuple[list[str], str, str]] = []
    app.start_release = lambda s, v, override="": started.append((s, v, override))  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_checklist(pilot)
        screen.query_one("#cl-version", Input).value = "1.2.0"
        screen.query_one(DataTable).focus()
        await pilot.press("r")
        await pilot_until(pilot, lambda: screen.runs == 2, 10, "the run for 1.2.0")
        await pilot.press("2")
        rollout: RolloutScreen = await pilot_until(
            pilot, lambda: app.screen if isinstance(app.screen, RolloutScreen) else None, 10, ""
        )
        from textual.widgets import SelectionList

        await pilot_until(pilot, lambda: rollout.polls > 0, 10, "the form")
        rollout.query_one("#plan-services", SelectionList).select("auth-service")
        rollout.query_one("#plan-version", Input).value = "1.2.0"
        await pilot.press("ctrl+s")
        reason = await pilot_until(
            pilot, lambda: app.screen if isinstance(app.screen, GiveReason) else None, 10, "why"
        )
        assert "NO-GO" in str(reason.query_one("#reason-body", Static).render())
        await pilot.press(*"hotfix", "enter")  # too short
        assert isinstance(app.screen, GiveReason)
        await pilot.press(*" for the login outage INC-77", "enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "confirm")
        await pilot.press(*"sandbox", "enter")
        await pilot_until(pilot, lambda: started, 10, "the release")
        assert started == [(["auth-service"], "1.2.0", "hotfix for the login outage INC-77")]
