"""`bva status`: exit codes 0/1/2/3, text and the documented JSON shape, on a real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.sandbox_proc import RunningSandbox
from tests.support.waiting import wait_until


def status(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "status", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )


def wait_healthy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    last: list[subprocess.CompletedProcess[str]] = []

    def healthy() -> subprocess.CompletedProcess[str] | None:
        last[:] = [status("--env", "sandbox", "--json", env=env)]
        return last[0] if last[0].returncode == 0 else None

    return wait_until(
        healthy,
        30,
        "bva status to exit 0",
        interval=0.5,
        detail=lambda: last[0].stdout + last[0].stderr if last else "",
    )


def test_healthy_then_degraded_json_and_text(sandbox: RunningSandbox, kubectl: str) -> None:
    env = sandbox.env
    out = wait_healthy(env)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "bva.status/v1"
    assert doc["environment"] == "sandbox" and doc["healthy"] is True
    assert [s["name"] for s in doc["services"]] == [
        "discovery-service",
        "auth-service",
        "user-service",
        "tweet-service",
        "gateway-service",
    ]
    auth = doc["services"][1]
    assert auth["health"] == "UP" and auth["ready"] == auth["desired"] == 3
    assert auth["rollout"]["state"] == "complete" and auth["image_tag"] == "1.0.0"
    assert {s["name"] for s in doc["sources"]} == {"kubernetes", "health"}

    subprocess.run(
        [
            "kubectl",
            "set",
            "image",
            "deployment/user-service",
            "user-service=bharathva/user-service:1.1.0-unhealthy",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["kubectl", "rollout", "status", "deployment/user-service", "--timeout=60s"],
        env=env,
        check=True,
        capture_output=True,
    )
    out = status("--env", "sandbox", env=env)
    assert out.returncode == 1, out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("user-service"))
    assert "✖ DOWN" in line
    assert out.stdout.strip().endswith("status: degraded")


def test_unreachable_source_exits_3(sandbox: RunningSandbox) -> None:
    wait_healthy(sandbox.env)
    sandbox.stop_api()
    out = status("--env", "sandbox", "--json", env=sandbox.env)
    assert out.returncode == 3
    doc = json.loads(out.stdout)
    kube = next(s for s in doc["sources"] if s["name"] == "kubernetes")
    assert kube["ok"] is False and kube["message"]
    sandbox.start_api()


def test_no_sandbox_running_and_usage_errors(tmp_path: Path) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path)}
    out = status("--env", "sandbox", env=env)
    assert out.returncode == 3
    assert "no sandbox is running" in out.stderr
    out = status("--env", "nowhere", env=env)
    assert out.returncode == 2
    assert 'unknown environment "nowhere"' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_status_with_embedded_sandbox(tmp_path: Path) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path)}
    out = status("--sandbox", "--json", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["healthy"] and len(doc["services"]) == 5
