"""Server-side printing (meta.k8s.io Table), so `kubectl get` shows the usual columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.sandbox.podutil import parse_time, pod_ready

Obj = dict[str, Any]
Column = tuple[str, str, int]  # name, format, priority (1 = only with -o wide)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d" if h % 24 == 0 else f"{d}d{h % 24}h"
    if h < 24 * 365 * 2:
        return f"{d}d"
    y = d // 365
    if h < 24 * 365 * 8:
        return f"{y}y" if d % 365 == 0 else f"{y}y{d % 365}d"
    return f"{y}y"


def _age(obj: Obj, now: float) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    return human_duration(now - parse_time(ts)) if ts else "<unknown>"


def _containers(template_spec: Obj) -> tuple[str, str]:
    cs = template_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector(sel: Obj) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items()))


def pod_status_text(pod: Obj, now: float) -> tuple[str, int, int, int, str]:
    """kubectl's STATUS, ready count, total, restarts, last-restart suffix."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    statuses = status.get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = restarts = 0
    last_restart = 0.0
    has_running = False
    for cs in reversed(statuses):
        restarts += int(cs.get("restartCount", 0))
        term = (cs.get("lastState") or {}).get("terminated")
        if term and term.get("finishedAt"):
            last_restart = max(last_restart, parse_time(term["finishedAt"]))
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            reason = f"ExitCode:{state['terminated'].get('exitCode', 0)}"
        elif cs.get("ready") and "running" in state:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        reason = "Running" if pod_ready(pod) else "NotReady"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    suffix = ""
    if last_restart:
        suffix = f"{restarts} ({human_duration(now - last_restart)} ago)"
    return reason, ready, total, restarts, suffix


def _pod_row(pod: Obj, now: float) -> list[Any]:
    reason, ready, total, restarts, suffix = pod_status_text(pod, now)
    status = pod.get("status") or {}
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        suffix or str(restarts),
        _age(pod, now),
        status.get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _deploy_row(d: Obj, now: float) -> list[Any]:
    st = d.get("status") or {}
    names, images = _containers(d["spec"]["template"].get("spec") or {})
    return [
        d["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{d['spec'].get('replicas', 0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        _age(d, now),
        names,
        images,
        _selector(d["spec"].get("selector") or {}),
    ]


def _rs_row(rs: Obj, now: float) -> list[Any]:
    st = rs.get("status") or {}
    names, images = _containers(rs["spec"]["template"].get("spec") or {})
    return [
        rs["metadata"]["name"],
        rs["spec"].get("replicas", 0),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _age(rs, now),
        names,
        images,
        _selector(rs["spec"].get("selector") or {}),
    ]


def _event_row(ev: Obj, now: float) -> list[Any]:
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"]["creationTimestamp"]
    obj = ev.get("involvedObject") or {}
    return [
        human_duration(now - parse_time(last)),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{obj.get('kind', '').lower()}/{obj.get('name', '')}",
        ev.get("message", ""),
    ]


def _service_row(svc: Obj, now: float) -> list[Any]:
    spec = svc.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [
        svc["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "None"),
        "<none>",
        ports or "<none>",
        _age(svc, now),
        ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>",
    ]


def _metric_source(metric: Obj) -> Obj:
    """A v2 MetricSpec/MetricStatus's source: {"type": "Resource", "resource": {...}}."""
    kind = str(metric.get("type", ""))
    source = metric.get(kind[:1].lower() + kind[1:])
    return source if isinstance(source, dict) else {}


def _hpa_target(spec_metric: Obj, current: list[Obj]) -> str:
    """One TARGETS entry as kubectl prints it since 1.30: "cpu: 70%/70%"."""
    source = _metric_source(spec_metric)
    target = source.get("target") or {}
    name = source.get("name") or (source.get("metric") or {}).get("name", "")
    reading: Obj = {}
    for status in current:
        if status.get("type") == spec_metric.get("type"):
            reading = _metric_source(status).get("current") or {}
            break
    if target.get("type") == "Utilization":
        value = reading.get("averageUtilization")
        have = f"{value}%" if value is not None else "<unknown>"
        return f"{name}: {have}/{target.get('averageUtilization')}%"
    field = "averageValue" if target.get("type") == "AverageValue" else "value"
    return f"{name}: {reading.get(field, '<unknown>')}/{target.get(field, '')}"


def _hpa_row(hpa: Obj, now: float) -> list[Any]:
    spec = hpa.get("spec") or {}
    status = hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics = spec.get("metrics") or []
    targets = ", ".join(_hpa_target(m, status.get("currentMetrics") or []) for m in metrics[:2])
    if len(metrics) > 2:
        targets += f" + {len(metrics) - 2} more..."
    return [
        hpa["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        targets or "<none>",
        spec.get("minReplicas", "<unset>"),
        spec.get("maxReplicas", 0),
        status.get("currentReplicas", 0),
        _age(hpa, now),
    ]


TABLES: dict[str, tuple[list[Column], Callable[[Obj, float], list[Any]]]] = {
    "pods": (
        [
            ("Name", "name", 0),
            ("Ready", "", 0),
            ("Status", "", 0),
            ("Restarts", "", 0),
            ("Age", "", 0),
            ("IP", "", 1),
            ("Node", "", 1),
            ("Nominated Node", "", 1),
            ("Readiness Gates", "", 1),
        ],
        _pod_row,
    ),
    "deployments": (
        [
            ("Name", "name", 0),
            ("Ready", "", 0),
            ("Up-to-date", "", 0),
            ("Available", "", 0),
            ("Age", "", 0),
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ],
        _deploy_row,
    ),
    "replicasets": (
        [
            ("Name", "name", 0),
            ("Desired", "", 0),
            ("Current", "", 0),
            ("Ready", "", 0),
            ("Age", "", 0),
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ],
        _rs_row,
    ),
    "events": (
        [
            ("Last Seen", "", 0),
            ("Type", "", 0),
            ("Reason", "", 0),
            ("Object", "", 0),
            ("Message", "", 0),
        ],
        _event_row,
    ),
    "services": (
        [
            ("Name", "name", 0),
            ("Type", "", 0),
            ("Cluster-IP", "", 0),
            ("External-IP", "", 0),
            ("Port(s)", "", 0),
            ("Age", "", 0),
            ("Selector", "", 1),
        ],
        _service_row,
    ),
    "namespaces": (
        [("Name", "name", 0), ("Status", "", 0), ("Age", "", 0)],
        lambda o, now: [
            o["metadata"]["name"],
            o.get("status", {}).get("phase", "Active"),
            _age(o, now),
        ],
    ),
    "nodes": (
        [
            ("Name", "name", 0),
            ("Status", "", 0),
            ("Roles", "", 0),
            ("Age", "", 0),
            ("Version", "", 0),
        ],
        lambda o, now: [
            o["metadata"]["name"],
            "Ready",
            "<none>",
            _age(o, now),
            o.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""),
        ],
    ),
    "secrets": (
        [("Name", "name", 0), ("Type", "", 0), ("Data", "", 0), ("Age", "", 0)],
        lambda o, now: [
            o["metadata"]["name"],
            o.get("type", "Opaque"),
            len(o.get("data") or {}),
            _age(o, now),
        ],
    ),
    "configmaps": (
        [("Name", "name", 0), ("Data", "", 0), ("Age", "", 0)],
        lambda o, now: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            _age(o, now),
        ],
    ),
    "horizontalpodautoscalers": (
        [
            ("Name", "name", 0),
            ("Reference", "", 0),
            ("Targets", "", 0),
            ("MinPods", "", 0),
            ("MaxPods", "", 0),
            ("Replicas", "", 0),
            ("Age", "", 0),
        ],
        _hpa_row,
    ),
    "leases": (
        [("Name", "name", 0), ("Holder", "", 0), ("Age", "", 0)],
        lambda o, now: [
            o["metadata"]["name"],
            (o.get("spec") or {}).get("holderIdentity", ""),
            _age(o, now),
        ],
    ),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def to_table(plural: str, items: list[Obj], now: float, rv: str, include: str) -> Obj:
    columns, row_fn = TABLES.get(
        plural,
        ([("Name", "name", 0), ("Age", "", 0)], lambda o, n: [o["metadata"]["name"], _age(o, n)]),
    )
    rows = []
    for obj in items:
        row: Obj = {"cells": row_fn(obj, now)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {"name": n, "type": "string", "format": f, "description": n, "priority": p}
            for n, f, p in columns
        ],
        "rows": rows,
    }
