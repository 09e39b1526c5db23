"""A private Docker Engine: Debian's dockerd and its own containerd, on their own sockets,
data root and exec root under a short /tmp directory (a unix socket path must stay under 108
bytes), without iptables or the default bridge so that two of them never fight over the
host's networking. Published ports still work (docker-proxy), on 127.0.0.1. containerd runs
as its own service, so the engine can be killed and started again under running containers.

The compose sandbox runs its containers on one; the tests start their own."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class EngineUnavailable(Exception):
    """No private engine can run here (not root, no dockerd); ``str()`` is one line."""


@dataclass
class Dockerd:
    proc: subprocess.Popen[bytes]
    root: Path
    containerd: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def client(self) -> Any:
        import docker

        return docker.APIClient(base_url=self.host, timeout=60)

    def log(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (the engine stops its containers), then containerd, any shim left, and
        the data root."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.containerd.terminate()
        try:
            self.containerd.wait(10)
        except subprocess.TimeoutExpired:
            self.containerd.kill()
            self.containerd.wait(5)
        for pid in _processes_naming(str(self.root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # a shim of a container killed with the engine
        # What an engine that was killed may leave mounted: its overlays and network namespaces.
        for sub in ("data", "x"):
            subprocess.run(["umount", "-R", str(self.root / sub)], capture_output=True, check=False)
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split(" ")[1] if " " in line else ""
            if target.startswith(str(self.root)):
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """The engine dies under whoever is using it (containerd and the containers run on)."""
        self.proc.kill()
        self.proc.wait(5)


def _processes_naming(text: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
    return out


def start_dockerd(timeout: float = 60.0) -> Dockerd:
    for tool in ("dockerd", "containerd"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(
                f"{tool} is not installed (apt-get install docker.io busybox-static)"
            )
    if os.geteuid() != 0:
        raise EngineUnavailable("a private Docker Engine needs root")
    root = Path(tempfile.mkdtemp(prefix="bvad-", dir="/tmp"))
    (root / "x").mkdir()
    # containerd of its own, as its own service: the engine can be killed and started again
    # under running containers (docker.service restarting while containerd.service runs on).
    config = root / "containerd.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{root}/containerd"\n'
        f'state = "{root}/x/cstate"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\naddress = "{root}/x/containerd.sock"\n'
        f'[ttrpc]\naddress = "{root}/x/containerd.sock.ttrpc"\n'
        f'[debug]\naddress = "{root}/x/containerd-debug.sock"\n'
        '[metrics]\naddress = ""\n'
    )
    log = (root / "containerd.log").open("ab")
    containerd = subprocess.Popen(
        ["containerd", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not (root / "x" / "containerd.sock").exists():
        if containerd.poll() is not None or time.monotonic() > deadline:
            containerd.kill()
            text = (root / "containerd.log").read_text()[-2000:]
            raise EngineUnavailable(f"containerd did not start:\n{text}")
        time.sleep(0.05)
    engine = _launch(root, containerd, timeout)
    return engine


def restart(engine: Dockerd, timeout: float = 60.0) -> Dockerd:
    """The same engine (data root, socket, containerd) started again after ``kill``."""
    back = _launch(engine.root, engine.containerd, timeout)
    engine.proc = back.proc
    return engine


def _launch(root: Path, containerd: subprocess.Popen[bytes], timeout: float) -> Dockerd:
    binary = shutil.which("dockerd")
    assert binary is not None
    # A /16 of its own per engine: two engines' project networks never overlap.
    pool = f"base=10.{random.randint(100, 250)}.0.0/16,size=24"
    cmd = [
        binary,
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "x" / "docker"),
        "--pidfile", str(root / "dockerd.pid"),
        "--containerd", str(root / "x" / "containerd.sock"),
        "-H", f"unix://{root}/docker.sock",
        "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--default-address-pool", pool,
        "--log-level", "warn",
    ]  # fmt: skip
    log = (root / "dockerd.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Dockerd(proc, root, containerd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineUnavailable(f"dockerd exited with {proc.returncode}:\n{engine.log()}")
        try:
            with engine.client() as api:
                api.ping()
            return engine
        except Exception:
            time.sleep(0.1)
    engine.stop()
    raise EngineUnavailable(f"dockerd did not answer in {timeout:.0f}s:\n{engine.log()}")
