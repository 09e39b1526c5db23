"""Where a sandbox announces itself: private to the user, and found without a word on stderr
where there is no session runtime dir (root over SSH, containers, CI)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from backends.sandbox.state import runtime_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_status_without_xdg_runtime_dir_says_only_that_no_sandbox_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "BVA_RUNTIME_DIR")}
    # Warnings shown whatever the caller's filters, and a temporary directory of the test's own.
    env.update(PYTHONWARNINGS="default", TMPDIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "tui", "status", "--env", "sandbox"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "RuntimeDirWarning" not in out.stderr
    assert "XDG_RUNTIME_DIR" not in out.stderr
    assert out.returncode == 3, out.stderr  # a source unreachable: there is no sandbox
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no sandbox is running" in lines[0], out.stderr
    state_dir = tmp_path / f"bva-{os.getuid()}"
    assert state_dir.is_dir() and _mode(state_dir) == 0o700


@pytest.fixture
def no_runtime_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BVA_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_the_override_wins(no_runtime_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BVA_RUNTIME_DIR", str(no_runtime_env / "mine"))
    assert runtime_dir() == no_runtime_env / "mine"


def test_a_session_runtime_dir_is_used(
    no_runtime_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = no_runtime_env / "run-user"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime_dir() == xdg / "bva"
    assert _mode(xdg / "bva") == 0o700


def test_a_loose_temporary_dir_of_ours_is_made_private(no_runtime_env: Path) -> None:
    mine = no_runtime_env / f"bva-{os.getuid()}"
    mine.mkdir()
    mine.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime_dir() == mine
    assert _mode(mine) == 0o700


def test_a_temporary_name_held_by_a_symlink_is_never_used(no_runtime_env: Path) -> None:
    elsewhere = no_runtime_env / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    (no_runtime_env / f"bva-{os.getuid()}").symlink_to(elsewhere)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = runtime_dir()
    assert chosen == no_runtime_env / "state" / "bva"
    assert _mode(chosen) == 0o700
