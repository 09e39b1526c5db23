"""The labels a compose project's containers carry: compose's own (so that a project started
by `docker compose up` is seen as it is, and containers bva makes are seen by compose), and
bva's (the track, the revision history and a canary's release state)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CONFIG_HASH = "com.docker.compose.config-hash"

P = "io.bva."
TRACK = P + "track"  # "stable" | "canary"
OF = P + "service"  # the platform service a canary belongs to
REVISION = P + "revision"
HISTORY = P + "history"  # JSON: [[revision, image, created, change cause], ...], oldest first
CAUSE = P + "change-cause"
MARKS = P + "marks"  # JSON object: a canary's release state
LOCK = P + "lock"  # on the volume that is the release lock
SIGNOFFS = P + "signoffs"  # on the volume that holds the checklist's sign-offs

CANARY_SUFFIX = "-canary"
HISTORY_LIMIT = 10  # revisions kept, as a Deployment's revisionHistoryLimit


def is_oneoff(labels: Mapping[str, str]) -> bool:
    return labels.get(ONEOFF, "False").lower() == "true"


def track_of(labels: Mapping[str, str]) -> str:
    if labels.get(TRACK) in ("stable", "canary"):
        return labels[TRACK]
    return "canary" if labels.get(SERVICE, "").endswith(CANARY_SUFFIX) else "stable"


def history_of(labels: Mapping[str, str]) -> list[tuple[int, str, float | None, str]]:
    """The revisions a container's labels remember, oldest first; [] when unreadable (the
    labels come from the Engine, where anyone with access may have written them)."""
    try:
        raw = json.loads(labels.get(HISTORY, "[]"))
    except ValueError:
        return []
    out: list[tuple[int, str, float | None, str]] = []
    if not isinstance(raw, list):
        return []
    for entry in raw[-HISTORY_LIMIT:]:
        if (
            isinstance(entry, list)
            and len(entry) == 4
            and isinstance(entry[0], int)
            and isinstance(entry[1], str)
            and (entry[2] is None or isinstance(entry[2], int | float))
            and isinstance(entry[3], str)
        ):
            out.append((entry[0], entry[1], entry[2], entry[3]))
    return out


def history_json(history: list[tuple[int, str, float | None, str]]) -> str:
    return json.dumps([list(h) for h in history[-HISTORY_LIMIT:]], separators=(",", ":"))


def marks_of(labels: Mapping[str, str]) -> dict[str, str]:
    try:
        raw: Any = json.loads(labels.get(MARKS, "{}"))
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float)}
