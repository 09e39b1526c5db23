"""A rollback engine stand-in with canned plans, for the wizard's snapshots and Pilot tests.
Same attribute names as backends.rollback's models; the real engine is tested against the
sandbox in tests/backends/test_rollback.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.models import Revision
from tests.support.fake_platform import NOW

NOT_ROLLED_BACK = (
    "ConfigMaps and Secrets the pods read",
    "the database schema and data",
    "Services, Ingresses, autoscalers and other objects",
)


@dataclass(frozen=True)
class Candidate:
    service: str
    deployment: str
    revision: int
    image_tag: str
    rollout_text: str
    health: str
    degraded: bool
    reason: str


@dataclass(frozen=True)
class Change:
    container: str
    field: str
    current: str
    target: str


@dataclass(frozen=True)
class SPlan:
    service: str
    deployment: str
    action: str
    current: Revision
    target: Revision | None
    history: tuple[Revision, ...]
    changes: tuple[Change, ...]
    warnings: tuple[str, ...]
    message: str
    paused: bool = False


@dataclass(frozen=True)
class Plan:
    environment: str
    services: tuple[SPlan, ...]
    release: Any = None
    lock_holder: str | None = None
    not_rolled_back: tuple[str, ...] = NOT_ROLLED_BACK

    def confirmation_text(self) -> str:
        if len(self.services) == 1:
            return f"{self.services[0].service}@{self.environment}"
        return self.environment


@dataclass(frozen=True)
class Event:
    ts: float
    service: str
    text: str
    level: str = "info"


@dataclass(frozen=True)
class Outcome:
    service: str
    outcome: str
    ok: bool
    duration_s: float


@dataclass(frozen=True)
class Result:
    ok: bool
    outcomes: tuple[Outcome, ...]
    started: float
    finished: float
    journal: str


def _rev(n: int, tag: str, cause: str, age: float, current: bool = False) -> Revision:
    return Revision(
        revision=n,
        replicaset=f"tweet-service-{n}abc",
        images={"tweet-service": f"bharathva/tweet-service:{tag}"},
        change_cause=cause,
        created=NOW - age,
        replicas=2 if current else 0,
        is_current=current,
    )


HISTORY = (
    _rev(1, "1.0.0", "initial release 1.0.0", 86400 * 3),
    _rev(2, "1.1.0", "bva release r-1: 1.1.0", 86400),
    _rev(3, "2.0.0-crash", "bva release r-2: 2.0.0-crash", 600, current=True),
)


@dataclass
class FakeRollbackEngine:
    environment: str = "sandbox"
    executed: list[tuple[Plan, bool, bool]] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def candidates(self) -> list[Candidate]:
        return [
            Candidate(
                "tweet-service",
                "tweet-service",
                3,
                "2.0.0-crash",
                "Failed: deadline exceeded",
                "UP",
                True,
                "rollout failed: exceeded its progress deadline",
            ),
            Candidate(
                "discovery-service", "discovery-service", 1, "1.0.0", "Complete", "UP", False, ""
            ),
            Candidate("auth-service", "auth-service", 2, "1.1.0", "Complete", "UP", False, ""),
        ]

    async def plan(self, services: Sequence[str], to_revision: int | None = None) -> Plan:
        plans = []
        for svc in services:
            target_n = to_revision or 2
            target = next((r for r in HISTORY if r.revision == target_n), None)
            if target is None:
                plans.append(
                    SPlan(
                        svc,
                        svc,
                        "refused",
                        HISTORY[2],
                        None,
                        HISTORY,
                        (),
                        (),
                        f"unable to find specified revision {target_n} in history",
                    )
                )
                continue
            changes = (
                Change(
                    svc,
                    "image",
                    "bharathva/tweet-service:2.0.0-crash",
                    target.images["tweet-service"],
                ),
                Change(svc, "env FEATURE_NEW_TIMELINE", "true", "(absent)"),
                Change(
                    svc,
                    "env DB_PASSWORD",
                    "secret tweet-service-secrets/db-password",
                    "secret tweet-service-secrets/db-password-v1",
                ),
            )
            plans.append(
                SPlan(
                    svc,
                    svc,
                    "rollback",
                    HISTORY[2],
                    target,
                    HISTORY,
                    changes,
                    ("the target revision is 1d old",),
                    "rolled back",
                )
            )
        return Plan(self.environment, tuple(plans))

    async def execute(
        self,
        plan: Plan,
        *,
        resume_paused: bool = False,
        abort_release: bool = False,
        on_event: Callable[[Event], None] | None = None,
    ) -> Result:
        self.executed.append((plan, resume_paused, abort_release))
        for sp in plan.services:
            if on_event:
                on_event(Event(NOW, sp.service, "rolling back to revision 2"))
        if self.gate is not None:
            await self.gate.wait()
        return Result(
            True,
            tuple(
                Outcome(sp.service, "rolled back to revision 2 (now revision 4)", True, 3.2)
                for sp in plan.services
            ),
            NOW - 4,
            NOW,
            "/var/lib/bva/journal/sandbox.jsonl",
        )
