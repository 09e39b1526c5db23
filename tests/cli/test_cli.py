"""The command line as a user meets it: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sandbox_proc import RunningSandbox


def bva(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        cwd=cwd,
        timeout=timeout,
    )


def test_version_and_help() -> None:
    out = bva("--version")
    assert out.returncode == 0 and out.stdout.startswith("bva ")
    out = bva("--help")
    assert out.returncode == 0
    assert "sandbox" in out.stdout and "config" in out.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--bogus",), "unrecognized arguments: --bogus"),
        (("sandbox", "--speed", "fast"), "expected a number"),
        (("sandbox", "--speed", "0"), "must be greater than 0"),
        (("sandbox", "--port", "99999"), "expected a port number"),
        (("config", "check", "/no/such/file.toml"), "/no/such/file.toml: file not found"),
        (("--config", "/no/such.toml", "sandbox"), "/no/such.toml: file not found"),
        (("config",), "config needs an action"),
        (("nonsense",), "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], needle: str) -> None:
    out = bva(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle in lines[0]
    assert "Traceback" not in out.stderr


def test_config_check_builtin_and_malformed(tmp_path: Path) -> None:
    out = bva("config", "check")
    assert out.returncode == 0
    assert "BharathVA" in out.stdout and "auth-service" in out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[environments.prod]\norchestrator = "nomad"\nnamespace = "a"\n'
        '[[services]]\nname = "a"\nimage = "r/a"\nport = 1\n'
    )
    out = bva("config", "check", str(bad))
    assert out.returncode == 2
    assert "bad.toml: environments.prod.orchestrator" in out.stderr
    assert "Traceback" not in out.stderr


def test_config_from_env_var_and_cwd(tmp_path: Path) -> None:
    custom = tmp_path / "bva.toml"
    text = (
        Path("backends/config/platforms/bharathva.toml")
        .read_text()
        .replace('name = "BharathVA"', 'name = "Elsewhere"')
    )
    custom.write_text(text)
    out = bva("config", "check", cwd=tmp_path, env={**os.environ, "BVA_CONFIG": ""})
    assert "Elsewhere" in out.stdout
    out = bva("config", "check", env={**os.environ, "BVA_CONFIG": str(custom)})
    assert "Elsewhere" in out.stdout


def test_second_sandbox_is_refused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(sandbox.runtime_dir)}
    out = bva("sandbox", "--kubeconfig", str(tmp_path / "kc"), env=env, timeout=30)
    assert out.returncode == 1
    assert "a sandbox is already running" in out.stderr
    assert str(sandbox.proc.pid) in out.stderr


def test_sandbox_stops_cleanly_on_sigterm(sandbox: RunningSandbox) -> None:
    state = sandbox.runtime_dir / "sandbox.json"
    assert state.exists() and sandbox.kubeconfig.exists()
    assert sandbox.stop() == 0
    assert not state.exists()
