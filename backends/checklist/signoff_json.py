"""The sign-off record as the orchestrators store it (a Lease's annotation on Kubernetes, a
holder container's label on compose): one JSON text, read back field by field."""

from __future__ import annotations

import json
import math

from backends.checklist.models import SignOff, SignoffRecord
from backends.sanitize import sanitize_text


def record_json(record: SignoffRecord) -> str:
    return json.dumps(
        {
            "release_version": record.release_version,
            "signoffs": [[s.item, s.who, s.at, s.comment] for s in record.signoffs],
        },
        separators=(",", ":"),
    )


def record_from_json(text: str, version: str = "") -> SignoffRecord | None:
    """The stored record, checked field by field (anyone with access to the namespace may
    have written it); None when it does not read."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("release_version"), str):
        return None
    rows = data.get("signoffs")
    out: list[SignOff] = []
    for row in rows if isinstance(rows, list) else []:
        if (
            isinstance(row, list)
            and len(row) == 4
            and all(isinstance(v, str) for v in (row[0], row[1], row[3]))
            and isinstance(row[2], int | float)
            and math.isfinite(row[2])
        ):
            out.append(
                SignOff(
                    sanitize_text(row[0], 64),
                    sanitize_text(row[1], 80),
                    float(row[2]),
                    sanitize_text(row[3], 300),
                )
            )
    return SignoffRecord(sanitize_text(data["release_version"], 128), tuple(out), version)
