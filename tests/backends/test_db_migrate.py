"""How bva runs a release's migrate command: the connection and the directory in Flyway's
and libpq's environment variables, never in argv; the first error named; a command that
hangs killed at its timeout, and one whose caller gives up killed at once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from backends.db.admin import DatabaseAdmin
from backends.db.migrate import MigrateError, first_error, jdbc_url, run_migrate

SECRET = "s3cr:et pass"
DSN = "postgresql://owner:s3cr%3Aet%20pass@127.0.0.1:5999/bharathva?sslmode=disable"


def admin(tmp: Path, *command: str, timeout: float = 30.0) -> DatabaseAdmin:
    return DatabaseAdmin(
        environment="test",
        backup_dir=tmp / "backups",
        rpo_s=900,
        retention_s=86400,
        read_only=False,
        migrations_dir=tmp,
        flyway_table="public.flyway_schema_history",
        migrate_command=(sys.executable, "-c", *command) if command else None,
        migrate_timeout_s=timeout,
    )


REPORT = """
import json, os, sys
keep = {k: v for k, v in os.environ.items() if k.startswith(("FLYWAY_", "PG"))}
pgpass = open(keep["PGPASSFILE"]).read() if "PGPASSFILE" in keep else ""
cmdline = open("/proc/self/cmdline", "rb").read().decode()
with open(os.environ["REPORT_TO"], "w") as f:
    json.dump({"env": keep, "cmdline": cmdline, "pgpass": pgpass}, f)
"""


async def test_credentials_travel_in_the_environment_never_in_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report.json"
    monkeypatch.setenv("REPORT_TO", str(report))
    result = await run_migrate(admin(tmp_path, REPORT), DSN)
    assert result.ok, result
    seen = json.loads(report.read_text())
    env = seen["env"]
    assert SECRET not in seen["cmdline"]
    assert env["FLYWAY_URL"] == "jdbc:postgresql://127.0.0.1:5999/bharathva?sslmode=disable"
    assert env["FLYWAY_USER"] == "owner" and env["FLYWAY_PASSWORD"] == SECRET
    assert env["FLYWAY_LOCATIONS"] == f"filesystem:{tmp_path}"
    assert env["FLYWAY_TABLE"] == "flyway_schema_history"
    assert env["FLYWAY_DEFAULT_SCHEMA"] == "public"
    assert env["PGHOST"] == "127.0.0.1" and env["PGPORT"] == "5999"
    assert "PGPASSWORD" not in env and "s3cr" in seen["pgpass"]
    # The passfile was removed once the command ended.
    assert not Path(env["PGPASSFILE"]).exists()


async def test_a_failure_names_flyways_first_error_with_the_database_message(
    tmp_path: Path,
) -> None:
    script = (
        'print(\'Migrating schema "public" to version "8 - broken"\');'
        "print('ERROR: Migration V8__broken.sql failed');"
        "print('SQL State  : 42P01');"
        "print('Message    : ERROR: relation \"x\" does not exist');"
        "raise SystemExit(1)"
    )
    result = await run_migrate(admin(tmp_path, script), DSN)
    assert not result.ok and result.exit_code == 1
    assert result.error == 'Migration V8__broken.sql failed: ERROR: relation "x" does not exist'


def test_first_error_falls_back_to_the_last_line() -> None:
    assert first_error(["starting", "it broke", ""]) == "it broke"
    assert first_error([]) == ""


async def test_the_password_is_masked_in_what_the_command_prints(tmp_path: Path) -> None:
    script = f"print('connecting to {DSN}'); print('password {SECRET}')"
    result = await run_migrate(admin(tmp_path, script), DSN)
    assert SECRET not in "\n".join(result.output)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_hanging_migrate_is_killed_at_its_timeout(tmp_path: Path) -> None:
    script = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    t0 = time.monotonic()
    result = await run_migrate(admin(tmp_path, script, timeout=1.0), DSN)
    assert time.monotonic() - t0 < 20
    assert not result.ok and "did not finish in 1s" in result.error
    assert _gone(int(result.output[0]))


async def test_cancelling_the_release_kills_the_migrate_child(tmp_path: Path) -> None:
    pids: list[str] = []
    started = asyncio.Event()

    def line(text: str) -> None:
        pids.append(text)
        started.set()

    script = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    task = asyncio.create_task(run_migrate(admin(tmp_path, script), DSN, on_line=line))
    await asyncio.wait_for(started.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone(int(pids[0]))


async def test_without_flyway_or_a_command_it_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MigrateError, match="flyway is not on PATH"):
        await run_migrate(admin(tmp_path), DSN)


def test_jdbc_url_has_neither_user_nor_password() -> None:
    assert jdbc_url("host=db.internal port=6432 dbname=app user=u password=p") == (
        "jdbc:postgresql://db.internal:6432/app"
    )
