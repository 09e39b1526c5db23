"""Engine JSON (a container's inspect) to bva's models: a container is an instance (``Pod``),
a compose service's containers on one track are a workload, and their state is a rollout in
kubectl's words. A workload's desired count is the containers it has: compose has no spec."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from backends.compose import labels as L
from backends.models import Condition, Pod, RolloutState, RolloutStatus, Workload
from backends.sanitize import sanitize_text

Json = dict[str, Any]
# Restarts of the newest image's containers after which the rollout has failed, as a
# Deployment whose new pods crash-loop is failed (kubectl waits for the deadline; a
# crash-looping container is degraded at once).
CRASH_RESTARTS = 2


def when(value: Any) -> float | None:
    """An Engine timestamp ("2026-12-07T12:22:37.123456789Z", zero time for never)."""
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    text = value.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(text + "+00:00").timestamp()
    except ValueError:
        return None


def service_of(labels: Mapping[str, str]) -> tuple[str, str]:
    """(platform service, compose service) of a container."""
    compose = labels.get(L.SERVICE, "")
    if L.track_of(labels) == "canary":
        return labels.get(L.OF) or compose.removesuffix(L.CANARY_SUFFIX), compose
    return compose, compose


def health_of(state: Mapping[str, Any]) -> str:
    """ "" without a HEALTHCHECK, else starting | healthy | unhealthy."""
    health = state.get("Health") or {}
    status = health.get("Status") if isinstance(health, dict) else None
    return status if isinstance(status, str) else ""


def pod_from(c: Json) -> Pod:
    labels: dict[str, str] = (c.get("Config") or {}).get("Labels") or {}
    state: dict[str, Any] = c.get("State") or {}
    service, compose = service_of(labels)
    status = str(state.get("Status") or "")
    health = health_of(state)
    running = status == "running"
    ready = running and health in ("", "healthy")
    exit_code = state.get("ExitCode")
    restarts = int(c.get("RestartCount") or 0)
    if state.get("OOMKilled"):
        words, reason = "OOMKilled", "OOMKilled"
    elif status == "restarting":
        words, reason = "Restarting", "Error"
    elif status == "exited":
        words, reason = f"Exited ({exit_code})", "Completed" if exit_code == 0 else "Error"
    elif running and health == "unhealthy":
        words, reason = "Unhealthy", None
    elif running and health == "starting":
        words, reason = "Starting", None
    else:
        words, reason = status.capitalize() or "Unknown", None
    if reason is None and restarts and isinstance(exit_code, int):
        reason = "Error" if exit_code else "Completed"
    phase = {
        "created": "Pending",
        "running": "Running",
        "restarting": "Running",
        "paused": "Running",
        "exited": "Succeeded" if exit_code == 0 else "Failed",
        "dead": "Failed",
    }.get(status, "Unknown")
    networks = (c.get("NetworkSettings") or {}).get("Networks") or {}
    ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
    name = str(c.get("Name") or "").lstrip("/")
    return Pod(
        name=sanitize_text(name, 253),
        service=service,
        track="canary" if L.track_of(labels) == "canary" else "stable",
        namespace=labels.get(L.PROJECT, ""),
        phase=phase,
        status=words,
        ready_containers=1 if ready else 0,
        total_containers=1,
        restarts=restarts,
        created=when(c.get("Created")),
        node=None,
        pod_template_hash=labels.get(L.REVISION),
        owner_replicaset=compose,
        started=when(state.get("StartedAt")),
        last_termination_reason=reason if (restarts or status == "exited") else None,
        last_exit_code=exit_code
        if isinstance(exit_code, int) and (restarts or not running)
        else None,
        images={
            compose.removesuffix(L.CANARY_SUFFIX): str((c.get("Config") or {}).get("Image") or "")
        },
        ip=ip,
        is_ready=ready,
        deleting=status == "removing",
        uid=str(c.get("Id") or ""),
        resource_version=str(state.get("StartedAt") or ""),
    )


def _broken(pods: Iterable[Pod]) -> str | None:
    """The first container that crash-loops or has exited: "<name> <status>, N restarts"."""
    for p in pods:
        if p.restarts >= CRASH_RESTARTS or p.status.startswith("Exited") or p.status == "OOMKilled":
            return f"{p.name} {p.status}, {p.restarts} restarts"
    return None


def newest(containers: Sequence[Json]) -> Json | None:
    """The container created last: its config is the workload's "template"."""
    return max(containers, key=lambda c: when(c.get("Created")) or 0.0, default=None)


def workload_from(
    name: str, service: str, track: str, containers: Sequence[Json], *, scaled_to: int | None = None
) -> Workload:
    """One compose service (or its canary) from its containers, one-offs left out; a service
    bva scaled to 0 keeps its containers stopped (they are its template), and wants none."""
    pods = [pod_from(c) for c in containers]
    latest = newest(containers)
    image = str(((latest or {}).get("Config") or {}).get("Image") or "")
    labels: dict[str, str] = ((latest or {}).get("Config") or {}).get("Labels") or {}
    updated = [p for p in pods if p.images and next(iter(p.images.values())) == image]
    ready = sum(1 for p in pods if p.is_ready)
    desired = len(pods) if scaled_to is None else scaled_to
    revision = int(labels.get(L.REVISION, "1") or 1) if labels.get(L.REVISION, "1").isdigit() else 1

    available = ready >= desired and desired > 0
    broken = _broken(updated) if desired > 0 else None  # scaled to 0: stopped on purpose
    if broken is not None:
        # kubectl's reason for a rollout that cannot finish: the screens say "Failed" at once.
        progressing = Condition(
            "Progressing", "False", "ProgressDeadlineExceeded", f"container {broken}"
        )
    elif len(updated) == len(pods) and available:
        progressing = Condition("Progressing", "True", "NewReplicaSetAvailable")
    else:
        progressing = Condition("Progressing", "True", "ReplicaSetUpdated")
    conditions = (
        Condition(
            "Available",
            "True" if available else "False",
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
        ),
        progressing,
    )
    return Workload(
        name=name,
        service=service,
        track="canary" if track == "canary" else "stable",
        namespace=labels.get(L.PROJECT, ""),
        desired=desired,
        replicas=len(pods),
        updated=len(updated),
        ready=ready,
        available=ready,
        unavailable=max(desired - ready, 0),
        images={name.removesuffix(L.CANARY_SUFFIX): image} if image else {},
        revision=revision,
        generation=revision,
        observed_generation=revision,
        conditions=conditions,
        created=min((p.created for p in pods if p.created), default=None),
        change_cause=labels.get(L.CAUSE) or None,
        labels=dict(labels),
        uid=name,
        resource_version=str(max((p.resource_version for p in pods), default="")),
    )


def rollout_from(workload: Workload, containers: Sequence[Json]) -> RolloutStatus:
    """kubectl's rollout status, read off the containers: complete when every container runs
    the newest image and is ready; failed when one of the newest crash-loops or has exited."""
    pods = [pod_from(c) for c in containers]
    image = workload.image
    new = [p for p in pods if next(iter(p.images.values()), "") == image]
    name = workload.name

    def status(state: RolloutState, message: str) -> RolloutStatus:
        return RolloutStatus(
            name,
            state,
            state is not RolloutState.PROGRESSING,
            message,
            updated=len(new),
            desired=workload.desired,
            available=workload.ready,
            replicas=workload.replicas,
        )

    if workload.desired == 0:
        return status(RolloutState.COMPLETE, f'service "{name}" has no containers')
    broken = _broken(new)
    if broken is not None:
        return status(
            RolloutState.FAILED,
            f'error: service "{name}" exceeded its progress deadline: container {broken}',
        )
    if len(new) == workload.replicas and workload.ready >= workload.desired:
        return status(RolloutState.COMPLETE, f'service "{name}" successfully rolled out')
    return status(
        RolloutState.PROGRESSING,
        f'Waiting for service "{name}" rollout to finish: {workload.ready} of '
        f"{workload.desired} updated containers are available...",
    )
