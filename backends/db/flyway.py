"""Flyway's view of a database: flyway_schema_history rows and migration files merged into the
states `flyway info` prints, with versions ordered as Flyway orders them."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from backends.db.models import Flyway, Migration, MigrationState
from backends.sanitize import sanitize_text

# V<version>__<description>.sql and R__<description>.sql (Flyway's default prefixes).
_VERSIONED = re.compile(r"^V(?P<version>[0-9][0-9._]*)__(?P<desc>.+)\.sql$")
_REPEATABLE = re.compile(r"^R__(?P<desc>.+)\.sql$")


def version_key(version: str) -> tuple[int, ...]:
    """Flyway compares versions part by part as integers, missing parts being 0 (1 == 1.0)."""
    parts = [int(p) for p in re.split(r"[._]", version) if p != ""]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def checksum(text: str) -> int:
    """Flyway's checksum: CRC32 over each line's UTF-8 bytes (BOM stripped, line endings not
    included), as a signed 32-bit integer."""
    crc = 0
    for i, line in enumerate(text.splitlines()):
        if i == 0:
            line = line.removeprefix("\ufeff")
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: str | None
    description: str
    script: str
    checksum: int


def read_migrations(directory: Path) -> list[MigrationFile]:
    """The migration files of ``directory`` (not recursive), in no particular order."""
    found: list[MigrationFile] = []
    for path in directory.iterdir():
        m = _VERSIONED.match(path.name) or _REPEATABLE.match(path.name)
        if m is None or not path.is_file():
            continue
        version = m.groupdict().get("version")
        text = path.read_text(encoding="utf-8", errors="replace")
        found.append(
            MigrationFile(
                version=version.replace("_", ".") if version else None,
                description=m.group("desc").replace("_", " "),
                script=path.name,
                checksum=checksum(text),
            )
        )
    return found


def _text(value: object, limit: int) -> str:
    return sanitize_text(str(value), limit) if value is not None else ""


def merge(rows: Iterable[Mapping[str, object]], files: list[MigrationFile] | None) -> Flyway:
    """History rows (installed_rank order) and, when known, the files: one state per row as
    `flyway info` names it, then the unapplied files: Pending, or Ignored when older than the
    newest applied version."""
    by_version = {version_key(f.version): f for f in files or [] if f.version is not None}
    repeatables = {f.description: f for f in files or [] if f.version is None}
    newest_file = max(by_version, default=None)
    out: list[Migration] = []
    applied: set[tuple[int, ...]] = set()
    for row in rows:
        version = row.get("version")
        vtext = str(version) if version is not None else None
        kind = _text(row.get("type"), 20)
        success = bool(row.get("success"))
        state = MigrationState.SUCCESS if success else MigrationState.FAILED
        if kind == "BASELINE":
            state = MigrationState.BASELINE
        elif kind == "DELETE":
            state = MigrationState.DELETED
        elif files is not None and vtext is not None and success:
            key = version_key(vtext)
            if key not in by_version:
                future = newest_file is None or key > newest_file
                state = MigrationState.FUTURE if future else MigrationState.MISSING
        elif files is not None and vtext is None and success:
            f = repeatables.get(_text(row.get("description"), 200))
            if f is None:
                state = MigrationState.MISSING
            elif f.checksum != row.get("checksum"):
                state = MigrationState.OUTDATED
        if vtext is not None:
            applied.add(version_key(vtext))  # a failed one is repaired, not pending again
        file = by_version.get(version_key(vtext)) if vtext is not None else None
        if vtext is None:
            file = repeatables.get(_text(row.get("description"), 200))
        crc = row.get("checksum")
        rank = row.get("installed_rank")
        on = row.get("installed_on")
        ms = row.get("execution_time")
        out.append(
            Migration(
                version=_text(vtext, 50) if vtext is not None else None,
                description=_text(row.get("description"), 200),
                type=kind,
                script=_text(row.get("script"), 200),
                state=state,
                installed_rank=int(rank) if isinstance(rank, int | float) else None,
                installed_on=float(on) if isinstance(on, int | float) else None,
                execution_ms=int(ms) if isinstance(ms, int | float) else None,
                checksum=int(crc) if isinstance(crc, int) else None,
                file_checksum=file.checksum if file is not None else None,
            )
        )
    baseline = max(
        (version_key(m.version) for m in out if m.state is MigrationState.BASELINE and m.version),
        default=(),
    )
    newest_applied = max(applied, default=())
    for key in sorted(k for k in by_version if k not in applied and k > baseline):
        f = by_version[key]
        # Flyway only applies versions above the newest applied one (without outOfOrder).
        state = MigrationState.PENDING if key > newest_applied else MigrationState.IGNORED
        out.append(
            Migration(f.version, f.description, "SQL", f.script, state, file_checksum=f.checksum)
        )
    return Flyway(migrations=tuple(out), files_read=files is not None)
