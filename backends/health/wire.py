"""Probe results as JSON, for the prober child process and the console that reads it."""

from __future__ import annotations

from typing import Any

from backends.health.models import (
    HealthComponent,
    ProbeResult,
    ProbeStatus,
    ServiceHealth,
    Unreachable,
)

Obj = dict[str, Any]


def result_to_json(r: ProbeResult) -> Obj:
    return {
        "service": r.service,
        "url": r.url,
        "status": r.status.value,
        "reason": r.reason.value if r.reason is not None else None,
        "detail": r.detail,
        "http_status": r.http_status,
        "latency_ms": r.latency_ms,
        "components": [[c.name, c.status, [list(d) for d in c.details]] for c in r.components],
        "cert_days_left": r.cert_days_left,
        "checked_at": r.checked_at,
        "answered_by": r.answered_by,
    }


def result_from_json(o: Obj) -> ProbeResult:
    return ProbeResult(
        service=str(o["service"]),
        url=str(o["url"]),
        status=ProbeStatus(o["status"]),
        reason=Unreachable(o["reason"]) if o["reason"] is not None else None,
        detail=str(o["detail"]),
        http_status=o["http_status"],
        latency_ms=o["latency_ms"],
        components=tuple(
            HealthComponent(
                name=str(name), status=str(status), details=tuple((k, v) for k, v in details)
            )
            for name, status, details in o["components"]
        ),
        cert_days_left=o["cert_days_left"],
        checked_at=float(o["checked_at"]),
        answered_by=o["answered_by"],
    )


def health_to_json(h: ServiceHealth) -> Obj:
    return {"service": h.service, "probes": [result_to_json(p) for p in h.probes]}


def health_from_json(o: Obj) -> ServiceHealth:
    return ServiceHealth.of(str(o["service"]), [result_from_json(p) for p in o["probes"]])
