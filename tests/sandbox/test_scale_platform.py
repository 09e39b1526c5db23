"""`bva sandbox --scale SxR`: a generated platform of S services of R replicas each."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from backends.config.loader import load_platform
from backends.sandbox.scale_platform import parse_scale, write_scale_platform
from tests.support.sandbox_proc import STOP_GRACE
from tui.cli import main
from tui.sandbox_child import terminate


def test_parse_scale() -> None:
    assert parse_scale("200x10") == (200, 10)
    assert parse_scale("3X2") == (3, 2)
    assert parse_scale(" 1 x 1 ") == (1, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0x3", "services must be 1-1000, got 0"),
        ("3x0", "replicas must be 1-100, got 0"),
        ("1001x1", "services must be 1-1000, got 1001"),
        ("abc", "expected SERVICESxREPLICAS such as 200x10, got 'abc'"),
        ("200", "expected SERVICESxREPLICAS"),
        ("-2x3", "expected SERVICESxREPLICAS"),
    ],
)
def test_parse_scale_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_scale(text)


@pytest.mark.parametrize("value", ["0x3", "abc"])
def test_bad_scale_is_one_line_and_exit_2(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--scale", value, "--no-db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bva: error: argument --scale: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_generated_platform_loads(tmp_path: Path) -> None:
    cfg = load_platform(write_scale_platform(tmp_path / "p.toml", 3, 2))
    assert [s.name for s in cfg.services] == ["svc-000", "svc-001", "svc-002"]
    assert {s.replicas for s in cfg.services} == {2}
    assert len({s.port for s in cfg.services}) == 3


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_bva_sandbox_scale_comes_up_with_that_many_pods(tmp_path: Path) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path / "runtime"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tui", "sandbox", "--scale", "3x2", "--no-db", "--speed", "4"]
    cmd += ["--kubeconfig", str(tmp_path / "kubeconfig")]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        for line in proc.stdout:  # "ready" comes once every deployment is up
            seen.append(line)
            if "sandbox ready" in line:
                break
        ready = seen[-1] if seen else ""
        m = re.search(r"api (\S+) kubeconfig \S+ namespace (\S+) \((\d+) services\)", ready)
        assert m, "".join(seen)
        api, ns = m[1], m[2]
        assert (ns, m[3]) == ("scale", "3")
        deps = _get(f"{api}/apis/apps/v1/namespaces/{ns}/deployments")["items"]
        assert sorted(d["metadata"]["name"] for d in deps) == ["svc-000", "svc-001", "svc-002"]
        assert all(d["status"]["readyReplicas"] == 2 for d in deps)
        pods = _get(f"{api}/api/v1/namespaces/{ns}/pods")["items"]
        assert len(pods) == 6
    finally:
        assert terminate(proc, STOP_GRACE) == 0
