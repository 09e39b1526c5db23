"""The Health screen on a real sandbox: live data, a failing rollout seen and undone with the
real kubectl, and an API outage shown and recovered from."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.platform import Platform, open_platform
from backends.status.monitor import HealthPicture
from screens.health import HealthScreen
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.waiting import pilot_until, wait_until
from tui.app import AppSettings, make_app


def app_on(sandbox: RunningSandbox) -> Any:
    cfg = load_platform(builtin_platform_path())
    state = read_sandbox_state(sandbox.runtime_dir)

    async def opener() -> Platform:
        return open_platform(cfg, "sandbox", sandbox=state, probe_timeout=1.0)

    return make_app(
        AppSettings(
            env="sandbox",
            poll_interval=0.5,
            platform_label=cfg.name,
            environment_label="sandbox",
            open_platform=opener,
        )
    )


async def wait_for(
    pilot: Any, what: str, pred: Callable[[HealthPicture], bool], timeout: float = 30.0
) -> HealthPicture:
    """The Health screen's picture, once ``pred`` holds for it."""

    def picture() -> HealthPicture | None:
        screen = pilot.app.screen
        return screen.picture if isinstance(screen, HealthScreen) else None

    def matching() -> HealthPicture | None:
        p = picture()
        return p if p is not None and pred(p) else None

    return await pilot_until(
        pilot, matching, timeout, what, interval=0.1, detail=lambda: f"last picture: {picture()}"
    )


def run_kubectl(sandbox: RunningSandbox, *args: str) -> None:
    subprocess.run(["kubectl", *args], env=sandbox.env, check=True, capture_output=True, timeout=30)


def row(p: HealthPicture, name: str) -> Any:
    return next(r for r in p.rows if r.service == name)


async def test_live_health_failing_rollout_and_undo(sandbox: RunningSandbox, kubectl: str) -> None:
    app = app_on(sandbox)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            pilot, "all five services healthy", lambda p: p.healthy and len(p.rows) == 5, timeout=20
        )
        kubectl_ = lambda *a: run_kubectl(sandbox, *a)  # noqa: E731
        kubectl_(
            "patch", "deployment/tweet-service", "-p", '{"spec":{"progressDeadlineSeconds":3}}'
        )
        kubectl_(
            "set",
            "image",
            "deployment/tweet-service",
            "tweet-service=bharathva/tweet-service:2.0.0-crash",
        )
        failed = await wait_for(
            pilot, "tweet-service rollout failing", lambda p: row(p, "tweet-service").rollout_failed
        )
        assert any("tweet-service rollout failed" in a.message for a in failed.alerts)
        assert row(failed, "tweet-service").image_tag == "2.0.0-crash"
        kubectl_("rollout", "undo", "deployment/tweet-service")
        back = await wait_for(pilot, "tweet-service back", lambda p: p.healthy)
        assert row(back, "tweet-service").image_tag == "1.0.0"
        assert row(back, "tweet-service").revision == 3


async def test_api_outage_is_shown_and_recovers(sandbox: RunningSandbox) -> None:
    app = app_on(sandbox)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, "healthy", lambda p: p.healthy, timeout=20)
        sandbox.stop_api()
        down = await wait_for(
            pilot, "kubernetes source down", lambda p: not p.sources[0].ok, timeout=20
        )
        assert down.sources[0].last_good is not None
        header = str(app.screen.query_one("AppHeader").render())
        assert "kubernetes unreachable" in header
        assert "✖" in header
        sandbox.start_api()
        await wait_for(pilot, "recovered", lambda p: p.sources[0].ok and p.healthy, timeout=30)
        assert "live" in str(app.screen.query_one("AppHeader").render())


def test_bva_sandbox_in_tmux_shows_the_platform(tmp_path: Any) -> None:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is required (.ci/run installs it)")
    session = f"bva-e2e-{os.getpid()}"
    env_runtime = tmp_path / "rt"
    cmd = f"BVA_RUNTIME_DIR={env_runtime} {shutil.which('bva') or 'bva'} --sandbox"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36", cmd], check=True
    )
    try:

        def pane() -> str:
            return subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout

        def all_up() -> str:
            text = pane()
            return text if text.count("✔ UP") >= 5 and text.count("✔ Complete") >= 5 else ""

        screen = wait_until(all_up, 30, "five services UP and Complete", interval=0.3, detail=pane)
        for svc in (
            "discovery-service",
            "auth-service",
            "user-service",
            "tweet-service",
            "gateway-service",
        ):
            assert svc in screen
        assert "sandbox" in screen.splitlines()[0]
        children = subprocess.run(
            ["pgrep", "-f", "bva-embedded-"], capture_output=True, text=True
        ).stdout.split()
        assert children, "the embedded sandbox runs in a child process"
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_until(
            lambda: not any(os.path.exists(f"/proc/{pid}") for pid in children),
            10,
            "the embedded sandbox to stop when the app exits",
            interval=0.1,
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
