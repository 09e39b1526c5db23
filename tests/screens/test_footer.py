"""Every screen's footer shows the way to the other screens first: at 80 columns a screen with
many keys loses its last ones, never 1-4 (they were cut at 80 before)."""

from __future__ import annotations

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tests.screens.conftest import fake_app
from tests.support.fake_release import StubDriver, release_view
from tests.support.waiting import pilot_until


@pytest.mark.parametrize("mode", ["health", "rollout", "rollback", "logs"])
async def test_the_mode_keys_fit_at_80_columns(mode: str) -> None:
    app = fake_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        # The Rollout screen with a release in progress has the most keys of all.
        app.release_driver = StubDriver(release_view())
        await pilot.press({"health": "1", "rollout": "2", "rollback": "3", "logs": "4"}[mode])

        def laid_out() -> dict[str, FooterKey] | None:
            # The footer recomposes when the bindings change; on a busy machine its keys
            # get their regions a frame or two after the screen switch.
            keys = {k.key: k for k in app.screen.query_one(Footer).query(FooterKey)}
            ready = all(k in keys and keys[k].region.width > 0 for k in "1234")
            return keys if ready else None

        keys = await pilot_until(pilot, laid_out, 5, "the footer's keys laid out") or {}
        for key in "1234":
            assert key in keys, f"{mode}: no footer key {key}"
            region = keys[key].region
            assert region.width > 0 and region.right <= 80, f"{mode}: key {key} at {region}"
        assert app.current_mode == mode
