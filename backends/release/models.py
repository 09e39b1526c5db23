"""What a release looks like to the screens and to `bva release status`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from backends.db.models import Migration


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


class StepState(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self in (StepState.DONE, StepState.SKIPPED)


@dataclass(frozen=True, slots=True)
class DbStep:
    """One of the database steps (backup, migrate, verify) a release runs first."""

    name: str  # backup | migrate | verify
    state: StepState = StepState.WAITING
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DatabasePlan:
    """What the release will do to the database, read before it starts."""

    pending: tuple[Migration, ...]
    latest: str | None  # the newest applied version
    problems: tuple[str, ...]  # what `flyway validate` fails on today
    freshest: tuple[str, float] | None  # the newest verified backup there: (name, taken at)
    rpo_s: float
    no_backup_reason: str | None = None  # --no-backup --reason TEXT

    @property
    def target(self) -> str | None:
        versions = [m.version for m in self.pending if m.version is not None]
        return versions[-1] if versions else self.latest

    @property
    def span(self) -> str:
        return f"{version_words(self.latest)} → {version_words(self.target)}"

    def lines(self, now: float) -> list[str]:
        """The step as the plan shows it, short enough for the console's 80-column form."""
        names = ", ".join(f"V{m.version} {m.description}" for m in self.pending[:3])
        more = f" +{len(self.pending) - 3}" if len(self.pending) > 3 else ""
        out = [f"database: {self.span} ({len(self.pending)} pending: {names}{more})"]
        if self.no_backup_reason is not None:
            out.append(f"  1 backup   SKIPPED: {self.no_backup_reason}")
        else:
            out.append("  1 backup   pg_dump -Fc, verified")
        out.append("  2 migrate  flyway; a failure stops here")
        out.append(f"  3 verify   history clean, at {version_words(self.target)}")
        out.append("  then the services' phases")
        if self.freshest is not None:
            name, taken_at = self.freshest
            age = int(max(0.0, now - taken_at) // 60)
            out.append(f"  last backup {age} min ago: {name}")
        return out


def version_words(version: str | None) -> str:
    return f"V{version}" if version else "nothing applied"


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
    database: tuple[DbStep, ...] = ()  # the release's database steps; () when it has none

    @property
    def database_busy(self) -> bool:
        """The database steps are not all through: the service phases have not begun."""
        return bool(self.database) and not all(s.state.finished for s in self.database)

    @property
    def weight(self) -> int:
        return self.phases[self.phase_index] if self.phases else 100

    def hold_left(self, now: float) -> float | None:
        if self.phase_index >= len(self.holds):
            return None
        return max(self.holds[self.phase_index] - (now - self.phase_started), 0.0)
