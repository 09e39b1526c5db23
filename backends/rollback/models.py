"""What a rollback looks like to the screens and `bva rollback`: candidates, the plan (per
service: current and target revision, the template diff, warnings, what is NOT rolled back),
the events of a run and its result. Plain values; the engine (engine.py) makes them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from backends.errors import BvaError
from backends.models import Revision
from backends.release.models import ReleaseView
from backends.rollback.diff import TemplateChange

__all__ = [
    "NOT_ROLLED_BACK",
    "PAUSED_WARNING",
    "RollbackEvent",
    "RollbackPlan",
    "RollbackResult",
    "Rollbacks",
    "ServiceCandidate",
    "ServiceOutcome",
    "ServicePlan",
    "TemplateChange",
    "UnknownService",
]

NOT_ROLLED_BACK: tuple[str, ...] = (
    "ConfigMaps and Secrets the pods read",
    "the database schema and data",
    "Services, Ingresses, autoscalers and other objects",
)
PAUSED_WARNING = "paused: resume it first (kubectl refuses to roll back a paused deployment)"

Action = Literal["rollback", "nothing", "refused"]
Level = Literal["info", "warning", "error"]


class UnknownService(BvaError):
    """A service the platform file does not name."""


@dataclass(frozen=True, slots=True)
class ServiceCandidate:
    service: str
    deployment: str
    revision: int
    image_tag: str
    rollout_text: str
    health: str
    degraded: bool
    reason: str  # why it is degraded ("" when it is not)


@dataclass(frozen=True, slots=True)
class ServicePlan:
    service: str
    deployment: str
    action: Action
    current: Revision
    target: Revision | None
    history: tuple[Revision, ...]
    changes: tuple[TemplateChange, ...]
    warnings: tuple[str, ...]
    message: str
    paused: bool
    ref: str = ""  # the workload as its orchestrator's users write it ("deployment/x")

    @property
    def workload(self) -> str:
        return self.ref or f"deployment/{self.deployment}"


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    environment: str
    services: tuple[ServicePlan, ...]  # in execution order
    release: ReleaseView | None  # the release in progress that blocks this rollback
    lock_holder: str | None  # "who since when" while another live driver holds the lock
    not_rolled_back: tuple[str, ...] = NOT_ROLLED_BACK
    # The database since the target revision (migrations after it, backups before them):
    # rolling back services never touches it; `bva db restore` is its own guarded step.
    database: tuple[str, ...] = ()

    def confirmation_text(self) -> str:
        """What the engineer types to confirm: ``<service>@<env>`` for one service, the
        environment's name for several."""
        if len(self.services) == 1:
            return f"{self.services[0].service}@{self.environment}"
        return self.environment

    @property
    def actionable(self) -> bool:
        """True when at least one service would be changed."""
        return any(sp.action == "rollback" for sp in self.services)


@dataclass(frozen=True, slots=True)
class RollbackEvent:
    ts: float
    service: str  # "" for the rollback as a whole (lock, release abort)
    text: str
    level: str  # info | warning | error


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    service: str
    outcome: str  # "rolled back to revision 2 (now revision 4)", "nothing to do", "failed: …"
    ok: bool
    duration_s: float


@dataclass(frozen=True, slots=True)
class RollbackResult:
    ok: bool
    outcomes: tuple[ServiceOutcome, ...]
    started: float
    finished: float
    journal: str  # the journal file ("" without a journal)

    @property
    def duration_s(self) -> float:
        return max(self.finished - self.started, 0.0)


class Rollbacks(Protocol):
    """The rollback engine as the screens and `bva rollback` drive it (engine.py's
    RollbackEngine is the one; screen snapshots use a stand-in)."""

    @property
    def environment(self) -> str: ...

    async def candidates(self) -> list[ServiceCandidate]: ...

    async def plan(
        self,
        services: Sequence[str],
        to_revision: int | None = None,
        *,
        order: Sequence[str] | None = None,
    ) -> RollbackPlan: ...

    async def execute(
        self,
        plan: RollbackPlan,
        *,
        resume_paused: bool = False,
        abort_release: bool = False,
        on_event: Callable[[RollbackEvent], None] | None = None,
    ) -> RollbackResult: ...
