"""`python -m backends.sandbox.pgmigrate`: a stand-in for `flyway migrate` on the sandbox's
database only, so a release's migrate step runs here without Java. It reads what bva gives
Flyway (FLYWAY_LOCATIONS, FLYWAY_TABLE, FLYWAY_DEFAULT_SCHEMA; the connection from libpq's
PG* variables) and behaves as Flyway does on what the sandbox needs: it refuses while the
history holds a failed migration (Flyway wants `repair`), applies each pending V…sql file in
its own transaction with its history row, and on an error rolls that file back, writes a
failed row (success = false) and exits 1 with Flyway's kind of message."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from backends.sandbox.pgschema import describe, flyway_checksum

_VERSIONED = re.compile(r"^V[0-9][0-9._]*__.+\.sql$")
LOCK_KEY = 0x62766166  # "bvaf": one migrate at a time, as Flyway's own lock


def _key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.split(r"[._]", version) if p]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    import psycopg
    from psycopg import sql

    location = os.environ.get("FLYWAY_LOCATIONS", "")
    if not location.startswith("filesystem:"):
        _say("ERROR: FLYWAY_LOCATIONS must be filesystem:<dir>")
        return 1
    directory = Path(location.removeprefix("filesystem:"))
    schema = os.environ.get("FLYWAY_DEFAULT_SCHEMA", "public")
    table = sql.Identifier(schema, os.environ.get("FLYWAY_TABLE", "flyway_schema_history"))
    files = sorted(
        (p for p in directory.iterdir() if _VERSIONED.match(p.name)),
        key=lambda p: _key(describe(p.name)[0]),
    )
    try:
        conn = psycopg.connect("", autocommit=True, connect_timeout=5, application_name="flyway")
    except psycopg.Error as exc:
        _say(f"ERROR: Unable to obtain connection from database: {str(exc).strip()}")
        return 1
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        rows = conn.execute(
            sql.SQL("SELECT version, description, success, installed_rank FROM {}").format(table)
        ).fetchall()
        failed = [r for r in rows if not r[2]]
        if failed:
            v, d = failed[0][0], failed[0][1]
            _say("ERROR: Validate failed: Migrations have failed validation")
            _say(
                f"Detected failed migration to version {v} ({d}). Please remove any "
                "half-completed changes then run repair to fix the schema history."
            )
            return 1
        applied = [_key(r[0]) for r in rows if r[0] is not None]
        newest = max(applied, default=())
        rank = max((int(r[3]) for r in rows), default=0)
        pending = [p for p in files if _key(describe(p.name)[0]) > newest]
        _say(f'Current version of schema "{schema}": {_dotted(newest)}')
        if not pending:
            _say(f'Schema "{schema}" is up to date. No migration necessary.')
            return 0
        t0 = time.monotonic()
        for path in pending:
            rank += 1
            version, description = describe(path.name)
            _say(f'Migrating schema "{schema}" to version "{version} - {description}"')
            text = path.read_text(encoding="utf-8")
            error = _apply(conn, table, rank, path.name, text)
            if error:
                _say(f"ERROR: Migration {path.name} failed")
                _say("-" * 40)
                _say(f"SQL State  : {error[0]}")
                _say(f"Message    : {error[1]}")
                _say(f"Location   : {path}")
                return 1
        took = time.monotonic() - t0
        _say(
            f"Successfully applied {len(pending)} migration{'s' if len(pending) > 1 else ''} "
            f'to schema "{schema}", now at version v{describe(pending[-1].name)[0]} '
            f"(execution time {took:.3f}s)"
        )
    return 0


def _apply(conn: Any, table: Any, rank: int, script: str, text: str) -> tuple[str, str] | None:
    import psycopg
    from psycopg import sql

    version, description = describe(script)
    insert = sql.SQL(
        "INSERT INTO {} (installed_rank, version, description, type, script, checksum, "
        "installed_by, execution_time, success) "
        "VALUES (%s, %s, %s, 'SQL', %s, %s, current_user, %s, %s)"
    ).format(table)
    row = (rank, version, description, script, flyway_checksum(text))
    began = time.monotonic()
    try:
        with conn.transaction():
            conn.execute(text)
            took = int((time.monotonic() - began) * 1000)
            conn.execute(insert, (*row, took, True))
    except psycopg.Error as exc:
        took = int((time.monotonic() - began) * 1000)
        conn.execute(insert, (*row, took, False))
        first = (str(exc).strip().splitlines() or [""])[0]
        return (exc.sqlstate or "?", first)
    return None


def _dotted(key: tuple[int, ...]) -> str:
    return ".".join(map(str, key)) if key else "<< Empty Schema >>"


if __name__ == "__main__":
    sys.exit(main())
