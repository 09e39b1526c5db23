"""Snapshots of the Health screen on deterministic data, at 80x24 and 120x36."""

from __future__ import annotations

from typing import Any

import pytest

from tests.screens.conftest import fake_app, health_settled

SIZES = [(80, 24), (120, 36)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "name",
    [
        "healthy", "one_down", "rollout_failing", "unreachable", "read_only", "db_degraded",
        "compose", "compose_crash",
    ],
)  # fmt: skip
def test_health_screen(snap_compare: Any, name: str, size: tuple[int, int]) -> None:
    app = fake_app(name)

    async def run_before(pilot: Any) -> None:
        await health_settled(pilot)
        if name in ("rollout_failing", "compose_crash"):
            await pilot.press("down", "down", "down")
            await health_settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("tab", ["activity", "replication", "migrations"])
def test_database_detail(snap_compare: Any, tab: str, size: tuple[int, int]) -> None:
    """d focuses the database servers; the detail below shows the selected one."""
    app = fake_app("db_degraded")

    async def run_before(pilot: Any) -> None:
        await health_settled(pilot)
        await pilot.press("d")
        if tab == "replication":
            await pilot.press("down", "l")  # replica-1: its own receive and replay
        elif tab == "migrations":
            await pilot.press("m")
        await health_settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_health_screen_without_colour(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: health still reads from its symbols and words alone."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = fake_app("one_down")
    assert app.no_color

    async def run_before(pilot: Any) -> None:
        await health_settled(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
