"""What a release looks like to the screens and to `bva release status`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ReleaseState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    AWAITING_APPROVAL = "awaiting approval"
    PROMOTING = "promoting"
    FINISHED = "finished"
    ABORTED = "aborted"
    FAILED = "failed"
    DRIVER_LOST = "driver lost"

    @property
    def over(self) -> bool:
        return self in (ReleaseState.FINISHED, ReleaseState.ABORTED, ReleaseState.FAILED)


class GateResult(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class GateReading:
    """One gate at one sample: its value against its threshold."""

    gate: str  # "error rate", "p95 latency", "canary ready", "restarts"
    result: GateResult
    value: float | None
    threshold: float
    unit: str  # "%", "ms", "pods", "restarts"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GateTally:
    gate: str
    passed: int
    failed: int
    inconclusive: int
    last: GateReading | None
    history: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceProgress:
    service: str
    deployment: str
    stable_ready: int
    stable_desired: int
    canary_ready: int
    canary_desired: int
    canary_restarts: int
    set_weight: int
    actual_weight: float
    gates: tuple[GateTally, ...] = ()


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    ts: float
    text: str
    service: str = ""
    level: str = "info"  # info | warning | error


@dataclass(frozen=True, slots=True)
class ReleaseView:
    release_id: str
    version: str
    owner: str
    strategy: str
    services: tuple[str, ...]
    phases: tuple[int, ...]
    holds: tuple[float, ...]
    phase_index: int
    phase_started: float
    state: ReleaseState
    reason: str
    samples_passed: int
    samples_failed: int
    failure_limit: int
    gate_interval: float
    next_sample_at: float | None
    progress: tuple[ServiceProgress, ...] = ()
    timeline: tuple[TimelineEntry, ...] = field(default=())
    driver_alive: bool = True

    @property
    def weight(self) -> int:
        return self.phases[self.phase_index] if self.phases else 100

    def hold_left(self, now: float) -> float | None:
        if self.phase_index >= len(self.holds):
            return None
        return max(self.holds[self.phase_index] - (now - self.phase_started), 0.0)
