"""`--sandbox`: the embedded sandbox in a child process, so the simulated cluster never
competes with the UI's event loop, torn down with its parent whatever way the parent ends."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.sandbox.state import SandboxState, ready_timeout

PR_SET_PDEATHSIG = 1
# For the child's interpreter to start and bind its ports, on top of the sandbox's own limit
# for its platform to come up (past which it exits and says why).
BOOT_S = 30.0


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the child if the parent dies, even by SIGKILL.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedSandbox:
    def __init__(
        self, config: str | None = None, *, speed: float = 1.0, orchestrator: str = "kubernetes"
    ) -> None:
        self._config = config
        self._speed = speed
        self._orchestrator = orchestrator
        # A private runtime dir: an embedded sandbox never collides with `bva sandbox`.
        self._dir = Path(tempfile.mkdtemp(prefix="bva-embedded-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = self._dir / "sandbox.log"

    def start(self, timeout: float | None = None) -> SandboxState:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the child without waiting, so the UI can draw its first frame meanwhile."""
        cmd = [sys.executable, "-m", "tui"]
        if self._config:
            cmd += ["--config", self._config]
        cmd += [
            "sandbox",
            "--kubeconfig",
            str(self._dir / "kubeconfig"),
            "--speed",
            str(self._speed),
            "--orchestrator",
            self._orchestrator,
        ]
        env = {**os.environ, "BVA_RUNTIME_DIR": str(self._dir)}
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout: float | None = None) -> SandboxState:
        """The sandbox once it has announced itself, which it does when its platform is up."""
        assert self._proc is not None, "launch() first"
        if timeout is None:
            timeout = BOOT_S + ready_timeout(self._speed)
        state_file = self._dir / "sandbox.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError("the embedded sandbox exited: " + " ".join(tail))
            if state_file.exists():
                import json

                try:
                    return SandboxState(**json.loads(state_file.read_text()))
                except ValueError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the embedded sandbox did not start within {timeout:.0f}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, 5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedSandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def terminate(proc: subprocess.Popen[Any], grace: float) -> int:
    """SIGTERM, up to ``grace`` seconds to finish, then SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
