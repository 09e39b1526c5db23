"""The ReplicaSet controller: keeps the pod count, reports ready/available counts."""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from typing import Any

from backends.sandbox.events import EventRecorder
from backends.sandbox.podutil import (
    condition,
    drop_zero,
    is_controlled_by,
    owner_ref,
    parse_time,
    pod_ready,
    spec_replicas,
)
from backends.sandbox.store import Store

Obj = dict[str, Any]
COMPONENT = "replicaset-controller"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class ReplicaSetController:
    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        clock: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], None],
        delete_pod: Callable[[Obj], None],
        rng: random.Random,
    ) -> None:
        self._store = store
        self._events = recorder
        self._clock = clock
        self._schedule = schedule
        self._delete_pod = delete_pod
        self._rng = rng

    def sync(self, namespace: str, name: str) -> None:
        rs = self._store.get("replicasets", namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods = [
            p
            for p in self._store.owned(rs["metadata"]["uid"], "pods")
            if is_controlled_by(p, rs) and not p["metadata"].get("deletionTimestamp")
        ]
        diff = len(pods) - spec_replicas(rs)
        if diff < 0:
            for _ in range(-diff):
                pods.append(self._create_pod(rs))
        elif diff > 0:
            for pod in sorted(pods, key=_deletion_rank)[:diff]:
                self._delete_pod(pod)
                self._events.record(
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    COMPONENT,
                )
                pods.remove(pod)
        self._update_status(rs, pods)

    def _create_pod(self, rs: Obj) -> Obj:
        template = copy.deepcopy(rs["spec"]["template"])
        suffix = "".join(self._rng.choice(_NAME_CHARS) for _ in range(5))
        name = f"{rs['metadata']['name']}-{suffix}"
        meta = template.get("metadata") or {}
        pod: Obj = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "generateName": f"{rs['metadata']['name']}-",
                "namespace": rs["metadata"]["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
                "ownerReferences": [owner_ref(rs)],
            },
            "spec": template.get("spec") or {},
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        created = self._store.create("pods", pod, "pods")
        self._events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT)
        return created

    def _update_status(self, rs: Obj, pods: list[Obj]) -> None:
        now = self._clock()
        min_ready = float(rs["spec"].get("minReadySeconds", 0) or 0)
        ready = [p for p in pods if pod_ready(p)]
        available = 0
        for p in ready:
            since = parse_time((condition(p, "Ready") or {}).get("lastTransitionTime", ""))
            if now >= since + min_ready:
                available += 1
            else:
                ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
                self._schedule(since + min_ready + 0.01, functools.partial(self.sync, ns, name))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": len(ready),
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        fresh = self._store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
        if fresh is None:
            return
        new_status = drop_zero(status)
        new_status["replicas"] = len(pods)  # replicas is reported even when zero
        if fresh.get("status") == new_status:
            return
        updated = copy.deepcopy(fresh)
        updated["status"] = new_status
        self._store.update("replicasets", updated, "replicasets.apps", check_rv=False)


def _deletion_rank(pod: Obj) -> tuple[int, int, int, int, str]:
    """Pods the ReplicaSet controller deletes first: unscheduled, pending, not ready,
    most restarted, newest."""
    status = pod.get("status") or {}
    scheduled = 1 if pod.get("spec", {}).get("nodeName") else 0
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", ""), 0)
    ready = 1 if pod_ready(pod) else 0
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = pod["metadata"].get("creationTimestamp", "")
    inverted = "".join(chr(255 - ord(ch)) for ch in created)
    return (scheduled, phase, ready, -restarts, inverted)
