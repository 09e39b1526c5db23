"""Kubernetes API JSON -> bva models. Pure functions; the adapter feeds them raw dicts.

Working from JSON rather than the client's generated models keeps list and watch cheap and
lets us mirror kubectl's printers, which are written against the wire format anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from backends.kube.rollout_rules import (
    CHANGE_CAUSE_ANNOTATION,
    POD_TEMPLATE_HASH,
    revision_of,
)
from backends.models import Condition, KubeEvent, Pod, Revision, Strategy, Track, Workload

JsonObj = Mapping[str, Any]


def parse_time(value: Any) -> float | None:
    """RFC 3339 (Time or MicroTime) -> epoch seconds; None for absent or garbled values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _meta(obj: JsonObj) -> JsonObj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def track_of(name: str, labels: Mapping[str, str]) -> Track:
    label = labels.get("track")
    if label == "canary":
        return "canary"
    if label == "stable":
        return "stable"
    return "canary" if name.endswith("-canary") else "stable"


def container_images(pod_spec: Any) -> dict[str, str]:
    if not isinstance(pod_spec, Mapping):
        return {}
    return {
        str(c.get("name", "")): str(c.get("image", ""))
        for c in pod_spec.get("containers") or ()
        if isinstance(c, Mapping)
    }


def workload_from(deployment: JsonObj, service: str) -> Workload:
    meta = _meta(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    labels = dict(meta.get("labels") or {})
    annotations = meta.get("annotations") or {}
    name = str(meta.get("name", ""))
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    conditions = tuple(
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "")),
            reason=str(c.get("reason", "")),
            message=str(c.get("message", "")),
            last_update=parse_time(c.get("lastUpdateTime") or c.get("lastTransitionTime")),
        )
        for c in status.get("conditions") or ()
    )
    deadline = spec.get("progressDeadlineSeconds")
    return Workload(
        name=name,
        service=service,
        track=track_of(name, labels),
        namespace=str(meta.get("namespace", "")),
        # The API server defaults spec.replicas to 1; mirror that for hand-built objects.
        desired=_int(spec.get("replicas"), 1),
        replicas=_int(status.get("replicas")),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        unavailable=_int(status.get("unavailableReplicas")),
        images=container_images((spec.get("template") or {}).get("spec")),
        revision=revision_of(deployment) or 0,
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        paused=bool(spec.get("paused")),
        conditions=conditions,
        strategy=Strategy(
            type=str(strategy.get("type", "RollingUpdate")),
            max_surge=_str_or_none(rolling.get("maxSurge")),
            max_unavailable=_str_or_none(rolling.get("maxUnavailable")),
        ),
        progress_deadline_s=deadline if isinstance(deadline, int) else None,
        created=parse_time(meta.get("creationTimestamp")),
        change_cause=_str_or_none(annotations.get(CHANGE_CAUSE_ANNOTATION)),
        labels=labels,
        uid=str(meta.get("uid", "")),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def _controller_of(meta: JsonObj, kind: str) -> str | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref.get("name", ""))
    return None


def _has_condition(status: JsonObj, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def _terminated_text(term: JsonObj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if _int(term.get("signal")):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{_int(term.get('exitCode'))}"


def pod_status_text(pod: JsonObj) -> tuple[str, int, int, int]:
    """kubectl's STATUS, READY (ready, total) and RESTARTS pod columns (printers.go printPod)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or ()}
    sidecars = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or ()) + len(sidecars)
    ready = restarts = 0
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        restarts += _int(cs.get("restartCount"))
        state = cs.get("state") or {}
        if cs.get("name") in sidecars and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if term is not None:
            reason = _terminated_text(term, "Init:")
        elif waiting is not None and waiting.get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(status, "Initialized"):
        restarts = sum(
            _int(cs.get("restartCount"))
            for cs in status.get("initContainerStatuses") or ()
            if cs.get("name") in sidecars
        )
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += _int(cs.get("restartCount"))
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None:
                reason = _terminated_text(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(status, "Ready") else "NotReady"

    deleting = _meta(pod).get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"
    return reason, ready, total, restarts


def pod_from(pod: JsonObj) -> Pod:
    meta = _meta(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    name = str(meta.get("name", ""))
    text, ready, total, restarts = pod_status_text(pod)
    last_term: JsonObj | None = None
    for cs in status.get("containerStatuses") or ():
        term = (cs.get("lastState") or {}).get("terminated")
        if term and (
            last_term is None
            or (parse_time(term.get("finishedAt")) or 0)
            >= (parse_time(last_term.get("finishedAt")) or 0)
        ):
            last_term = term
    return Pod(
        name=name,
        service=str(labels.get("app", "")),
        track=track_of(name, labels),
        namespace=str(meta.get("namespace", "")),
        phase=str(status.get("phase") or ""),
        status=text,
        ready_containers=ready,
        total_containers=total,
        restarts=restarts,
        created=parse_time(meta.get("creationTimestamp")),
        node=_str_or_none(spec.get("nodeName")),
        pod_template_hash=_str_or_none(labels.get(POD_TEMPLATE_HASH)),
        owner_replicaset=_controller_of(meta, "ReplicaSet"),
        started=parse_time(status.get("startTime")),
        last_termination_reason=(
            _str_or_none(last_term.get("reason")) if last_term is not None else None
        ),
        last_exit_code=(_int(last_term.get("exitCode")) if last_term is not None else None),
        images=container_images(spec),
        ip=_str_or_none(status.get("podIP")),
        is_ready=_has_condition(status, "Ready"),
        deleting=meta.get("deletionTimestamp") is not None,
        uid=str(meta.get("uid", "")),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def revision_from(replicaset: JsonObj, *, is_current: bool) -> Revision:
    meta = _meta(replicaset)
    spec = replicaset.get("spec") or {}
    status = replicaset.get("status") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    annotations = meta.get("annotations") or {}
    return Revision(
        revision=revision_of(replicaset) or 0,
        replicaset=str(meta.get("name", "")),
        images=container_images(template.get("spec")),
        change_cause=_str_or_none(annotations.get(CHANGE_CAUSE_ANNOTATION)),
        created=parse_time(meta.get("creationTimestamp")),
        replicas=_int(spec.get("replicas")),
        ready=_int(status.get("readyReplicas")),
        is_current=is_current,
        template_hash=_str_or_none(
            (meta.get("labels") or {}).get(POD_TEMPLATE_HASH) or labels.get(POD_TEMPLATE_HASH)
        ),
        template=dict(template),
    )


def event_from(event: JsonObj) -> KubeEvent:
    meta = _meta(event)
    involved = event.get("involvedObject") or {}
    series = event.get("series") or {}
    source = event.get("source") or {}
    # Events written through events.k8s.io leave the legacy timestamps empty.
    first = parse_time(event.get("firstTimestamp")) or parse_time(event.get("eventTime"))
    last = (
        parse_time(event.get("lastTimestamp"))
        or parse_time(series.get("lastObservedTime"))
        or first
        or parse_time(meta.get("creationTimestamp"))
    )
    count = _int(event.get("count")) or _int(series.get("count")) or 1
    return KubeEvent(
        type=str(event.get("type") or "Normal"),
        reason=str(event.get("reason") or ""),
        message=str(event.get("message") or ""),
        object_kind=str(involved.get("kind") or ""),
        object_name=str(involved.get("name") or ""),
        count=count,
        first_timestamp=first or last,
        last_timestamp=last,
        source=str(source.get("component") or event.get("reportingComponent") or ""),
    )
