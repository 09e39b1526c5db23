"""Where a running `bva sandbox` announces itself, so other bva commands find it as the
environment `sandbox` with no flags. Shared by the sandbox (writer) and the platform (reader);
it imports neither."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

STATE_FILE = "sandbox.json"


class _HasEnvironments(Protocol):
    @property
    def environments(self) -> Mapping[str, Any]: ...


def sandbox_environment(cfg: _HasEnvironments) -> str:
    """The platform file's sandbox environment (the one marked ``sandbox = true``)."""
    for name, env in cfg.environments.items():
        if getattr(env, "sandbox", False):
            return name
    return "sandbox"


def runtime_dir() -> Path:
    override = os.environ.get("BVA_RUNTIME_DIR")
    if override:
        path = Path(override)
    else:
        import platformdirs

        path = Path(platformdirs.user_runtime_dir("bva"))
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        path = Path(tempfile.gettempdir()) / f"bva-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


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


def state_path() -> Path:
    return runtime_dir() / STATE_FILE


def _alive(pid: int) -> bool:
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
    if not _alive(state.pid):
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
