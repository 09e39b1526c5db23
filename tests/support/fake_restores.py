"""A stand-in restore engine for the restore wizard's snapshots and key tests (deterministic:
fixed clock, fixed backups), behind the same DatabaseRestores contract as the real one."""

from __future__ import annotations

from collections.abc import Callable

from backends.db.restore_models import (
    Backup,
    Connected,
    EventLevel,
    RestoreEvent,
    RestoreOutcome,
    RestorePlan,
    RestoreResult,
    Step,
)
from tests.support.fake_platform import NOW


def backup(name: str, age_s: float, reason: str, *, verified: bool = True) -> Backup:
    return Backup(
        path=f"/var/lib/bva/backups/sandbox/{name}",
        database="bharathva",
        environment="sandbox",
        reason=reason,
        taken_at=NOW - age_s,
        duration_s=2.4,
        size=48_213_504,
        server_version="18.1",
        dump_version="18.1",
        start_lsn="0/3A000028",
        verified=verified,
        entries=64,
    )


BACKUPS = [
    backup(
        "bharathva-sandbox-20270115T074200Z-r-20270115-074155-ab12.dump",
        18 * 60,
        "r-20270115-074155-ab12",
    ),
    backup("bharathva-sandbox-20270115T063000Z-manual.dump", 90 * 60, "manual"),
    backup("bharathva-sandbox-20270115T061500Z-manual.dump", 105 * 60, "manual", verified=False),
]


class FakeRestores:
    def __init__(self, *, connected: bool = True, fail: bool = False) -> None:
        self.connected = connected
        self.fail = fail
        self.executed: list[tuple[str, bool]] = []
        self.planned: list[str] = []

    @property
    def environment(self) -> str:
        return "sandbox"

    async def backups(self) -> list[Backup]:
        return list(BACKUPS)

    async def plan(self, backup: Backup) -> RestorePlan:
        self.planned.append(backup.name)
        who = (Connected("auth-service", 3), Connected("tweet-service", 4))
        return RestorePlan(
            database="bharathva",
            environment="sandbox",
            backup=backup,
            wal_since_backup=73_400_320,
            connected=who if self.connected else (),
            replicas=2,
        )

    def services_to_scale(self, plan: RestorePlan) -> list[str]:
        return [c.application for c in plan.connected]

    async def execute(
        self, plan: RestorePlan, *, scale_down: bool, on_event: Callable[[RestoreEvent], None]
    ) -> RestoreOutcome:
        self.executed.append((plan.backup.name, scale_down))
        scaled = (("auth-service", 3), ("tweet-service", 2)) if scale_down else ()
        for dep, n in scaled:
            on_event(RestoreEvent(Step.SCALE_DOWN, f"scaled {dep} {n} -> 0"))
        on_event(RestoreEvent(Step.RESTORE, "safety backup"))
        if self.fail:
            why = 'pg_restore failed, nothing was changed: ERROR: relation "tweets.x" is locked'
            on_event(RestoreEvent(Step.FAILED, why, EventLevel.ERROR))
            for dep, n in scaled:
                on_event(RestoreEvent(Step.SCALE_UP, f"scaled {dep} back to {n}"))
            return RestoreOutcome(None, why, scaled, ())
        on_event(RestoreEvent(Step.RESTORE, f"restoring {plan.backup.name}"))
        for dep, n in scaled:
            on_event(RestoreEvent(Step.SCALE_UP, f"scaled {dep} back to {n}"))
        safety = backup(
            "bharathva-sandbox-20270115T080000Z-safety-before-restore.dump",
            5,
            "safety-before-restore",
        )
        result = RestoreResult(
            safety,
            3.2,
            (("auth.accounts", 40), ("public.flyway_schema_history", 6), ("tweets.tweets", 120)),
        )
        return RestoreOutcome(result, "", scaled, ())
