"""A release's plan (phases, holds, gates), the marks its canaries carry, and the gates' math.

Canary without a service mesh, as Argo Rollouts' basic canary: `<workload>-canary` runs the
new version beside the stable workload under the same service; the weight is approximated
by replicas. The release's state lives in the canaries' marks (annotations on Kubernetes),
so any bva sees it."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from backends.config.loader import PlatformConfig
from backends.db.models import DatabasePicture, ServerState
from backends.metrics.source import MetricSample
from backends.release.models import DbStep, GateReading, GateResult, GateTally, StepState
from backends.sanitize import sanitize_text

CANARY_SUFFIX = "-canary"
DB_STEPS = ("backup", "migrate", "verify")
# Values a gate keeps for its sparkline.
HISTORY = 30
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
A_DB = P + "database-steps"


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
    # Added later: a plan written by an older bva lacks them and reads with these defaults.
    max_replication_lag_s: float = 1.0
    max_db_connections_pct: float = 80.0
    min_requests: int = 0  # an older plan has no minimum

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ReleasePlan:
        """The plan a canary carries, checked field by field: it comes from the cluster, where
        anyone with access may have written it. Raises ValueError saying what is wrong."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            raise ValueError("the release plan is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("the release plan is not a JSON object")
        names = {f.name: f.type for f in fields(cls)}
        optional = {f.name for f in fields(cls) if f.default is not MISSING}
        if set(data) - set(names) or set(names) - optional - set(data):
            odd = sorted(set(data) ^ (set(names) - (optional - set(data))))
            raise ValueError(f"the release plan has unexpected or missing fields: {odd}")
        out: dict[str, Any] = {}
        for name, kind in names.items():
            if name not in data:
                continue
            value = data[name]
            if kind == "str":
                ok = isinstance(value, str) and 0 < len(value) <= 253 and value.isprintable()
            elif kind == "bool":
                ok = isinstance(value, bool)
            elif kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif kind == "float":
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                ok = ok and math.isfinite(value) and value >= 0
                value = float(value) if ok else value
            else:  # tuples; a plan may hold nowhere, but it has services and phases
                ok = isinstance(value, list) and (len(value) > 0 or name == "holds")
                ok = ok and len(value) <= 64
                value = tuple(value) if ok else value
            if not ok:
                raise ValueError(f"the release plan's {name} is not valid")
            out[name] = value
        plan = cls(**out)
        if not all(isinstance(s, str) and s.isprintable() and s for s in plan.services):
            raise ValueError("the release plan's services are not valid")
        if not all(isinstance(w, int) and 0 < w <= 100 for w in plan.phases) or (
            list(plan.phases) != sorted(plan.phases) or plan.phases[-1] != 100
        ):
            raise ValueError("the release plan's phases are not ascending weights up to 100")
        if len(plan.holds) > len(plan.phases) or not all(
            isinstance(h, int | float) and math.isfinite(h) and h >= 0 for h in plan.holds
        ):
            raise ValueError("the release plan's holds do not match its phases")
        if plan.strategy not in ("canary", "rolling"):
            raise ValueError(f"the release plan's strategy {plan.strategy!r} is unknown")
        return plan


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
        max_replication_lag_s=cfg.thresholds.replication_lag_s,
        max_db_connections_pct=cfg.thresholds.db_connections_pct,
        min_requests=rollout.min_requests,
    )


def release_target(release_id: str, environment: str) -> str:
    """How the journal names a release, whoever writes the record (driver, console, CLI)."""
    return f"{release_id}@{environment}"


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


def release_marks(
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
    few = too_few_requests(plan, sample)
    if rate is None:
        detail = "no requests reached the canary"
    elif sample is not None:
        detail = f"{sample.errors:.0f} of {sample.requests:.0f} requests failed"
        if few:
            detail += f" (a verdict needs {plan.min_requests})"
    else:
        detail = ""
    verdict = GateResult.INCONCLUSIVE if few else _judge(rate, plan.max_error_rate_pct)
    readings.append(GateReading("error rate", verdict, rate, plan.max_error_rate_pct, "%", detail))
    p95 = sample.p95_ms if sample else None
    verdict = GateResult.INCONCLUSIVE if few else _judge(p95, plan.max_p95_ms)
    readings.append(
        GateReading(
            "p95 latency",
            verdict,
            p95,
            plan.max_p95_ms,
            "ms",
            f"{sample.requests:.0f} requests (a verdict needs {plan.min_requests})"
            if few and sample is not None
            else "",
        )
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


def too_few_requests(plan: ReleasePlan, sample: MetricSample | None) -> bool:
    """The sample has requests, but too few for a verdict on a rate or a percentile (a
    sample with none is "no data", which is another thing)."""
    return sample is not None and 0 < sample.requests < plan.min_requests


def database_gates(plan: ReleasePlan, db: DatabasePicture) -> tuple[GateReading, ...]:
    """The database's gates for one round: the worst replica lag and the primary's share of
    the pool. A server that cannot be read makes its gate Inconclusive: the release waits for
    a human rather than promote blind."""
    replicas = db.replicas
    unread = [r.name for r in replicas if r.state is ServerState.DOWN or r.lag_s is None]
    lags = [r.lag_s for r in replicas if r.lag_s is not None and r.state is not ServerState.DOWN]
    lag = None if unread or not replicas else max(lags)
    if unread:
        lag_detail = f"lag unknown on {', '.join(unread)}"
    elif not replicas:
        lag_detail = "no replica configured"
    else:
        worst = max(replicas, key=lambda r: r.lag_s or 0.0)
        lag_detail = f"worst: {worst.name}"
    lag_gate = GateReading(
        "db replication lag",
        GateResult.PASSED if not replicas else _judge(lag, plan.max_replication_lag_s),
        lag,
        plan.max_replication_lag_s,
        "s",
        lag_detail,
    )
    primary = db.primary
    c = primary.connections if primary is not None else None
    readable = primary is not None and primary.state is not ServerState.DOWN and c is not None
    pct = c.pool_pct if readable and c is not None else None
    limit = plan.max_db_connections_pct
    conn_gate = GateReading(
        "db connections",
        GateResult.INCONCLUSIVE
        if pct is None
        else GateResult.PASSED
        if pct <= limit
        else GateResult.FAILED,
        pct,
        limit,
        "%",
        f"{c.total}/{c.pool_size} of the pool" if readable and c is not None else "primary unread",
    )
    return lag_gate, conn_gate


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


def tallies_json(tallies: Sequence[GateTally]) -> str:
    """Each gate's last reading, pass/fail tally and recent values, for the canary's marks:
    a console watching from another process shows what the driver's own console shows."""
    rows = []
    for t in tallies:
        r = t.last
        last = [r.result.value, r.value, r.threshold, r.unit] if r is not None else None
        history = [round(v, 3) for v in t.history]
        rows.append([t.gate, last, t.passed, t.failed, t.inconclusive, history])
    return json.dumps(rows, separators=(",", ":"))


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def tallies_from_marks(marks: Mapping[str, str]) -> tuple[GateTally, ...]:
    """The gates as a canary's marks carry them; what does not read is left out, and names
    are sanitised here, where they enter from the cluster."""
    try:
        rows = json.loads(marks.get(A_GATES) or "[]")
    except ValueError:
        return ()
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not (isinstance(row, list) and len(row) == 6 and isinstance(row[0], str)):
            continue
        gate, last, passed, failed, inconclusive, history = row
        reading = None
        if isinstance(last, list) and len(last) == 4 and last[0] in GateResult._value2member_map_:
            threshold = _number(last[2])
            reading = GateReading(
                sanitize_text(gate, 40),
                GateResult(last[0]),
                _number(last[1]),
                threshold if threshold is not None else 0.0,
                sanitize_text(str(last[3]), 10),
            )
        values = [
            v for v in map(_number, history if isinstance(history, list) else []) if v is not None
        ]
        out.append(
            GateTally(
                sanitize_text(gate, 40),
                _count(passed),
                _count(failed),
                _count(inconclusive),
                reading,
                tuple(values[-HISTORY:]),
            )
        )
    return tuple(out)


def steps_json(steps: tuple[DbStep, ...]) -> str:
    """The steps for the canaries' marks, so another console shows them after the fact."""
    return json.dumps([[s.name, s.state.value, s.detail] for s in steps], separators=(",", ":"))


def steps_from_json(text: str) -> tuple[DbStep, ...]:
    try:
        rows = json.loads(text or "[]")
    except ValueError:
        return ()
    out = []
    for row in rows if isinstance(rows, list) else []:
        if (
            isinstance(row, list)
            and len(row) == 3
            and row[0] in DB_STEPS
            and row[1] in StepState._value2member_map_
            and isinstance(row[2], str)
        ):
            out.append(DbStep(row[0], StepState(row[1]), sanitize_text(row[2], 300)))
    return tuple(out)
