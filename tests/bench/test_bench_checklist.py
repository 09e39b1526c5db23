"""The checklist benchmark: the full pre-deploy checklist's wall time against a sandbox where
10 % of the services' health endpoints hang (accept the connection, never answer), against
the slowest single check's timeout. The checks run side by side, each bounded by
`[checklist] check_timeout`, so the target is at most 1.2x that timeout, not the sum.

Printed figures, never asserted thresholds. Run with

    cd /work/main && python -m pytest -m bench -s -n0 tests/bench/test_bench_checklist.py

A sandbox (speed 1, no database) serves a generated platform of `SERVICES` services with
`REPLICAS` replicas each. Round A: every endpoint answers. Then `HUNG` of the Deployments are
set with kubectl to an image tagged `hang` (the sandbox's wedged app: its health endpoints
never answer) and rolled out. Round B: the same checklist. Each round runs the checklist
`ROUNDS` times in this process (`ChecklistRunner.run`, the code `bva check` and the Checklist
screen run) and once as `bva check --json` (the headless command, process start included).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.checklist.engine import ChecklistRunner
from backends.checklist.models import ChecklistReport
from backends.config.loader import load_platform
from backends.journal.store import Journal
from backends.platform import open_platform
from tests.bench.helpers import Table, median, scale_platform
from tests.support.sandbox_proc import RunningSandbox, start_sandbox

pytestmark = pytest.mark.bench

SERVICES = int(os.environ.get("BVA_BENCH_CHECKLIST_SERVICES", "20"))
REPLICAS = 2
HUNG = max(1, SERVICES // 10)
ROUNDS = 3
VERSION = "1.0.1"
TABLE = Table()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[RunningSandbox, Path]]:
    config = scale_platform(tmp_path / "checklist.toml", SERVICES, REPLICAS, "checklist")
    sb = start_sandbox(tmp_path / "sbx", speed=1.0, config=config, timeout=120.0)
    try:
        yield sb, config
    finally:
        sb.stop()
        print(TABLE.render("checklist with hanging health endpoints"))


def kubectl(sb: RunningSandbox, *args: str) -> str:
    out = subprocess.run(
        ["kubectl", "-n", sb.namespace, *args],
        env=sb.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return out.stdout


async def run_rounds(config: Path, tmp: Path) -> tuple[list[float], ChecklistReport]:
    platform = open_platform(load_platform(config), "sandbox", read_only=True)
    try:
        engine = ChecklistRunner(platform, Journal(tmp / "journal.jsonl", "sandbox"))
        walls: list[float] = []
        report = None
        for _ in range(ROUNDS):
            t = time.perf_counter()
            report = await engine.run(VERSION)
            walls.append(time.perf_counter() - t)
        assert report is not None
        return walls, report
    finally:
        await platform.aclose()


def cli_wall(sb: RunningSandbox, config: Path) -> float:
    env = {k: v for k, v in sb.env.items() if k != "BVA_CONFIG"}
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(config), "check", "--env", "sandbox",
         "--version", VERSION, "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return time.perf_counter() - t


def record(
    section: str, walls: list[float], report: ChecklistReport, cli: float, timeout: float
) -> None:
    slowest = max(report.results, key=lambda r: r.duration_s or 0.0)
    TABLE.add(section, "checklist wall, median of 3 (in process)", f"{median(walls):.2f} s",
              f"{median(walls) / timeout:.2f}x the {timeout:g} s check timeout")  # fmt: skip
    TABLE.add(section, "bva check --json (process start included)", f"{cli:.2f} s")
    TABLE.add(section, "slowest check", f"{slowest.duration_s or 0:.2f} s",
              f"{slowest.title}: {slowest.state.value}")  # fmt: skip
    services = next(r for r in report.results if r.item == "resources")
    TABLE.add(section, "services check", services.state.value, services.evidence[:90])
    print(f"[bench] {section}: walls {[round(w, 2) for w in walls]}, cli {cli:.2f} s", flush=True)


def test_checklist_with_hanging_health_endpoints(
    sandbox: tuple[RunningSandbox, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb, config = sandbox
    monkeypatch.setenv("BVA_RUNTIME_DIR", sb.env["BVA_RUNTIME_DIR"])
    monkeypatch.setenv("KUBECONFIG", sb.env["KUBECONFIG"])
    cfg = load_platform(config)
    timeout = cfg.checklist.check_timeout
    for i in range(SERVICES):
        kubectl(sb, "rollout", "status", f"deployment/svc-{i:03d}", "--timeout=120s")

    walls, report = asyncio.run(run_rounds(config, tmp_path))
    record("A. every endpoint answers", walls, report, cli_wall(sb, config), timeout)

    hung = [f"svc-{i:03d}" for i in range(0, SERVICES, SERVICES // HUNG)][:HUNG]
    for name in hung:
        kubectl(sb, "set", "image", f"deployment/{name}", f"{name}=bench/{name}:1.0.0-hang")
    for name in hung:
        kubectl(sb, "rollout", "status", f"deployment/{name}", "--timeout=120s")
    walls, report = asyncio.run(run_rounds(config, tmp_path))
    section = f"B. {len(hung)} of {SERVICES} services hang ({100 * len(hung) // SERVICES} %)"
    record(section, walls, report, cli_wall(sb, config), timeout)
    services = next(r for r in report.results if r.item == "resources")
    # What it times happened: the hanging services were probed and not taken for UP.
    assert services.state.value != "pass", services
