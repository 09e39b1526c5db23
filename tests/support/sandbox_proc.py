"""Start a real `bva sandbox` in a child process for tests, isolated in its own runtime dir."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.sandbox.state import STATE_FILE, SandboxState
from tests.support.waiting import wait_until
from tui.sandbox_child import terminate

# Seconds a sandbox (or a benchmark's writer) gets to finish after SIGTERM.
STOP_GRACE = 10.0


@dataclass
class RunningSandbox:
    proc: subprocess.Popen[str]
    kubeconfig: Path
    api_url: str
    namespace: str
    runtime_dir: Path
    services: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Environment for child processes (kubectl, bva) that should see this sandbox."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "BVA_RUNTIME_DIR": str(self.runtime_dir),
        }

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.api_url}/sandbox/v1/stats", timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def stop_api(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: not _reachable(self.api_url), 5, "sandbox API to go down")

    def start_api(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)
        wait_until(lambda: _reachable(self.api_url), 5, "sandbox API to come back")

    def stop(self) -> int:
        return terminate(self.proc, STOP_GRACE)


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=1):
            return True
    except OSError:
        return False


def read_sandbox_state(runtime_dir: Path) -> SandboxState:
    """The state file a sandbox wrote to ``runtime_dir``, as the platform reads it.

    Not ``backends.sandbox.state.read_state``: that one finds the runtime dir from this
    process's environment, and removes the file of a sandbox that has died."""
    return SandboxState(**json.loads((runtime_dir / STATE_FILE).read_text()))


def start_sandbox(
    tmp: Path,
    *,
    speed: float = 4.0,
    seed: int = 7,
    config: Path | None = None,
    timeout: float = 30.0,
    log_dir: Path | None = None,
    database: bool = False,
) -> RunningSandbox:
    """A `bva sandbox` process; without ``database`` it runs no PostgreSQL (``--no-db``), so
    the tests that only need the cluster stay quick."""
    runtime = tmp / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    kubeconfig = tmp / "kubeconfig"
    cmd = [
        sys.executable,
        "-m",
        "tui",
        "sandbox",
        "--kubeconfig",
        str(kubeconfig),
        "--speed",
        str(speed),
        "--seed",
        str(seed),
    ]
    if config is not None:
        cmd[3:3] = ["--config", str(config)]
    if log_dir is not None:
        cmd += ["--log-dir", str(log_dir)]
    if not database:
        cmd.append("--no-db")
    env = {**os.environ, "BVA_RUNTIME_DIR": str(runtime), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    ready = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "sandbox ready" in line:
            ready = line
            break
    if ready is None:
        proc.kill()
        rest = proc.stdout.read() if proc.stdout else ""
        raise RuntimeError("sandbox did not start:\n" + "\n".join(lines) + rest)
    m = re.search(r"api (\S+) kubeconfig (\S+) namespace (\S+)", ready)
    assert m, ready
    state = read_sandbox_state(runtime)
    return RunningSandbox(
        proc=proc,
        kubeconfig=Path(m.group(2)),
        api_url=m.group(1),
        namespace=m.group(3),
        runtime_dir=runtime,
        services=dict(state.services),
        output=lines,
    )
