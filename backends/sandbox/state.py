"""Where a running `bva sandbox` announces itself, so other bva commands find it as the
environment `sandbox` with no flags. Shared by the sandbox (writer) and the platform (reader);
it imports neither."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

STATE_FILE = "sandbox.json"
# A sandbox announces itself once its platform is up, about a second after it starts at the
# default speed; past this long (stretched for a slower simulation) it gives up instead.
READY_TIMEOUT_S = 30.0


class _HasEnvironments(Protocol):
    @property
    def environments(self) -> Mapping[str, Any]: ...


def sandbox_environment(cfg: _HasEnvironments) -> str:
    """The platform file's sandbox environment (the one marked ``sandbox = true``)."""
    for name, env in cfg.environments.items():
        if getattr(env, "sandbox", False):
            return name
    return "sandbox"


def ready_timeout(speed: float) -> float:
    """Seconds a sandbox running at ``speed`` may take for its platform to come up."""
    return READY_TIMEOUT_S / min(speed, 1.0)


def runtime_dir() -> Path:
    """The user's private (0700) directory for the state file and the sandbox's kubeconfig.

    ``$BVA_RUNTIME_DIR`` wins, then ``$XDG_RUNTIME_DIR/bva``. Without a session's runtime dir
    (root over SSH, containers, CI) it is ``bva-<uid>`` in the temporary directory: like a
    runtime dir it is emptied at boot, so a recorded pid never outlives its machine, and
    platformdirs is not asked, because there it prints a RuntimeDirWarning."""
    override = os.environ.get("BVA_RUNTIME_DIR")
    if override:
        path = Path(override)
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            return path
        except OSError:
            pass
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(xdg) and _owned_dir(Path(xdg)) and _private_dir(Path(xdg) / "bva"):
        return Path(xdg) / "bva"
    path = Path(tempfile.gettempdir()) / f"bva-{os.getuid()}"
    if _private_dir(path):
        return path
    # Another user holds that name in the shared temporary directory: never write there.
    import platformdirs

    path = Path(platformdirs.user_state_dir("bva"))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _owned_dir(path: Path) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def _private_dir(path: Path) -> bool:
    """Whether ``path`` is (now) a real directory of ours that only we can enter."""
    try:
        path.mkdir(exist_ok=True, mode=0o700)
        if not _owned_dir(path):
            return False
        if stat.S_IMODE(path.lstat().st_mode) & 0o077:
            # Ours, so no one else can swap it in a sticky /tmp: tightening it is safe.
            path.chmod(0o700)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class SandboxState:
    pid: int
    api_url: str
    kubeconfig: str
    namespace: str
    context: str
    services: dict[str, str] = field(default_factory=dict)
    platform: str = ""
    started: float = 0.0
    # The sandbox's PostgreSQL, when it runs one: {"url": "file:…", "replicas": ["file:…"],
    # "pool_size": N, "migrations": DIR, "data_dir": DIR}; the DSN files are 0600.
    database: dict[str, object] | None = None
    # A compose sandbox: its project on its (private) Docker Engine; api_url and kubeconfig
    # are then "".
    orchestrator: str = "kubernetes"
    docker_host: str = ""
    project: str = ""


def state_path() -> Path:
    return runtime_dir() / STATE_FILE


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state() -> SandboxState | None:
    """The running sandbox, or None; a state file left by a dead sandbox is removed."""
    path = state_path()
    try:
        data = json.loads(path.read_text())
        state = SandboxState(**data)
    except (OSError, ValueError, TypeError):
        return None
    if not pid_alive(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def write_state(state: SandboxState) -> Path:
    path = state_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(path)
    return path


def remove_state(pid: int) -> None:
    current = read_state()
    if current is not None and current.pid == pid:
        state_path().unlink(missing_ok=True)
