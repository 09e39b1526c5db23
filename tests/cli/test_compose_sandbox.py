"""`bva sandbox --orchestrator compose` end to end: the BharathVA services as a compose project
of real containers on a private Docker Engine, and bva's commands on it with the Engine API
checking the containers: status, a canary aborted by its gates on an `unhealthy` image and
one on a crash-looping image (stable untouched, no canary left), a rolling release and its
rollback, and the merged logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from backends.compose import labels as L
from tests.support.dockerd import start_dockerd, unavailable

pytestmark = pytest.mark.xdist_group("dockerd")

FAST = ["--hold", "1", "--interval", "0.5", "--yes"]


@dataclass
class ComposeSandbox:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    host: str

    def api(self) -> Any:
        return docker.APIClient(base_url=self.host, timeout=30)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeSandbox]:
    tmp = tmp_path_factory.mktemp("compose-sandbox")
    env = {k: v for k, v in os.environ.items() if k not in ("BVA_CONFIG", "DOCKER_HOST")}
    env |= {
        "BVA_RUNTIME_DIR": str(tmp / "run"),
        "BVA_STATE_DIR": str(tmp / "state"),
        "XDG_DATA_HOME": str(tmp / "data"),
        "BVA_JOURNAL_DIR": str(tmp / "journal"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", "--orchestrator", "compose", "--no-db",
         "--speed", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    host = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("sandbox ready: compose project bharathva on "):
            host = line.split(" on ", 1)[1].split(" (", 1)[0]
            break
    if not host:
        proc.kill()
        said = "".join(seen)
        if "needs root" in said or "is missing (apt-get install" in said:
            unavailable(said.strip().splitlines()[-1])
        raise AssertionError("the compose sandbox did not come up:\n" + said)
    try:
        yield ComposeSandbox(proc, env, host)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def bva(sb: ComposeSandbox, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        env=sb.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def images(sb: ComposeSandbox, service: str) -> list[str]:
    """The images of the service's containers (stable and canary), as the Engine has them."""
    with sb.api() as api:
        rows = api.containers(all=True, filters={"label": f"{L.PROJECT}=bharathva"})
    return sorted(
        str(r["Image"])
        for r in rows
        if r["Labels"].get(L.SERVICE) in (service, service + L.CANARY_SUFFIX)
    )


def test_status_and_logs_of_the_compose_sandbox(sandbox: ComposeSandbox) -> None:
    out = bva(sandbox, "status", "--env", "sandbox")
    assert out.returncode == 0, out.stdout + out.stderr
    for service in ("discovery-service", "auth-service", "user-service", "tweet-service",
                    "gateway-service"):  # fmt: skip
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith(service))
        assert "✔ UP" in line and "Complete" in line
    logs = bva(sandbox, "logs", "--env", "sandbox", "auth-service", "--tail", "3")
    assert logs.returncode == 0, logs.stderr
    # Entries start with their time; a stack trace's lines under an entry belong to it.
    lines = [ln for ln in logs.stdout.splitlines() if ln[:4].isdigit()]
    assert len(lines) >= 3 and all("bharathva-auth-service-" in ln for ln in lines), lines


@pytest.mark.parametrize(
    ("version", "why"),
    [("2.0.0-unhealthy", "error rate"), ("2.0.0-crash", "canary ready")],
)
def test_a_bad_canary_is_aborted_by_its_gates(
    sandbox: ComposeSandbox, version: str, why: str
) -> None:
    before = images(sandbox, "tweet-service")
    out = bva(sandbox, "release", "start", "--env", "sandbox", "--service", "tweet-service",
              "--version", version, *FAST)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "aborted automatically" in out.stdout and why in out.stdout, out.stdout
    # Traffic back on stable: the canary containers are gone, the stable ones untouched.
    assert images(sandbox, "tweet-service") == before
    assert all(image.endswith(":1.0.0") for image in before)


def test_a_rolling_release_and_its_rollback(sandbox: ComposeSandbox) -> None:
    out = bva(sandbox, "release", "start", "--env", "sandbox", "--service", "user-service",
              "--version", "1.2.0", "--strategy", "rolling", "--yes")  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert images(sandbox, "user-service") == ["bharathva/user-service:1.2.0"] * 2
    plan = bva(sandbox, "rollback", "--env", "sandbox", "user-service", "--dry-run")
    assert "image: bharathva/user-service:1.2.0 → bharathva/user-service:1.0.0" in plan.stdout
    # Compose's words: a project has services, not deployments.
    assert "user-service (service/user-service): roll back" in plan.stdout, plan.stdout
    assert "deployment" not in plan.stdout, plan.stdout
    back = bva(sandbox, "rollback", "--env", "sandbox", "user-service", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "user-service: rolled back to revision 1" in back.stdout
    assert images(sandbox, "user-service") == ["bharathva/user-service:1.0.0"] * 2


def test_scale_a_compose_service_up_and_back(sandbox: ComposeSandbox) -> None:
    def running() -> int:
        """user-service's running containers, as the Engine has them."""
        with sandbox.api() as api:
            rows = api.containers(filters={"label": f"{L.PROJECT}=bharathva"})
        return sum(1 for r in rows if r["Labels"].get(L.SERVICE) == "user-service")

    assert running() == 2
    up = bva(sandbox, "scale", "--env", "sandbox", "user-service", "3")
    assert up.returncode == 0, up.stdout + up.stderr
    # Compose's words: a project has services, not deployments.
    assert "scale service/user-service from 2 to 3 replicas in sandbox" in up.stdout, up.stdout
    assert "✔ service/user-service: 3 of 3 replicas ready in" in up.stdout
    assert running() == 3
    refused = bva(sandbox, "scale", "--env", "sandbox", "--read-only", "user-service", "5")
    assert refused.returncode == 1 and "read-only" in refused.stderr, refused.stderr
    assert running() == 3
    down = bva(sandbox, "scale", "--env", "sandbox", "user-service", "2")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "✔ service/user-service: 2 of 2 replicas ready in" in down.stdout
    assert running() == 2


def test_an_engine_already_reachable_is_used_and_left_running(tmp_path: Path) -> None:
    engine = start_dockerd()
    try:
        env = {k: v for k, v in os.environ.items() if k != "BVA_CONFIG"}
        env |= {"BVA_RUNTIME_DIR": str(tmp_path / "run"), "DOCKER_HOST": engine.host,
                "PYTHONUNBUFFERED": "1"}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "sandbox", "--orchestrator", "compose", "--no-db"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"sandbox ready: compose project bharathva on {engine.host} ")
        with engine.client() as api:
            assert len(api.containers(filters={"label": f"{L.PROJECT}=bharathva"})) == 12
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        with engine.client() as api:
            api.ping()  # still up: it was not the sandbox's to stop
            assert api.containers(all=True, filters={"label": f"{L.PROJECT}=bharathva"}) == []
    finally:
        engine.stop()
