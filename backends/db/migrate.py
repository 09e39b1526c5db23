"""A release's `flyway migrate`: the real Flyway (or the command the platform file names) run
as a child process. bva does not reimplement migrate; it passes the connection and the
migrations directory through Flyway's and libpq's environment variables (``ps`` shows neither
the URL's password nor any secret), keeps the output's tail, and names the first error."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict

from backends.db.admin import DatabaseAdmin
from backends.db.backup import one_line
from backends.db.tools import libpq_env, reap
from backends.sanitize import sanitize_text

TAIL = 40


class MigrateError(Exception):
    """Migrate could not even be run (no command, no directory); ``str()`` is one line."""


@dataclass(frozen=True, slots=True)
class MigrateResult:
    ok: bool
    exit_code: int
    error: str  # Flyway's first error line, sanitised and masked; "" when ok
    output: tuple[str, ...]  # the last lines it printed, sanitised and masked
    duration_s: float


def migrate_argv(admin: DatabaseAdmin) -> list[str]:
    if admin.migrate_command:
        return list(admin.migrate_command)
    flyway = shutil.which("flyway")
    if flyway is None:
        raise MigrateError(
            "no way to migrate: flyway is not on PATH and the platform file sets no migrate_command"
        )
    return [flyway, "migrate"]


def jdbc_url(dsn: str) -> str:
    """Flyway's JDBC URL for a libpq DSN, without user or password (those go separately)."""
    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    host = parts.get("host", "localhost").split(",")[0]
    port = parts.get("port", "5432").split(",")[0]
    database = parts.get("dbname", parts.get("user", "postgres"))
    query = f"?sslmode={parts['sslmode']}" if "sslmode" in parts else ""
    return f"jdbc:postgresql://{host}:{port}/{database}{query}"


@contextlib.contextmanager
def migrate_env(admin: DatabaseAdmin, dsn: str) -> Iterator[dict[str, str]]:
    if admin.migrations_dir is None:
        raise MigrateError("no migrations directory: set [database] migrations")
    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    schema, _, table = admin.flyway_table.rpartition(".")
    with libpq_env(dsn) as env:
        env = {k: v for k, v in env.items() if not k.startswith("FLYWAY_")}
        env.update(
            FLYWAY_URL=jdbc_url(dsn),
            FLYWAY_LOCATIONS=f"filesystem:{admin.migrations_dir}",
            FLYWAY_TABLE=table,
        )
        if schema:
            env["FLYWAY_DEFAULT_SCHEMA"] = schema
        if "user" in parts:
            env["FLYWAY_USER"] = parts["user"]
        if "password" in parts:
            env["FLYWAY_PASSWORD"] = parts["password"]
        yield env


def first_error(lines: list[str]) -> str:
    """Flyway's first ERROR line, with the database's message when it prints one after it
    ("Message    : ERROR: relation … does not exist"); else the last line."""
    for i, line in enumerate(lines):
        if line.lstrip().upper().startswith("ERROR"):
            message = next(
                (m.split(":", 1)[1].strip() for m in lines[i + 1 :] if m.startswith("Message")),
                "",
            )
            # "ERROR: Migration V8__x.sql failed" reads as "Migration V8__x.sql failed".
            first = line.strip().removeprefix("ERROR:").strip()
            return f"{first}: {message}" if message else first
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


async def run_migrate(
    admin: DatabaseAdmin, dsn: str, *, on_line: Callable[[str], None] | None = None
) -> MigrateResult:
    """Run migrate to the end (or its timeout) and say how it went; raises MigrateError only
    when it could not be started. Cancelling the caller kills the child."""
    argv = migrate_argv(admin)
    tail: deque[str] = deque(maxlen=TAIL)
    seen: list[str] = []
    t0 = time.monotonic()
    with migrate_env(admin, dsn) as env:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=str(admin.migrations_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise MigrateError(f"cannot run {os.path.basename(argv[0])}: {exc.strerror}") from None
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(admin.migrate_timeout_s):
                async for raw in proc.stdout:
                    line = one_line(raw.decode("utf-8", "replace"), dsn)
                    if not line:
                        continue
                    tail.append(line)
                    if len(seen) < 200:
                        seen.append(line)
                    if on_line is not None:
                        on_line(line)
                code = await proc.wait()
        except TimeoutError:
            await reap(proc)
            took = admin.migrate_timeout_s
            return MigrateResult(
                False, -1, f"migrate did not finish in {took:g}s: killed", tuple(tail), took
            )
        except BaseException:
            await reap(proc)
            raise
    took = time.monotonic() - t0
    error = "" if code == 0 else sanitize_text(first_error(seen) or f"exit code {code}", 300)
    return MigrateResult(code == 0, code, error, tuple(tail), took)
