"""Reading a release from the orchestrator and steering it from any terminal: the canaries'
marks are the release's state, so pause/resume/promote reach whichever process drives
it, and abort works even when no driver is left."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from backends.errors import BvaError
from backends.models import Canary
from backends.orchestrator import Orchestrator
from backends.release.models import (
    ReleaseState,
    ReleaseView,
    ServiceProgress,
)
from backends.release.plan import (
    A_COMMAND,
    A_DB,
    A_FAILED,
    A_OWNER,
    A_PASSED,
    A_PHASE,
    A_PHASE_START,
    A_PLAN,
    A_REASON,
    A_STATE,
    ReleasePlan,
    actual_weight,
    steps_from_json,
    tallies_from_marks,
)
from backends.sanitize import sanitize_text


class NoRelease(BvaError):
    """No release is in progress."""


def release_plan(canary: Canary) -> ReleasePlan:
    """The plan a canary carries; BvaError when there is none, or it does not read."""
    try:
        return ReleasePlan.from_json(canary.marks[A_PLAN])
    except KeyError:
        raise BvaError(f"canary {canary.name} carries no bva release plan") from None
    except ValueError as exc:
        raise BvaError(f"canary {canary.name}: {exc}") from None


async def read_release(
    orchestrator: Orchestrator, services: Sequence[tuple[str, str]]
) -> ReleaseView | None:
    """The release in progress as any bva sees it, or None."""
    canaries = await orchestrator.canaries(services)
    if not canaries:
        return None
    lead = next(iter(canaries.values()))
    plan = release_plan(lead)
    first = lead.marks
    holder = await orchestrator.read_lock()
    now = time.time()
    alive = holder is not None and holder.release_id == plan.release_id and not holder.expired(now)
    state = (
        ReleaseState(first.get(A_STATE, "running"))
        if first.get(A_STATE) in {s.value for s in ReleaseState}
        else ReleaseState.RUNNING
    )
    if not alive and not state.over:
        state = ReleaseState.DRIVER_LOST
    deployments = dict(services)
    phase = min(_int(first, A_PHASE), len(plan.phases) - 1)
    progress = []
    for service in plan.services:
        canary = canaries.get(service)
        stable = await orchestrator.get_workload(deployments[service])
        marks = canary.marks if canary else {}
        c_ready = canary.ready if canary else 0
        gates = tallies_from_marks(marks)
        progress.append(
            ServiceProgress(
                service=service,
                deployment=deployments[service],
                stable_ready=stable.ready,
                stable_desired=stable.desired,
                canary_ready=c_ready,
                canary_desired=canary.desired if canary else 0,
                canary_restarts=0,
                set_weight=plan.phases[phase],
                actual_weight=actual_weight(c_ready, stable.ready),
                gates=gates,
            )
        )
    return ReleaseView(
        release_id=plan.release_id,
        version=plan.version,
        owner=sanitize_text(first.get(A_OWNER, ""), 120),
        strategy=plan.strategy,
        services=plan.services,
        phases=plan.phases,
        holds=plan.holds,
        phase_index=phase,
        phase_started=_float(first, A_PHASE_START),
        state=state,
        reason=sanitize_text(first.get(A_REASON, ""), 300),
        samples_passed=_int(first, A_PASSED),
        samples_failed=_int(first, A_FAILED),
        failure_limit=plan.failure_limit,
        gate_interval=plan.gate_interval,
        next_sample_at=None,
        progress=tuple(progress),
        database=steps_from_json(first.get(A_DB, "")),
        driver_alive=alive,
    )


def _int(marks: dict[str, str], key: str) -> int:
    """A counter from the marks; what anyone else wrote there may not be a number."""
    try:
        return max(0, int(marks.get(key, "0")))
    except ValueError:
        return 0


def _float(marks: dict[str, str], key: str) -> float:
    try:
        value = float(marks.get(key, "0") or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


async def mark_all(
    orchestrator: Orchestrator, canaries: dict[str, Canary], values: dict[str, str]
) -> None:
    for canary in canaries.values():
        await orchestrator.mark_canary(canary.name, values)


async def send_control(
    orchestrator: Orchestrator, services: Sequence[tuple[str, str]], action: str, reason: str = ""
) -> str:
    """pause | resume | promote | promote-full | abort, for whoever drives the release."""
    canaries = await orchestrator.canaries(services)
    if not canaries:
        raise NoRelease("no release is in progress")
    if action == "pause":
        await mark_all(orchestrator, canaries, {A_STATE: "paused", A_REASON: reason or "paused"})
    elif action == "resume":
        await mark_all(orchestrator, canaries, {A_STATE: "running", A_REASON: ""})
    elif action in ("promote", "promote-full"):
        await mark_all(
            orchestrator, canaries, {A_COMMAND: f"{action}@{time.time():.3f}", A_STATE: "running"}
        )
    elif action == "abort":
        await abort_canaries(orchestrator, canaries)
    else:
        raise BvaError(f"unknown release action {action!r}")
    return ", ".join(sorted(canaries))


async def abort_canaries(orchestrator: Orchestrator, canaries: dict[str, Canary]) -> None:
    """Traffic back on stable at once: the canaries go; stable was never touched."""
    for canary in canaries.values():
        await orchestrator.remove_canary(canary.name)
