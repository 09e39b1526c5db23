"""A release's plan (phases, holds, gates) and the canary Deployment that carries it.

Canary without a service mesh, as Argo Rollouts' basic canary: `<deployment>-canary` runs the
new version beside the stable Deployment under the same Service; the weight is approximated
by replicas. The release's state lives in the canary's annotations, so any bva sees it."""

from __future__ import annotations

import copy
import json
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from backends.config.loader import PlatformConfig
from backends.metrics.source import MetricSample
from backends.release.models import GateReading, GateResult

CANARY_SUFFIX = "-canary"
P = "bva.io/"
A_RELEASE = P + "release-id"
A_VERSION = P + "version"
A_OWNER = P + "owner"
A_PLAN = P + "plan"
A_PHASE = P + "phase"
A_PHASE_START = P + "phase-start"
A_STATE = P + "state"
A_REASON = P + "reason"
A_COMMAND = P + "command"
A_PASSED = P + "samples-passed"
A_FAILED = P + "samples-failed"
A_GATES = P + "last-gates"
DROP_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubernetes.io/change-cause",
)


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    release_id: str
    version: str
    services: tuple[str, ...]
    strategy: str
    phases: tuple[int, ...]
    holds: tuple[float, ...]
    gate_interval: float
    failure_limit: int
    manual_approval: bool
    progress_deadline: float
    max_error_rate_pct: float
    max_p95_ms: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ReleasePlan:
        data = json.loads(text)
        for key in ("services", "phases", "holds"):
            data[key] = tuple(data[key])
        return cls(**data)


def new_release_id(version: str) -> str:
    return f"r-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def make_plan(
    cfg: PlatformConfig,
    env_name: str,
    services: Sequence[str],
    version: str,
    *,
    strategy: str | None = None,
    holds: Sequence[float] | None = None,
    gate_interval: float | None = None,
    failure_limit: int | None = None,
    manual_approval: bool | None = None,
) -> ReleasePlan:
    rollout = cfg.rollout_for(env_name)
    order = [s.name for s in cfg.services]
    chosen = tuple(sorted(dict.fromkeys(services), key=order.index))
    return ReleasePlan(
        release_id=new_release_id(version),
        version=version,
        services=chosen,
        strategy=strategy or rollout.strategy,
        phases=tuple(rollout.phases),
        holds=tuple(holds if holds is not None else rollout.holds),
        gate_interval=gate_interval or rollout.gate_interval,
        failure_limit=failure_limit or rollout.failure_limit,
        manual_approval=rollout.manual_approval if manual_approval is None else manual_approval,
        progress_deadline=rollout.progress_deadline,
        max_error_rate_pct=cfg.thresholds.error_rate_pct,
        max_p95_ms=cfg.thresholds.p95_ms,
    )


def canary_name(deployment: str) -> str:
    return deployment + CANARY_SUFFIX


def canary_replicas(weight: int, stable_replicas: int) -> int:
    """Set weight approximated by replicas, as Argo's basic canary: ceil(weight x stable)."""
    if weight <= 0:
        return 0
    return max(1, math.ceil(weight / 100 * max(stable_replicas, 1)))


def actual_weight(canary_ready: int, stable_ready: int) -> float:
    total = canary_ready + stable_ready
    return 100.0 * canary_ready / total if total else 0.0


def image_with_tag(image: str, version: str) -> str:
    last = image.rsplit("/", 1)[-1]
    repo = image.rsplit(":", 1)[0] if ":" in last else image
    return f"{repo.split('@', 1)[0]}:{version}"


def canary_manifest(
    stable: dict[str, Any],
    plan: ReleasePlan,
    service: str,
    container: str,
    weight: int,
    owner: str,
    now: float,
) -> dict[str, Any]:
    meta = stable["metadata"]
    spec = copy.deepcopy(stable["spec"])
    labels = {"app": service, "track": "canary"}
    spec["selector"] = {"matchLabels": dict(labels)}
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
    template_meta["labels"].pop("pod-template-hash", None)
    for c in spec["template"]["spec"].get("containers") or []:
        if c.get("name") == container:
            c["image"] = image_with_tag(str(c.get("image", "")), plan.version)
    spec["replicas"] = canary_replicas(weight, int(stable["spec"].get("replicas", 1)))
    spec.pop("paused", None)
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROP_ANNOTATIONS
    }
    annotations.update(release_annotations(plan, owner, phase=0, phase_start=now))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": canary_name(str(meta["name"])),
            "labels": {**(meta.get("labels") or {}), **labels},
            "annotations": annotations,
        },
        "spec": spec,
    }


def release_annotations(
    plan: ReleasePlan, owner: str, *, phase: int, phase_start: float
) -> dict[str, str]:
    return {
        A_RELEASE: plan.release_id,
        A_VERSION: plan.version,
        A_OWNER: owner,
        A_PLAN: plan.to_json(),
        A_PHASE: str(phase),
        A_PHASE_START: f"{phase_start:.3f}",
        A_STATE: "running",
        A_REASON: "",
        A_PASSED: "0",
        A_FAILED: "0",
    }


def evaluate_gates(
    plan: ReleasePlan,
    sample: MetricSample | None,
    *,
    canary_ready: int,
    canary_desired: int,
    new_restarts: int,
) -> tuple[GateReading, ...]:
    readings = []
    rate = sample.error_rate_pct if sample else None
    readings.append(
        GateReading(
            "error rate",
            _judge(rate, plan.max_error_rate_pct),
            rate,
            plan.max_error_rate_pct,
            "%",
            "no requests reached the canary"
            if rate is None
            else f"{sample.errors:.0f} of {sample.requests:.0f} requests failed"
            if sample
            else "",
        )
    )
    p95 = sample.p95_ms if sample else None
    readings.append(
        GateReading("p95 latency", _judge(p95, plan.max_p95_ms), p95, plan.max_p95_ms, "ms")
    )
    ready_ok = canary_desired > 0 and canary_ready >= canary_desired
    readings.append(
        GateReading(
            "canary ready",
            GateResult.PASSED if ready_ok else GateResult.FAILED,
            float(canary_ready),
            float(canary_desired),
            "pods",
            f"{canary_ready}/{canary_desired} canary pods ready",
        )
    )
    readings.append(
        GateReading(
            "restarts",
            GateResult.PASSED if new_restarts == 0 else GateResult.FAILED,
            float(new_restarts),
            0.0,
            "restarts",
            f"{new_restarts} canary restarts in this phase",
        )
    )
    return tuple(readings)


def _judge(value: float | None, limit: float) -> GateResult:
    if value is None:
        return GateResult.INCONCLUSIVE
    return GateResult.PASSED if value < limit else GateResult.FAILED


def round_result(readings: Sequence[GateReading]) -> GateResult:
    results = {r.result for r in readings}
    if GateResult.FAILED in results:
        return GateResult.FAILED
    if GateResult.INCONCLUSIVE in results:
        return GateResult.INCONCLUSIVE
    return GateResult.PASSED


def gates_json(readings: Sequence[GateReading]) -> str:
    return json.dumps(
        [[r.gate, r.result.value, r.value, r.threshold, r.unit] for r in readings],
        separators=(",", ":"),
    )


def gates_from_json(text: str) -> tuple[GateReading, ...]:
    try:
        rows = json.loads(text or "[]")
        return tuple(
            GateReading(str(g), GateResult(res), v, float(t), str(u)) for g, res, v, t, u in rows
        )
    except (ValueError, TypeError):
        return ()
