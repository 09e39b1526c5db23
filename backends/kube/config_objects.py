"""Kubernetes API JSON of the objects the pre-deploy checklist reads -> bva models: a
HorizontalPodAutoscaler (autoscaling/v2) -> ``Autoscaler``, a Deployment's pod template ->
``EnvRef``s, a Secret or ConfigMap -> its keys. Pure functions.

Values never leave this module: a literal variable keeps its name only, and ``data_keys``
takes the keys of ``data`` and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from backends.errors import BvaError
from backends.kube.convert import parse_time
from backends.models import Autoscaler, Condition, EnvRef, EnvSource

JsonObj = Mapping[str, Any]


def _map(value: Any) -> JsonObj:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[JsonObj]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# -- HorizontalPodAutoscaler ------------------------------------------------------------------


def _target(target: JsonObj) -> str:
    """A MetricTarget as kubectl's describe words it: "70% utilization", "1k average value"."""
    kind = str(target.get("type", ""))
    if kind == "Utilization" or (not kind and "averageUtilization" in target):
        return f"{_int(target.get('averageUtilization'))}% utilization"
    if kind == "AverageValue" or (not kind and "averageValue" in target):
        return f"{target.get('averageValue', '?')} average value"
    return f"{target.get('value', '?')} value"


def metric_description(metric: JsonObj) -> str:
    """One autoscaling/v2 MetricSpec as a short phrase ("cpu 70% utilization")."""
    kind = str(metric.get("type", ""))
    if kind == "Resource":
        source = _map(metric.get("resource"))
        return f"{source.get('name', '?')} {_target(_map(source.get('target')))}"
    if kind == "ContainerResource":
        source = _map(metric.get("containerResource"))
        return (
            f"{source.get('name', '?')} {_target(_map(source.get('target')))}"
            f" (container {source.get('container', '?')})"
        )
    if kind in ("Pods", "Object", "External"):
        source = _map(metric.get(kind[0].lower() + kind[1:]))
        name = _map(source.get("metric")).get("name", "?")
        described = _map(source.get("describedObject"))
        on = f" on {described.get('kind', '?')}/{described.get('name', '?')}" if described else ""
        return f"{kind.lower()} {name}{on} {_target(_map(source.get('target')))}"
    return f"{kind or 'unknown'} metric"


def autoscaler_from(hpa: JsonObj) -> Autoscaler:
    meta = _map(hpa.get("metadata"))
    spec = _map(hpa.get("spec"))
    status = _map(hpa.get("status"))
    ref = _map(spec.get("scaleTargetRef"))
    conditions = tuple(
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "")),
            reason=str(c.get("reason", "")),
            message=str(c.get("message", "")),
            last_update=parse_time(c.get("lastTransitionTime")),
        )
        for c in _list(status.get("conditions"))
    )
    return Autoscaler(
        name=str(meta.get("name", "")),
        target_kind=str(ref.get("kind", "")),
        target_name=str(ref.get("name", "")),
        # The API server defaults minReplicas to 1.
        min_replicas=_int(spec.get("minReplicas"), 1),
        max_replicas=_int(spec.get("maxReplicas")),
        current_replicas=_int(status.get("currentReplicas")),
        desired_replicas=_int(status.get("desiredReplicas")),
        metrics=tuple(metric_description(m) for m in _list(spec.get("metrics"))),
        conditions=conditions,
        last_scale=parse_time(status.get("lastScaleTime")),
    )


# -- a pod template's environment -------------------------------------------------------------

_KEY_REFS: dict[str, EnvSource] = {"configMapKeyRef": "configmap", "secretKeyRef": "secret"}
_WHOLE_REFS: dict[str, EnvSource] = {"configMapRef": "configmap", "secretRef": "secret"}


def _env_var(container: str, var: JsonObj) -> EnvRef:
    name = str(var.get("name", ""))
    source = _map(var.get("valueFrom"))
    if not source:
        return EnvRef(container, name, "literal")  # the value stays behind, on purpose
    for field, kind in _KEY_REFS.items():
        if field in source:
            ref = _map(source[field])
            return EnvRef(
                container,
                name,
                kind,
                ref_name=str(ref.get("name", "")),
                ref_key=str(ref.get("key", "")),
                optional=bool(ref.get("optional")),
            )
    if "resourceFieldRef" in source:
        ref = _map(source["resourceFieldRef"])
        return EnvRef(
            container,
            name,
            "resource",
            ref_name=str(ref.get("resource", "")),
            ref_key=str(ref.get("containerName", "")),
        )
    if "fieldRef" in source:
        path = str(_map(source["fieldRef"]).get("fieldPath", ""))
        return EnvRef(container, name, "field", ref_name=path)
    # A source newer than this code (fileKeyRef, ...): named, so the variable is not lost.
    return EnvRef(container, name, "field", ref_name=next(iter(source), ""))


def env_refs(deployment: JsonObj) -> list[EnvRef]:
    """Every variable of the pod template's containers (not init containers), in the order the
    kubelet applies them: each container's ``envFrom`` imports, then its ``env``."""
    template = _map(_map(deployment.get("spec")).get("template"))
    refs: list[EnvRef] = []
    for container in _list(_map(template.get("spec")).get("containers")):
        cname = str(container.get("name", ""))
        for item in _list(container.get("envFrom")):
            for field, kind in _WHOLE_REFS.items():
                if field in item:
                    ref = _map(item[field])
                    refs.append(
                        EnvRef(
                            cname,
                            f"{item.get('prefix') or ''}*",
                            kind,
                            ref_name=str(ref.get("name", "")),
                            optional=bool(ref.get("optional")),
                        )
                    )
        refs.extend(_env_var(cname, var) for var in _list(container.get("env")))
    return refs


# -- Secrets and ConfigMaps -------------------------------------------------------------------


def data_keys(response: Any, what: str) -> frozenset[str]:
    """The keys of ``data`` in a raw Secret/ConfigMap response (``_preload_content=False``);
    the body, values and all, is dropped before this returns, and no error carries it."""
    try:
        raw = response.data
    finally:
        response.release_conn()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None  # raised below, outside the handler: no chained error keeps the body
    del raw
    if not isinstance(body, dict):
        raise BvaError(f"unreadable answer from the Kubernetes API for {what}")
    data = body.get("data")
    keys = frozenset(str(k) for k in data) if isinstance(data, dict) else frozenset()
    del body, data
    return keys
