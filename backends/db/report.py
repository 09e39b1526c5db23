"""The database picture as JSON (the `databases` list of `bva status --json`, and
`bva db status --json`) and as text for people. Fields are only ever added."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backends.db.models import (
    DatabasePicture,
    Flyway,
    Migration,
    ServerReading,
    ServerState,
    flyway_words,
    human_bytes,
)

SCHEMA = "bva.db/v1"
MARK = {ServerState.UP: "✔", ServerState.DEGRADED: "!", ServerState.DOWN: "✖"}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def _migration(m: Migration) -> dict[str, Any]:
    return {
        "version": m.version,
        "description": m.description,
        "type": m.type,
        "script": m.script,
        "state": m.state.value,
        "installed_rank": m.installed_rank,
        "installed_on": _iso(m.installed_on),
        "execution_ms": m.execution_ms,
        "checksum": m.checksum,
        "file_checksum": m.file_checksum,
    }


def flyway_json(f: Flyway) -> dict[str, Any]:
    latest = f.latest
    return {
        "latest": latest.version if latest else None,
        "applied": len(f.applied),
        "pending": [m.version for m in f.pending],
        "failed": [m.version or m.description for m in f.failed],
        "files_read": f.files_read,
        "migrations": [_migration(m) for m in f.migrations],
    }


def server_json(s: ServerReading) -> dict[str, Any]:
    c = s.connections
    doc: dict[str, Any] = {
        "name": s.name,
        "role": s.role.value,
        "target": s.target,
        "state": s.state.value,
        "problems": [{"text": p.text, "critical": p.critical} for p in s.problems],
        "error": s.error,
        "last_good": _iso(s.last_good),
        "version": s.version or None,
        "started": _iso(s.started_at),
        "in_recovery": s.in_recovery,
        "round_trip_ms": _round(s.round_trip_ms, 1),
        "missing": list(s.missing),
        "connections": None
        if c is None
        else {
            "total": c.total,
            "active": c.active,
            "idle": c.idle,
            "idle_in_transaction": c.idle_in_transaction,
            "waiting": c.waiting,
            "max_connections": c.max_connections,
            "pool_size": c.pool_size,
            "pool_pct": round(c.pool_pct, 1),
            "by_application": dict(c.by_application),
        },
        "lag_s": _round(s.lag_s),
        "gap_bytes": s.gap_bytes,
        "blocked_sessions": len(s.blocked),
        "standbys": [
            {
                "name": b.name,
                "client": b.client,
                "state": b.state,
                "sync_state": b.sync_state,
                "write_lag_s": _round(b.write_lag_s),
                "flush_lag_s": _round(b.flush_lag_s),
                "replay_lag_s": _round(b.replay_lag_s),
                "replay_gap_bytes": b.replay_gap_bytes,
            }
            for b in s.standbys
        ],
        "replica": None
        if s.replica is None
        else {
            "receive_lsn": s.replica.receive_lsn,
            "replay_lsn": s.replica.replay_lsn,
            "gap_bytes": s.replica.gap_bytes,
            "lag_s": _round(s.replica.lag_s),
            "replay_paused": s.replica.replay_paused,
            "receiver": s.replica.receiver,
        },
    }
    if s.flyway is not None:
        doc["flyway"] = flyway_json(s.flyway)
    return doc


def picture_json(db: DatabasePicture) -> list[dict[str, Any]]:
    return [server_json(s) for s in db.servers]


def lag_words(s: ServerReading) -> str:
    lag = s.lag_s
    if lag is None:
        # A primary whose standbys report no lag has sent them nothing lately.
        return "no traffic" if s.standbys else "—"
    return f"{lag:.2f}s / {human_bytes(s.gap_bytes)}"


def connection_words(s: ServerReading) -> str:
    c = s.connections
    if c is None:
        return "—"
    return f"{c.total}/{c.pool_size} pool ({c.pool_pct:.0f}%), {c.total}/{c.max_connections} max"


def picture_text(db: DatabasePicture) -> list[str]:
    rows = [("SERVER", "ROLE", "STATE", "CONNECTIONS", "LAG", "TARGET")]
    for s in db.servers:
        rows.append(
            (
                s.name,
                s.role.value,
                f"{MARK[s.state]} {s.state.value.upper()}",
                connection_words(s),
                lag_words(s),
                s.target,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    primary = db.primary
    if primary is not None and primary.state is not ServerState.DOWN:
        lines.append(f"flyway: {flyway_words(primary.flyway)}")
    for s in db.servers:
        for p in s.problems:
            lines.append(f"{'✖' if p.critical else '!'} {s.name}: {p.text}")
        for m in s.missing:
            lines.append(f"  {s.name}: {m}")
        if s.state is ServerState.DOWN and s.last_good:
            lines.append(f"  {s.name}: last good data {_iso(s.last_good)}")
    for note in db.problems:
        lines.append(f"! {note}")
    return lines
