"""HorizontalPodAutoscalers (autoscaling/v2) in the sandbox: the manifests it seeds, and a
status controller that keeps each one's status coherent with its target Deployment.

The sandbox does NOT autoscale: it simulates no CPU, so nothing would drive a change. The
status says what a real HPA would say about a workload whose CPU sits at the target (which
recommends no change): currentReplicas is the target's status.replicas, desiredReplicas its
spec.replicas held within [minReplicas, maxReplicas], the CPU reading equals the target, and
the conditions use the controller's own reasons (a count outside the bounds is
ScalingLimited, a missing target is FailedGetScale). Scaling stays with kubectl scale and bva.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from backends.sandbox.store import Store, rfc3339

Obj = dict[str, Any]
PLURAL = "horizontalpodautoscalers"
WHAT = "horizontalpodautoscalers.autoscaling"


def autoscaler_manifest(
    name: str, namespace: str, deployment: str, lo: int, hi: int, cpu: int
) -> Obj:
    """The seed guide's shape: a Deployment target and one CPU utilization metric."""
    return {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": deployment}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": lo,
            "maxReplicas": hi,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu},
                    },
                }
            ],
        },
        "status": {},
    }


def _condition(type_: str, status: bool, reason: str, message: str) -> Obj:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
    }


def _millis(quantity: Any) -> int | None:
    """A CPU quantity ("250m", "1", "0.5") in millicores."""
    text = str(quantity)
    try:
        return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)
    except ValueError:
        return None


def _request_millis(target: Obj, resource: str) -> int | None:
    """The pod's summed request of ``resource`` (CPU only), None when a container has none."""
    containers = ((target.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or []
    if resource != "cpu" or not containers:
        return None
    total = 0
    for c in containers:
        millis = _millis(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
        if millis is None:
            return None
        total += millis
    return total


def _current_metrics(spec: Obj, target: Obj) -> list[Obj]:
    """Each Resource utilization metric read at its target (see the module's note)."""
    out = []
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        goal = resource.get("target") or {}
        if metric.get("type") == "Resource" and goal.get("type") == "Utilization":
            name = str(resource.get("name", "cpu"))
            utilization = int(goal.get("averageUtilization", 0))
            current: Obj = {"averageUtilization": utilization}
            request = _request_millis(target, name)
            if request is not None:
                current["averageValue"] = f"{request * utilization // 100}m"
            out.append({"type": "Resource", "resource": {"name": name, "current": current}})
    return out


def autoscaler_status(hpa: Obj, target: Obj | None) -> Obj:
    """The status a real HPA controller would report (without its timestamps)."""
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    lo = int(spec.get("minReplicas") or 1)
    hi = int(spec.get("maxReplicas") or lo)
    if target is None:
        what = f"{str(ref.get('kind', '')).lower()}s/scale"
        return {
            "currentReplicas": 0,
            "desiredReplicas": 0,
            "conditions": [
                _condition(
                    "AbleToScale",
                    False,
                    "FailedGetScale",
                    "the HPA controller was unable to get the target's current scale: "
                    f'{what} "{ref.get("name", "")}" not found',
                )
            ],
        }
    wanted = int((target.get("spec") or {}).get("replicas", 1))
    current = int((target.get("status") or {}).get("replicas", 0))
    if wanted == 0:
        return {
            "currentReplicas": current,
            "desiredReplicas": 0,
            "conditions": [
                _condition(
                    "AbleToScale", True, "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                ),
                _condition(
                    "ScalingActive", False, "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                ),
            ],
        }  # fmt: skip
    desired = min(max(wanted, lo), hi)
    if desired == wanted:
        able = _condition(
            "AbleToScale", True, "ReadyForNewScale", "recommended size matches current size"
        )
    else:
        able = _condition(
            "AbleToScale", True, "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )  # fmt: skip
    if wanted < lo:
        limited = _condition(
            "ScalingLimited", True, "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )  # fmt: skip
    elif wanted > hi:
        limited = _condition(
            "ScalingLimited", True, "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )  # fmt: skip
    else:
        limited = _condition(
            "ScalingLimited", False, "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )  # fmt: skip
    status: Obj = {"currentReplicas": current, "desiredReplicas": desired}
    metrics = _current_metrics(spec, target)
    if metrics and current > 0:
        status["currentMetrics"] = metrics
    active = _condition(
        "ScalingActive", True, "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from cpu resource "
        "utilization (percentage of request)",
    )  # fmt: skip
    status["conditions"] = [able, active, limited]
    return status


class AutoscalerController:
    """Writes each HPA's status when it or its target changes (the cluster calls ``sync``)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def targeting(self, namespace: str, deployment: str) -> list[tuple[str, str]]:
        return [
            (namespace, hpa["metadata"]["name"])
            for hpa in self._store.list_objects(PLURAL, namespace)
            if (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == "Deployment"
            and hpa["spec"]["scaleTargetRef"].get("name") == deployment
        ]

    def sync(self, namespace: str, name: str) -> None:
        hpa = self._store.get(PLURAL, namespace, name)
        if hpa is None:
            return
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        target = None
        if ref.get("kind") == "Deployment":
            target = self._store.get("deployments", namespace, str(ref.get("name", "")))
        status = autoscaler_status(hpa, target)
        old = hpa.get("status") or {}
        old_conditions = {c.get("type"): c for c in old.get("conditions") or []}
        now = rfc3339(self._clock())
        for cond in status["conditions"]:
            before = old_conditions.get(cond["type"]) or {}
            same = before.get("status") == cond["status"]
            cond["lastTransitionTime"] = before.get("lastTransitionTime") if same else now
            if not cond["lastTransitionTime"]:
                cond["lastTransitionTime"] = now
        if status == old:
            return
        updated = copy.deepcopy(hpa)
        updated["status"] = status
        self._store.update(PLURAL, updated, WHAT, check_rv=False)
