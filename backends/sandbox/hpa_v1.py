"""autoscaling/v1 HorizontalPodAutoscalers, served by conversion from the stored v2 objects
(the API server does the same): ``kubectl autoscale`` still creates through v1.

v1 knows one metric, the CPU utilization target. As on a real server, a v1 write keeps the
stored object's other metrics only through v2; a v1 replace sets the CPU one alone. Watches
through v1 are not converted (nothing bva or kubectl uses watches HPAs through v1).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aiohttp import web

Obj = dict[str, Any]
V1 = ("autoscaling", "v1", "horizontalpodautoscalers")
V2 = ("autoscaling", "v2", "horizontalpodautoscalers")


def _cpu_target(metrics: list[Obj]) -> int | None:
    for m in metrics:
        resource = m.get("resource") or {}
        target = resource.get("target") or {}
        if (
            m.get("type") == "Resource"
            and resource.get("name") == "cpu"
            and target.get("type") == "Utilization"
        ):
            value = target.get("averageUtilization")
            return value if isinstance(value, int) else None
    return None


def _cpu_current(metrics: list[Obj]) -> int | None:
    for m in metrics:
        resource = m.get("resource") or {}
        if m.get("type") == "Resource" and resource.get("name") == "cpu":
            value = (resource.get("current") or {}).get("averageUtilization")
            return value if isinstance(value, int) else None
    return None


def to_v1(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    out: Obj = {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v1",
        "metadata": copy.deepcopy(obj.get("metadata") or {}),
    }
    spec1 = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    cpu = _cpu_target(spec.get("metrics") or [])
    if cpu is not None:
        spec1["targetCPUUtilizationPercentage"] = cpu
    out["spec"] = copy.deepcopy(spec1)
    status1 = {
        k: status[k]
        for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
        if k in status
    }
    current = _cpu_current(status.get("currentMetrics") or [])
    if current is not None:
        status1["currentCPUUtilizationPercentage"] = current
    out["status"] = status1
    return out


def from_v1(obj: Any) -> Any:
    """A v1 body as the v2 object to store (anything not an object is left to fail later)."""
    if not isinstance(obj, dict):
        return obj
    spec = dict(obj.get("spec") or {})
    cpu = spec.pop("targetCPUUtilizationPercentage", None)
    if cpu is not None:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": cpu},
                },
            }
        ]
    out = {**obj, "apiVersion": "autoscaling/v2", "spec": spec}
    status = obj.get("status")
    if isinstance(status, dict):
        out["status"] = {k: v for k, v in status.items() if k != "currentCPUUtilizationPercentage"}
    return out


def v1_response(resp: web.StreamResponse) -> web.StreamResponse:
    """A handler's JSON answer with its HPAs (or HPA list) turned into v1."""
    if not isinstance(resp, web.Response) or not isinstance(resp.body, bytes):
        return resp
    try:
        data = json.loads(resp.body)
    except ValueError:
        return resp
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "HorizontalPodAutoscaler":
        data = to_v1(data)
    elif kind == "HorizontalPodAutoscalerList":
        data["apiVersion"] = "autoscaling/v1"
        data["items"] = [to_v1(item) for item in data.get("items") or []]
    else:
        return resp
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=resp.status,
        content_type="application/json",
    )
