"""The deployment controller, after kube-controller-manager's: revisions, rolling updates,
conditions with progress deadlines, pause, history pruning."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from backends.sandbox.events import EventRecorder
from backends.sandbox.podutil import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    SKIP_COPY,
    condition,
    drop_zero,
    equal_ignore_hash,
    is_controlled_by,
    owner_ref,
    parse_time,
    revision_of,
    spec_replicas,
    status_int,
    surge_and_unavailable,
    template_hash,
)
from backends.sandbox.store import Store, rfc3339

Obj = dict[str, Any]
COMPONENT = "deployment-controller"


class DeploymentController:
    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        clock: Callable[[], float],
        schedule: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self._store = store
        self._events = recorder
        self._clock = clock
        self._schedule = schedule

    def sync(self, namespace: str, name: str) -> None:
        d = self._store.get("deployments", namespace, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        d = copy.deepcopy(d)
        rss = [
            rs
            for rs in self._store.owned(d["metadata"]["uid"], "replicasets")
            if is_controlled_by(rs, d) and not rs["metadata"].get("deletionTimestamp")
        ]
        paused = bool(d["spec"].get("paused"))
        new_rs, old_rss = self._new_and_old(d, rss, create=not paused)
        if paused:
            self._scale_paused(d, new_rs, old_rss)
        elif (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            self._recreate(d, new_rs, old_rss)
        else:
            self._rolling(d, new_rs, old_rss)
        self._sync_status(d)
        self.prune(namespace, name)

    def _new_and_old(self, d: Obj, rss: list[Obj], *, create: bool) -> tuple[Obj | None, list[Obj]]:
        template = d["spec"]["template"]
        matching = sorted(
            (rs for rs in rss if equal_ignore_hash(rs["spec"]["template"], template)),
            key=lambda rs: rs["metadata"]["creationTimestamp"],
        )
        new_rs = matching[0] if matching else None
        old = [rs for rs in rss if rs is not new_rs]
        new_revision = max((revision_of(rs) for rs in old), default=0) + 1
        if new_rs is not None:
            new_rs = self._adopt_revision(d, new_rs, new_revision)
        elif create:
            new_rs = self._create_rs(d, new_revision)
        if new_rs is not None:
            self._set_deployment_revision(d, revision_of(new_rs))
        return new_rs, old

    def _rs_annotations(self, d: Obj, rs: Obj, revision: int) -> Obj:
        ann = dict(rs["metadata"].get("annotations") or {})
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in SKIP_COPY:
                ann[k] = v
        old_rev = revision_of(rs)
        if old_rev < revision:
            if old_rev > 0:
                hist = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
                ann[REVISION_HISTORY] = ",".join([*hist, str(old_rev)])
            ann[REVISION] = str(revision)
        surge, _ = surge_and_unavailable(d)
        ann[DESIRED_REPLICAS] = str(spec_replicas(d))
        ann[MAX_REPLICAS] = str(spec_replicas(d) + surge)
        return ann

    def _adopt_revision(self, d: Obj, rs: Obj, new_revision: int) -> Obj:
        # An existing ReplicaSet that matches the template (a rollback) becomes the newest
        # revision; its former number goes to revision-history, as the controller does.
        ann = self._rs_annotations(d, rs, new_revision)
        if ann == (rs["metadata"].get("annotations") or {}):
            return rs
        updated = copy.deepcopy(rs)
        updated["metadata"]["annotations"] = ann
        if condition(d, "Progressing") is None:
            self._set_condition(
                d,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                f'Found new replica set "{rs["metadata"]["name"]}"',
            )
        return self._store.update("replicasets", updated, "replicasets.apps", check_rv=False)

    def _create_rs(self, d: Obj, revision: int) -> Obj:
        collision = int(d.get("status", {}).get("collisionCount", 0) or 0)
        h = template_hash(d["spec"]["template"], collision)
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        name = f"{d['metadata']['name']}-{h}"
        rs: Obj = {
            "kind": "ReplicaSet",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": name,
                "namespace": d["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {},
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        rs["metadata"]["annotations"] = self._rs_annotations(d, rs, revision)
        created = self._store.create("replicasets", rs, "replicasets.apps")
        self._set_condition(
            d, "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{name}"'
        )
        return created

    def _set_deployment_revision(self, d: Obj, revision: int) -> None:
        ann = d["metadata"].setdefault("annotations", {})
        if ann.get(REVISION) != str(revision):
            ann[REVISION] = str(revision)
            self._store.update("deployments", copy.deepcopy(d), "deployments.apps", check_rv=False)
            fresh = self._store.get(
                "deployments", d["metadata"]["namespace"], d["metadata"]["name"]
            )
            if fresh is not None:
                d["metadata"] = copy.deepcopy(fresh["metadata"])

    def _scale(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        old = spec_replicas(rs)
        if old == replicas:
            return rs
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = replicas
        surge, _ = surge_and_unavailable(d)
        ann = updated["metadata"].setdefault("annotations", {})
        ann[DESIRED_REPLICAS] = str(spec_replicas(d))
        ann[MAX_REPLICAS] = str(spec_replicas(d) + surge)
        result = self._store.update("replicasets", updated, "replicasets.apps", check_rv=False)
        direction = "up" if replicas > old else "down"
        self._events.record(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {replicas}",
            COMPONENT,
        )
        return result

    def _rolling(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        assert new_rs is not None
        replicas = spec_replicas(d)
        surge, max_unavailable = surge_and_unavailable(d)
        all_rss = [*old_rss, new_rs]
        # Scale up the new ReplicaSet within maxSurge.
        if spec_replicas(new_rs) > replicas:
            self._scale(d, new_rs, replicas)
            return
        if spec_replicas(new_rs) < replicas:
            current = sum(spec_replicas(rs) for rs in all_rss)
            max_total = replicas + surge
            if current < max_total:
                up = min(max_total - current, replicas - spec_replicas(new_rs))
                self._scale(d, new_rs, spec_replicas(new_rs) + up)
                return
        # Scale down old ReplicaSets within maxUnavailable: unhealthy pods first.
        old_rss = sorted(old_rss, key=lambda rs: rs["metadata"]["creationTimestamp"])
        if sum(spec_replicas(rs) for rs in old_rss) == 0:
            return
        all_pods = sum(spec_replicas(rs) for rs in all_rss)
        min_available = replicas - max_unavailable
        new_unavailable = spec_replicas(new_rs) - status_int(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        cleaned = 0
        fresh_old: list[Obj] = []
        for rs in old_rss:
            unhealthy = spec_replicas(rs) - status_int(rs, "availableReplicas")
            if cleaned < max_scaled_down and spec_replicas(rs) > 0 and unhealthy > 0:
                n = min(max_scaled_down - cleaned, unhealthy)
                rs = self._scale(d, rs, spec_replicas(rs) - n)
                cleaned += n
            fresh_old.append(rs)
        available = sum(status_int(rs, "availableReplicas") for rs in [*fresh_old, new_rs])
        budget = available - min_available
        for rs in fresh_old:
            if budget <= 0:
                break
            if spec_replicas(rs) == 0:
                continue
            n = min(spec_replicas(rs), budget)
            self._scale(d, rs, spec_replicas(rs) - n)
            budget -= n

    def _recreate(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        assert new_rs is not None
        for rs in old_rss:
            if spec_replicas(rs) > 0:
                self._scale(d, rs, 0)
        # Like the real controller, wait until no old pod is running, terminating ones included.
        if any(self._store.owned(rs["metadata"]["uid"], "pods") for rs in old_rss):
            return
        self._scale(d, new_rs, spec_replicas(d))

    def _scale_paused(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        # A paused Deployment still honours scaling: the active ReplicaSet takes the change.
        replicas = spec_replicas(d)
        active = [rs for rs in [*old_rss, new_rs] if rs is not None and spec_replicas(rs) > 0]
        total = sum(spec_replicas(rs) for rs in active)
        if total == replicas:
            return
        target = max(active, key=revision_of) if active else new_rs
        if target is None and old_rss:
            target = max(old_rss, key=revision_of)
        if target is not None:
            self._scale(d, target, max(spec_replicas(target) + replicas - total, 0))

    def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [
            rs for rs in old_rss if spec_replicas(rs) == 0 and status_int(rs, "replicas") == 0
        ]
        excess = len(cleanable) - int(limit)
        for rs in sorted(cleanable, key=revision_of)[: max(excess, 0)]:
            self._store.delete(
                "replicasets",
                rs["metadata"]["namespace"],
                rs["metadata"]["name"],
                "replicasets.apps",
            )

    def _set_condition(
        self,
        d: Obj,
        ctype: str,
        status: str,
        reason: str,
        message: str,
        *,
        touch: bool = False,
    ) -> None:
        # Like SetDeploymentCondition: same status and reason is a no-op, except that
        # progress ("touch") must move lastUpdateTime, which restarts the deadline.
        now = rfc3339(self._clock())
        conds = d.setdefault("status", {}).setdefault("conditions", [])
        cur = next((c for c in conds if c.get("type") == ctype), None)
        same = cur is not None and cur.get("status") == status
        if same and cur is not None and cur.get("reason") == reason and not touch:
            return
        new = {
            "type": ctype,
            "status": status,
            "lastUpdateTime": now,
            "lastTransitionTime": cur["lastTransitionTime"] if same and cur else now,
            "reason": reason,
            "message": message,
        }
        d["status"]["conditions"] = [c for c in conds if c.get("type") != ctype] + [new]

    def _sync_status(self, d: Obj) -> None:
        fresh = self._store.get("deployments", d["metadata"]["namespace"], d["metadata"]["name"])
        if fresh is None:
            return
        prev_status = fresh.get("status") or {}
        rss = [
            rs
            for rs in self._store.owned(fresh["metadata"]["uid"], "replicasets")
            if is_controlled_by(rs, fresh)
        ]
        template = fresh["spec"]["template"]
        new_rs = next(
            (rs for rs in rss if equal_ignore_hash(rs["spec"]["template"], template)), None
        )
        replicas = spec_replicas(fresh)
        _, max_unavailable = surge_and_unavailable(fresh)
        available = sum(status_int(rs, "availableReplicas") for rs in rss)
        status: Obj = {
            "observedGeneration": fresh["metadata"].get("generation", 1),
            "replicas": sum(status_int(rs, "replicas") for rs in rss),
            "updatedReplicas": status_int(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in rss),
            "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0),
        }
        work = {"status": {"conditions": copy.deepcopy(d.get("status", {}).get("conditions", []))}}
        if available >= replicas - max_unavailable:
            self._set_condition(
                work,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            self._set_condition(
                work,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        self._progress(fresh, work, prev_status, status, new_rs)
        status["conditions"] = work["status"]["conditions"]
        if "collisionCount" in prev_status:
            status["collisionCount"] = prev_status["collisionCount"]
        updated = copy.deepcopy(fresh)
        updated["status"] = drop_zero(status)
        self._store.update("deployments", updated, "deployments.apps", check_rv=False)

    def _progress(self, d: Obj, work: Obj, prev: Obj, new: Obj, new_rs: Obj | None) -> None:
        deadline = d["spec"].get("progressDeadlineSeconds")
        paused = bool(d["spec"].get("paused"))
        cur = condition(work, "Progressing")
        if paused:
            if cur is None or cur.get("reason") != "DeploymentPaused":
                self._set_condition(
                    work, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"
                )
            return
        if cur is not None and cur.get("reason") == "DeploymentPaused":
            self._set_condition(
                work, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed"
            )
            cur = condition(work, "Progressing")
        if deadline is None:
            return
        replicas = spec_replicas(d)
        complete_already = (
            cur is not None
            and cur.get("reason") == "NewReplicaSetAvailable"
            and new.get("replicas") == new.get("updatedReplicas")
        )
        if complete_already:
            return
        rs_name = new_rs["metadata"]["name"] if new_rs else d["metadata"]["name"]
        what = f'ReplicaSet "{rs_name}"' if new_rs else f'Deployment "{rs_name}"'
        complete = (
            new["updatedReplicas"] == replicas
            and new["replicas"] == replicas
            and new["availableReplicas"] == replicas
            and new["observedGeneration"] >= d["metadata"].get("generation", 1)
        )
        old_old = int(prev.get("replicas", 0) or 0) - int(prev.get("updatedReplicas", 0) or 0)
        new_old = new["replicas"] - new["updatedReplicas"]
        progressing = (
            new["updatedReplicas"] > int(prev.get("updatedReplicas", 0) or 0)
            or new_old < old_old
            or new["readyReplicas"] > int(prev.get("readyReplicas", 0) or 0)
            or new["availableReplicas"] > int(prev.get("availableReplicas", 0) or 0)
        )
        if complete:
            self._set_condition(
                work,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f"{what} has successfully progressed.",
            )
        elif progressing:
            self._set_condition(
                work,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f"{what} is progressing.",
                touch=True,
            )
        elif cur is not None and cur.get("reason") != "ProgressDeadlineExceeded":
            since = parse_time(cur["lastUpdateTime"])
            if self._clock() > since + float(deadline):
                self._set_condition(
                    work,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f"{what} has timed out progressing.",
                )
            else:
                ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
                self._schedule(since + float(deadline) + 0.05, lambda: self.sync(ns, name))

    def prune(self, namespace: str, name: str) -> None:
        """History pruning once a rollout is complete, as the controller does."""
        d = self._store.get("deployments", namespace, name)
        if d is None:
            return
        cur = condition(d, "Progressing")
        if cur is None or cur.get("reason") != "NewReplicaSetAvailable":
            return
        template = d["spec"]["template"]
        old = [
            rs
            for rs in self._store.owned(d["metadata"]["uid"], "replicasets")
            if is_controlled_by(rs, d) and not equal_ignore_hash(rs["spec"]["template"], template)
        ]
        self._cleanup(d, old)
