"""Small tools for the benchmarks: a results table, percentiles, /proc readings, generated
platform files and raw-JSON kubernetes clients. Nothing here asserts a threshold."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.config.loader import builtin_platform_path
from backends.sandbox.scale_platform import write_scale_platform

MERGE = "application/merge-patch+json"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


# -- figures --------------------------------------------------------------------------


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of 20 values is the 10th smallest, p99 the 20th)."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(data)))
    return data[min(rank, len(data)) - 1]


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds:.2f} s"


def runs(values: list[float], unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    """The individual runs, for the detail column: 'runs 1.20, 1.31, 1.25 s'."""
    return "runs " + ", ".join(f"{v * scale:.{digits}f}" for v in values) + f" {unit}"


@dataclass
class Row:
    section: str
    metric: str
    value: str
    detail: str = ""


@dataclass
class Table:
    """Rows collected by the benchmark tests, printed once at the end of the module."""

    rows: list[Row] = field(default_factory=list)

    def add(self, section: str, metric: str, value: str, detail: str = "") -> None:
        self.rows.append(Row(section, metric, value, detail))
        print(f"[bench] {section} | {metric}: {value}  {detail}".rstrip(), flush=True)

    def render(self, title: str) -> str:
        if not self.rows:
            return f"{title}: no figures were measured"
        heads = ("section", "metric", "value", "detail")
        cells = [(r.section, r.metric, r.value, r.detail) for r in self.rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

        def line(vals: tuple[str, ...]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()

        rule = "  ".join("-" * w for w in widths)
        out = [title, rule, line(heads), rule]
        last = ""
        for c in cells:
            out.append(line((c[0] if c[0] != last else "", *c[1:])))
            last = c[0]
        out.append(rule)
        return "\n".join(out)


# -- the sandbox process --------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def idle_cpu_pct(pid: int, seconds: float) -> float:
    """CPU used by the process over `seconds` of wall time, as % of one core."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    return 100.0 * (c1 - c0) / (t1 - t0)


def default_platform() -> Path:
    return builtin_platform_path()


def scale_platform(path: Path, services: int, replicas: int, namespace: str = "scale") -> Path:
    """A platform file with `services` services of `replicas` replicas each: what
    `bva sandbox --scale SxR` runs."""
    return write_scale_platform(path, services, replicas, namespace)


# -- the kubernetes client ------------------------------------------------------------


@dataclass
class Kube:
    api_client: Any
    core: Any
    apps: Any

    def close(self) -> None:
        self.api_client.close()


def kube_client(kubeconfig: Path) -> Kube:
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config  # its loaders are unannotated
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    return Kube(api_client, client.CoreV1Api(api_client), client.AppsV1Api(api_client))


def raw(response: Any) -> bytes:
    """The body of a `_preload_content=False` response; the connection goes back to the pool."""
    try:
        data: bytes = response.data
        return data
    finally:
        response.release_conn()


def raw_json(response: Any) -> Any:
    return json.loads(raw(response))


def pod_is_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
