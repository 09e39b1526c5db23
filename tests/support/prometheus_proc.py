"""Start a real Prometheus (Debian's ``prometheus`` package) for tests, in a temp directory.

A missing binary fails the test loudly: the metrics gates are only proven against the real
query engine, so a machine without it must not pass by skipping.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until

METRICS_PATH = "/actuator/prometheus"


@dataclass
class RunningPrometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result list, evaluated now or ``at`` (raises on an API error)."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        qs = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(targets: list[str], scrape_interval: str, metrics_path: str) -> str:
    # JSON is YAML. honor_labels keeps the app's own labels (pod, track, application) even
    # where they would clash with the ones Prometheus attaches to a target.
    doc = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "bva-services",
                "honor_labels": True,
                "metrics_path": metrics_path,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": targets}],
            }
        ],
    }
    return json.dumps(doc, indent=2)


def start_prometheus(
    tmp_path: Path,
    targets: list[str],
    scrape_interval: str = "1s",
    *,
    metrics_path: str = METRICS_PATH,
    timeout: float = 30.0,
) -> RunningPrometheus:
    """Prometheus scraping ``targets`` (host:port), listening on a free loopback port."""
    binary = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if binary is None:
        pytest.fail(
            "the prometheus binary is required for these tests but is not installed "
            "(apt-get install -y prometheus)"
        )
    home = tmp_path / "prometheus"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(_config(targets, scrape_interval, metrics_path))
    log = home / "prometheus.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Debian's default console paths may not exist; the API does not need them.
        f"--web.console.templates={home}",
        f"--web.console.libraries={home}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=home)
    running = RunningPrometheus(url=url, proc=proc, log=log)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until(ready, timeout, "prometheus to be ready", interval=0.1)
    except AssertionError:
        running.stop()
        pytest.fail(f"prometheus was not ready within {timeout:g}s:\n{_tail(log)}")
    return running


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
