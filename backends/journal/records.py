"""The journal's record format: the fields and their JSON types, the canonical JSON a record's
hash is taken over, and reading one line back (shape and chain checks with a one-line reason).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

GENESIS_HASH = "0" * 64

Stage = Literal["before", "after"]
STAGES: tuple[str, ...] = ("before", "after")

# Field name -> accepted JSON types, in the order they are checked.
_FIELDS: dict[str, tuple[type, ...]] = {
    "seq": (int,),
    "ts": (int, float),
    "actor": (str,),
    "environment": (str,),
    "action": (str,),
    "stage": (str,),
    "target": (str,),
    "result": (str,),
    "details": (dict,),
    "prev_hash": (str,),
    "hash": (str,),
}
_HEX64 = re.compile(r"[0-9a-f]{64}")


class JournalError(Exception):
    """The journal cannot be read or written; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True, slots=True)
class JournalRecord:
    seq: int
    ts: float
    actor: str
    environment: str
    action: str
    stage: Stage
    target: str
    result: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """The record as one canonical JSON line (no newline): what the file holds."""
        return canonical_json(self.to_dict())

    def computed_hash(self) -> str:
        return record_hash(self.to_dict())


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int  # records in an intact journal; records checked good before the break otherwise
    first_bad: int | None  # 1-based line number of the first broken record
    reason: str  # "" when ok
    last_hash: str = GENESIS_HASH  # hash of the last good record (anchor for the chain)


@dataclass(slots=True)
class JournalEntry:
    """What ``Journal.record`` yields: the "before" record, and what the "after" will say.

    The body may set ``result`` (e.g. ``"refused: deployment is paused"``) and add to
    ``details``; on an exception the result is ``"failed: <message>"`` whatever was set.
    """

    before: JournalRecord
    result: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)
    after: JournalRecord | None = None


# --- hashing -------------------------------------------------------------------------------


def canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def record_hash(data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of every field except ``hash``."""
    body = {k: v for k, v in data.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


# --- reading a line back ---------------------------------------------------------------------


def parse_line(raw: bytes, terminated: bool = True) -> tuple[dict[str, Any], str | None]:
    if not raw.strip():
        return {}, "blank line"
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return {}, "not valid UTF-8"
    except ValueError:
        return {}, "not valid JSON" + ("" if terminated else " (file cut short)")
    if not terminated:
        return {}, "no newline after the last record (file cut short)"
    problem = shape_problem(data)
    if problem is not None:
        return {}, problem
    return cast(dict[str, Any], data), None


def shape_problem(data: object) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    for name, types in _FIELDS.items():
        if name not in data:
            return f"missing field {name!r}"
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, types):
            return f"field {name!r} has the wrong type"
    extra = sorted(set(data) - set(_FIELDS))
    if extra:
        return f"unexpected field {extra[0][:40]!r}"
    if data["stage"] not in STAGES:
        return "field 'stage' is not 'before' or 'after'"
    if isinstance(data["ts"], float) and not math.isfinite(data["ts"]):
        return "field 'ts' is not a finite number"
    for name in ("prev_hash", "hash"):
        if not _HEX64.fullmatch(data[name]):
            return f"field {name!r} is not a sha256 hex digest"
    return None


def chain_problem(data: dict[str, Any], number: int, prev_hash: str) -> str | None:
    try:
        computed = record_hash(data)
    except ValueError:  # NaN/Infinity sneaked in a nested value
        return "not valid canonical JSON"
    if computed != data["hash"]:
        return "hash mismatch"
    seq = data["seq"]
    if seq != number:
        if seq > number:
            return f"sequence gap: expected {number}, got {seq}"
        return f"sequence out of order: expected {number}, got {seq}"
    if data["prev_hash"] != prev_hash:
        if number == 1:
            return "previous hash of the first record is not the genesis hash (64 zeros)"
        return f"previous hash does not match line {number - 1}"
    return None


def record_from_dict(data: Mapping[str, Any]) -> JournalRecord:
    return JournalRecord(
        seq=int(data["seq"]),
        ts=float(data["ts"]),
        actor=str(data["actor"]),
        environment=str(data["environment"]),
        action=str(data["action"]),
        stage=cast(Stage, data["stage"]),
        target=str(data["target"]),
        result=str(data["result"]),
        details=dict(data["details"]),
        prev_hash=str(data["prev_hash"]),
        hash=str(data["hash"]),
    )
