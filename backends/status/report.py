"""`bva status`: the health picture taken once, as text for people or JSON for scripts.

The JSON shape is documented in the README ("bva status --json") and versioned by its
"schema" field; fields are only ever added."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from backends.db.report import picture_json, picture_text
from backends.errors import BvaError
from backends.platform import Platform
from backends.sanitize import sanitize_text
from backends.status.monitor import HealthMonitor, HealthPicture, ServiceRow

SCHEMA = "bva.status/v1"
EXIT_HEALTHY, EXIT_DEGRADED, EXIT_UNREACHABLE = 0, 1, 3


async def collect(platform: Platform, *, settle: float = 0.0) -> HealthPicture:
    """Workloads and health probes, fetched concurrently. With ``settle`` > 0, keep looking
    (at most that many seconds) until rollouts are complete — for a sandbox just started."""
    monitor = HealthMonitor(
        platform.name,
        platform.env_name,
        platform.services(),
        platform.config.thresholds,
        orchestrator=platform.orchestrator.kind,
    )
    deadline = time.monotonic() + settle
    while True:
        workloads, health, database = await asyncio.gather(
            platform.orchestrator.list_workloads(),
            platform.health.sweep(platform.health_targets()),
            platform.database.refresh() if platform.database is not None else _none(),
            return_exceptions=True,
        )
        now = time.time()
        if isinstance(workloads, BaseException):
            if not isinstance(workloads, BvaError):
                raise workloads
            monitor.kube_failed(str(workloads))
        else:
            monitor.set_workloads(workloads, now)
        if isinstance(health, BaseException):
            raise health
        monitor.apply_health(health, now)
        if isinstance(database, BaseException):
            raise database
        if database is not None:
            monitor.apply_database(database)
        picture = monitor.picture(time.time())
        if picture.healthy or picture.unreachable or time.monotonic() >= deadline:
            return picture
        await asyncio.sleep(0.25)


async def _none() -> None:
    return None


def exit_code(picture: HealthPicture) -> int:
    if picture.unreachable:
        return EXIT_UNREACHABLE
    return EXIT_HEALTHY if picture.healthy else EXIT_DEGRADED


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def _clean(text: str) -> str:
    return sanitize_text(text, 300)


def _row_json(r: ServiceRow) -> dict[str, Any]:
    return {
        "name": r.service,
        "deployment": r.deployment,
        "health": r.health.value,
        "health_detail": _clean(r.health_detail),
        "ready": r.ready,
        "desired": r.desired,
        "image_tag": _clean(r.image_tag),
        "revision": r.revision,
        "rollout": None
        if r.rollout is None
        else {
            "state": r.rollout.state.value,
            "text": r.rollout_text,
            "message": _clean(r.rollout.message),
        },
        "canary": None
        if r.canary_desired is None
        else {"ready": r.canary_ready, "desired": r.canary_desired},
        "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1),
        "last_good": _iso(r.last_good),
        "down_since": _iso(r.down_since),
    }


def to_json(picture: HealthPicture, *, read_only: bool) -> str:
    doc = {
        "schema": SCHEMA,
        "platform": picture.platform,
        "environment": picture.environment,
        "read_only": read_only,
        "taken_at": _iso(picture.taken_at),
        "healthy": picture.healthy,
        "exit_code": exit_code(picture),
        "sources": [
            {
                "name": s.name,
                "ok": s.ok,
                "message": _clean(s.message),
                "last_good": _iso(s.last_good),
            }
            for s in picture.sources
        ],
        "services": [_row_json(r) for r in picture.rows],
        "databases": picture_json(picture.database) if picture.database is not None else [],
        "alerts": [
            {
                "level": a.level.value,
                "service": a.service or None,
                "message": _clean(a.message),
                "since": _iso(a.since),
            }
            for a in picture.alerts
        ],
    }
    return json.dumps(doc, indent=2)


def _health_words(r: ServiceRow) -> str:
    mark = (
        "✔"
        if r.health.value == "UP"
        else "✖"
        if r.health.value in ("DOWN", "UNREACHABLE", "OUT_OF_SERVICE")
        else "?"
    )
    return f"{mark} {r.health.value}"


def to_text(picture: HealthPicture, *, read_only: bool) -> str:
    head = f"{picture.platform} · {picture.environment}"
    if read_only:
        head += " · READ-ONLY"
    lines = [head, ""]
    cols = ("SERVICE", "HEALTH", "PODS", "IMAGE", "REV", "ROLLOUT", "LATENCY")
    rows = [cols]
    for r in picture.rows:
        canary = f" +{r.canary_ready}/{r.canary_desired}c" if r.canary_desired else ""
        latency = f"{r.latency_ms:.0f}ms" if r.latency_ms is not None else "—"
        health = _health_words(r)
        if r.health_detail:
            health += f" ({_clean(r.health_detail)[:40]})"
        rows.append(
            (
                r.service,
                health,
                f"{r.ready}/{r.desired}{canary}",
                _clean(r.image_tag),
                str(r.revision or "—"),
                r.rollout_text,
                latency,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if picture.database is not None:
        lines += ["", *picture_text(picture.database)]
    for s in picture.sources:
        if not s.ok:
            age = f", last good data {_iso(s.last_good)}" if s.last_good else ""
            lines.append(f"\n✖ {s.name} unreachable: {_clean(s.message)}{age}")
    if picture.alerts:
        lines.append("")
        lines += [
            f"{'✖' if a.level.value == 'critical' else '!'} {a.level.value.upper()}: "
            f"{_clean(a.message)}"
            for a in picture.alerts
        ]
    verdict = {
        EXIT_HEALTHY: "all healthy",
        EXIT_DEGRADED: "degraded",
        EXIT_UNREACHABLE: "a source is unreachable",
    }[exit_code(picture)]
    lines += ["", f"status: {verdict}"]
    return "\n".join(lines)
