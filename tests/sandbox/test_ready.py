"""`bva sandbox` says "ready" only once the platform is up: a `bva status` typed right after it
finds every service healthy."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.sandbox.platform_settings import settings_from_platform
from backends.sandbox.runner import NotReady, Sandbox, SandboxSettings
from tests.support.sandbox_proc import start_sandbox


def test_status_right_after_ready_is_healthy(tmp_path: Path) -> None:
    # Half speed: pods take about two seconds to become ready, longer than `bva status` takes
    # to start, so a "ready" printed before them is caught.
    sandbox = start_sandbox(tmp_path, speed=0.5)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tui", "status", "--env", "sandbox"],
            capture_output=True,
            text=True,
            env=sandbox.env,
            timeout=60,
        )
    finally:
        sandbox.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all healthy" in out.stdout


def _settings(tmp_path: Path) -> SandboxSettings:
    path = builtin_platform_path()
    settings = settings_from_platform(
        load_platform(path), str(path), kubeconfig=tmp_path / "kubeconfig", speed=4.0
    )
    return dataclasses.replace(settings, announce=False)


async def test_ready_means_every_deployment_up(tmp_path: Path) -> None:
    sandbox = Sandbox(_settings(tmp_path))
    await sandbox.start()
    try:
        assert len(sandbox.cluster.unready_deployments()) == len(sandbox.settings.services)
        await sandbox.wait_ready(10.0)
        assert sandbox.cluster.unready_deployments() == []
    finally:
        await sandbox.stop()


async def test_a_platform_that_never_gets_healthy_times_out_saying_why(tmp_path: Path) -> None:
    # Unhealthy pods still turn ready (the readiness group stays UP), so only the health
    # endpoints' answer can hold "ready" back.
    base = _settings(tmp_path)
    images = {
        name: image.replace(":1.0.0", ":1.0.0-unhealthy") for name, image in base.images.items()
    }
    sandbox = Sandbox(dataclasses.replace(base, images=images))
    await sandbox.start()
    try:
        with pytest.raises(NotReady) as caught:
            await sandbox.wait_ready(1.0)
    finally:
        await sandbox.stop()
    message = str(caught.value)
    assert "did not come up within 1s" in message
    assert "auth-service /actuator/health HTTP 503 DOWN" in message
    assert "\n" not in message
