"""Canned releases for Rollout screen snapshots (deterministic: fixed clock, fixed data)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from backends.release.models import (
    DbStep,
    GateReading,
    GateResult,
    GateTally,
    ReleaseState,
    ReleaseView,
    ServiceProgress,
    StepState,
    TimelineEntry,
)
from backends.release.plan import ReleasePlan
from tests.support.fake_platform import NOW

P, F = GateResult.PASSED, GateResult.FAILED


def _gates(failing: bool) -> tuple[GateTally, ...]:
    rate = 23.4 if failing else 0.2
    p95 = 4120.0 if failing else 142.0
    return (
        GateTally(
            "error rate",
            3,
            2 if failing else 0,
            0,
            GateReading("error rate", F if failing else P, rate, 1.0, "%"),
            (0.1, 0.3, 0.2, 18.0, rate) if failing else (0.1, 0.3, 0.2, 0.0, rate),
        ),
        GateTally(
            "p95 latency",
            3,
            2 if failing else 0,
            0,
            GateReading("p95 latency", F if failing else P, p95, 500.0, "ms"),
            (120.0, 150.0, 131.0, 3900.0, p95) if failing else (120, 150, 131, 128, p95),
        ),
        GateTally("canary ready", 5, 0, 0, GateReading("canary ready", P, 1.0, 1.0, "pods")),
        GateTally("restarts", 5, 0, 0, GateReading("restarts", P, 0.0, 0.0, "restarts")),
    )


def release_view(
    state: ReleaseState = ReleaseState.RUNNING, *, phase: int = 1, failing: bool = False
) -> ReleaseView:
    progress: tuple[ServiceProgress, ...] = (
        ServiceProgress(
            "auth-service",
            "auth-service",
            3,
            3,
            1,
            1,
            0,
            (5, 25, 50, 100)[phase],
            25.0,
            _gates(failing),
        ),
        ServiceProgress(
            "user-service",
            "user-service",
            2,
            2,
            1,
            1,
            0,
            (5, 25, 50, 100)[phase],
            33.3,
            _gates(False),
        ),
    )
    timeline = [
        TimelineEntry(
            NOW - 70, "release r-20261126-061000-ab12: 1.2.0 to auth-service, user-service (canary)"
        ),
        TimelineEntry(NOW - 70, "phase 1/4: weight 5%"),
        TimelineEntry(NOW - 40, "phase 2/4: weight 25%"),
    ]
    reason = ""
    if failing:
        timeline.append(
            TimelineEntry(
                NOW - 10, "gate failed (2/3): auth-service error rate 23.4% ≥ 1%", level="error"
            )
        )
    if state is ReleaseState.ABORTED:
        reason = "gates failed 3 times (limit 3): auth-service error rate 23.4% ≥ 1%"
        timeline.append(
            TimelineEntry(
                NOW - 2,
                f"aborted automatically: {reason}; traffic is back on stable",
                level="error",
            )
        )
        progress = tuple(
            ServiceProgress(
                p.service,
                p.deployment,
                p.stable_ready,
                p.stable_desired,
                0,
                0,
                0,
                p.set_weight,
                0.0,
                p.gates,
            )
            for p in progress
        )
    if state is ReleaseState.FINISHED:
        phase = 3
        timeline += [
            TimelineEntry(NOW - 5, "promoting: stable deployments to 1.2.0"),
            TimelineEntry(NOW - 1, "finished: auth-service, user-service on 1.2.0"),
        ]
        progress = tuple(
            ServiceProgress(
                p.service,
                p.deployment,
                p.stable_ready,
                p.stable_desired,
                0,
                0,
                0,
                100,
                100.0,
                p.gates,
            )
            for p in progress
        )
    return ReleaseView(
        release_id="r-20261126-061000-ab12",
        version="1.2.0",
        owner="asha@oncall-1",
        strategy="canary",
        services=("auth-service", "user-service"),
        phases=(5, 25, 50, 100),
        holds=(60.0, 60.0, 60.0),
        phase_index=phase,
        phase_started=NOW - 40,
        state=state,
        reason=reason,
        samples_passed=8,
        samples_failed=2 if failing or reason else 0,
        failure_limit=3,
        gate_interval=5.0,
        next_sample_at=None if state.over else NOW + 3,
        progress=progress,
        timeline=tuple(timeline),
    )


class StubDriver:
    """Stands where a ReleaseDriver would be, for drawing only."""

    def __init__(self, view: ReleaseView, record: Path | None = None) -> None:
        self._view = view
        self.record = record
        self.state = view.state
        self.plan = ReleasePlan(
            view.release_id,
            view.version,
            view.services,
            "canary",
            view.phases,
            view.holds,
            5.0,
            3,
            False,
            600.0,
            1.0,
            500.0,
        )

    def view(self) -> ReleaseView:
        return self._view


DUMP = "bharathva-sandbox-20261126T061000Z-r-20261126-061000-ab12.dump"


def database_view(*, failed: bool) -> ReleaseView:
    """A release in its database step: backup done, migrate running (or failed, so the
    release stopped before any service changed)."""
    backup = DbStep("backup", StepState.DONE, f"{DUMP}: 42.5 kB in 0.3s, verified (64 entries)")
    if failed:
        why = (
            'migrate failed: Migration V7__tweets_hashtags.sql failed: relation "tweets.tags" '
            "does not exist; the services were not changed; to restore the database: "
            f"bva db restore {DUMP}"
        )
        migrate = DbStep("migrate", StepState.FAILED, why)
    else:
        why = ""
        migrate = DbStep(
            "migrate",
            StepState.RUNNING,
            'Migrating schema "public" to version "7 - tweets hashtags"',
        )
    timeline = [
        TimelineEntry(NOW - 4, "release r-20261126-061000-ab12: 1.2.0 to auth-service (canary)"),
        TimelineEntry(NOW - 4, "database: backup (pg_dump -Fc)"),
        TimelineEntry(NOW - 3, f"database: backup {backup.detail}"),
        TimelineEntry(NOW - 3, "database: migrate V6 → V7"),
    ]
    if failed:
        timeline.append(TimelineEntry(NOW - 1, why, level="error"))
    base = release_view(phase=0)
    return replace(
        base,
        services=("auth-service",),
        state=ReleaseState.FAILED if failed else ReleaseState.RUNNING,
        reason=why,
        samples_passed=0,
        samples_failed=0,
        phase_started=NOW - 4,
        next_sample_at=None,
        progress=(),
        timeline=tuple(timeline),
        database=(backup, migrate, DbStep("verify")),
    )
