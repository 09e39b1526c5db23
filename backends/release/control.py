"""Reading a release from the cluster and steering it from any terminal: the canaries'
annotations are the release's state, so pause/resume/promote reach whichever process drives
it, and abort works even when no driver is left."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from backends.errors import BvaError
from backends.models import Pod, RolloutStatus, Workload
from backends.release.lock import LEASE_NAME, LeaseApi, holder_of
from backends.release.models import (
    GateTally,
    ReleaseState,
    ReleaseView,
    ServiceProgress,
)
from backends.release.plan import (
    A_COMMAND,
    A_FAILED,
    A_GATES,
    A_OWNER,
    A_PASSED,
    A_PHASE,
    A_PHASE_START,
    A_PLAN,
    A_REASON,
    A_STATE,
    ReleasePlan,
    actual_weight,
    canary_name,
    gates_from_json,
)


class ReleaseKube(LeaseApi, Protocol):
    async def deployment_json(self, deployment: str) -> dict[str, Any] | None: ...
    async def get_workload(self, deployment: str) -> Workload: ...
    async def list_pods(self, service: str | None = None) -> list[Pod]: ...
    async def patch_deployment(self, deployment: str, body: dict[str, Any]) -> Workload: ...
    async def delete_deployment(self, deployment: str) -> None: ...
    async def create_deployment(self, body: dict[str, Any]) -> Workload: ...
    async def set_image(
        self, deployment: str, container: str, image: str, change_cause: str | None = None
    ) -> Workload: ...
    async def rollout_status(self, deployment: str) -> RolloutStatus: ...


class NoRelease(BvaError):
    """No release is in progress."""


async def find_canaries(
    kube: ReleaseKube, services: Sequence[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """service -> its canary Deployment (JSON), for the services that have one."""
    found = {}
    for service, deployment in services:
        canary = await kube.deployment_json(canary_name(deployment))
        if canary is not None:
            found[service] = canary
    return found


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


async def read_release(
    kube: ReleaseKube, services: Sequence[tuple[str, str]]
) -> ReleaseView | None:
    """The release in progress as any bva sees it, or None."""
    canaries = await find_canaries(kube, services)
    if not canaries:
        return None
    first = annotations_of(next(iter(canaries.values())))
    try:
        plan = ReleasePlan.from_json(first[A_PLAN])
    except (KeyError, ValueError, TypeError):
        raise BvaError("a canary exists but carries no readable bva release plan") from None
    holder = holder_of(await kube.get_lease(LEASE_NAME))
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
    progress = []
    for service in plan.services:
        canary = canaries.get(service)
        stable = await kube.get_workload(deployments[service])
        ann = annotations_of(canary) if canary else {}
        status = (canary or {}).get("status") or {}
        c_ready = int(status.get("readyReplicas") or 0)
        gates = tuple(GateTally(r.gate, 0, 0, 0, r) for r in gates_from_json(ann.get(A_GATES, "")))
        progress.append(
            ServiceProgress(
                service=service,
                deployment=deployments[service],
                stable_ready=stable.ready,
                stable_desired=stable.desired,
                canary_ready=c_ready,
                canary_desired=int(((canary or {}).get("spec") or {}).get("replicas") or 0),
                canary_restarts=0,
                set_weight=plan.phases[int(first.get(A_PHASE, "0"))],
                actual_weight=actual_weight(c_ready, stable.ready),
                gates=gates,
            )
        )
    phase = int(first.get(A_PHASE, "0"))
    return ReleaseView(
        release_id=plan.release_id,
        version=plan.version,
        owner=first.get(A_OWNER, ""),
        strategy=plan.strategy,
        services=plan.services,
        phases=plan.phases,
        holds=plan.holds,
        phase_index=phase,
        phase_started=float(first.get(A_PHASE_START, "0") or 0),
        state=state,
        reason=first.get(A_REASON, ""),
        samples_passed=int(first.get(A_PASSED, "0")),
        samples_failed=int(first.get(A_FAILED, "0")),
        failure_limit=plan.failure_limit,
        gate_interval=plan.gate_interval,
        next_sample_at=None,
        progress=tuple(progress),
        driver_alive=alive,
    )


async def annotate_all(
    kube: ReleaseKube, canaries: dict[str, dict[str, Any]], values: dict[str, str]
) -> None:
    for canary in canaries.values():
        await kube.patch_deployment(
            canary["metadata"]["name"], {"metadata": {"annotations": values}}
        )


async def send_control(
    kube: ReleaseKube, services: Sequence[tuple[str, str]], action: str, reason: str = ""
) -> str:
    """pause | resume | promote | promote-full | abort, for whoever drives the release."""
    canaries = await find_canaries(kube, services)
    if not canaries:
        raise NoRelease("no release is in progress")
    if action == "pause":
        await annotate_all(kube, canaries, {A_STATE: "paused", A_REASON: reason or "paused"})
    elif action == "resume":
        await annotate_all(kube, canaries, {A_STATE: "running", A_REASON: ""})
    elif action in ("promote", "promote-full"):
        await annotate_all(
            kube, canaries, {A_COMMAND: f"{action}@{time.time():.3f}", A_STATE: "running"}
        )
    elif action == "abort":
        await abort_canaries(kube, canaries)
    else:
        raise BvaError(f"unknown release action {action!r}")
    return ", ".join(sorted(canaries))


async def abort_canaries(kube: ReleaseKube, canaries: dict[str, dict[str, Any]]) -> None:
    """Traffic back on stable at once: the canaries go; stable was never touched."""
    for canary in canaries.values():
        try:
            await kube.delete_deployment(canary["metadata"]["name"])
        except BvaError as exc:
            if "not found" not in str(exc).lower():
                raise
