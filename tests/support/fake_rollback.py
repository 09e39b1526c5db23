"""A rollback engine stand-in with canned plans, for the wizard's snapshots and Pilot tests.
It returns the real models; the real engine is tested against the sandbox in
tests/backends/test_rollback.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from backends.models import Revision
from backends.rollback.models import (
    RollbackEvent,
    RollbackPlan,
    RollbackResult,
    ServiceCandidate,
    ServiceOutcome,
    ServicePlan,
    TemplateChange,
)
from tests.support.fake_platform import NOW


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
    executed: list[tuple[RollbackPlan, bool, bool]] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def candidates(self) -> list[ServiceCandidate]:
        return [
            ServiceCandidate(
                "tweet-service",
                "tweet-service",
                3,
                "2.0.0-crash",
                "Failed: deadline exceeded",
                "UP",
                True,
                "rollout failed: exceeded its progress deadline",
            ),
            ServiceCandidate(
                "discovery-service", "discovery-service", 1, "1.0.0", "Complete", "UP", False, ""
            ),
            ServiceCandidate(
                "auth-service", "auth-service", 2, "1.1.0", "Complete", "UP", False, ""
            ),
        ]

    async def plan(self, services: Sequence[str], to_revision: int | None = None) -> RollbackPlan:
        plans = []
        for svc in services:
            target_n = to_revision or 2
            target = next((r for r in HISTORY if r.revision == target_n), None)
            if target is None:
                plans.append(
                    ServicePlan(
                        svc,
                        svc,
                        "refused",
                        HISTORY[2],
                        None,
                        HISTORY,
                        (),
                        (),
                        f"unable to find specified revision {target_n} in history",
                        False,
                    )
                )
                continue
            changes = (
                TemplateChange(
                    svc,
                    "image",
                    "bharathva/tweet-service:2.0.0-crash",
                    target.images["tweet-service"],
                ),
                TemplateChange(svc, "env FEATURE_NEW_TIMELINE", "true", "(absent)"),
                TemplateChange(
                    svc,
                    "env DB_PASSWORD",
                    "secret tweet-service-secrets/db-password",
                    "secret tweet-service-secrets/db-password-v1",
                ),
            )
            plans.append(
                ServicePlan(
                    svc,
                    svc,
                    "rollback",
                    HISTORY[2],
                    target,
                    HISTORY,
                    changes,
                    ("the target revision is 1d old",),
                    "rolled back",
                    False,
                )
            )
        return RollbackPlan(self.environment, tuple(plans), None, None)

    async def execute(
        self,
        plan: RollbackPlan,
        *,
        resume_paused: bool = False,
        abort_release: bool = False,
        on_event: Callable[[RollbackEvent], None] | None = None,
    ) -> RollbackResult:
        self.executed.append((plan, resume_paused, abort_release))
        for sp in plan.services:
            if on_event:
                on_event(RollbackEvent(NOW, sp.service, "rolling back to revision 2", "info"))
        if self.gate is not None:
            await self.gate.wait()
        return RollbackResult(
            True,
            tuple(
                ServiceOutcome(sp.service, "rolled back to revision 2 (now revision 4)", True, 3.2)
                for sp in plan.services
            ),
            NOW - 4,
            NOW,
            "/var/lib/bva/journal/sandbox.jsonl",
        )
