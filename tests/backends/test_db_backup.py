"""Backups against a real primary: dump, verify, keep; a dump that dies leaves nothing; the
client's version is checked; the password never shows in a command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.db.backup import (
    BackupError,
    Progress,
    list_backups,
    past_retention,
    remove_backup,
    take_backup,
)
from tests.support.pg_world import PgWorld

pytestmark = pytest.mark.xdist_group("pg-backup")


def admin_dsn(world: PgWorld) -> str:
    return world.cluster.dsn("primary", "bharathva")


def _cmdlines() -> str:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return "\n".join(out)


async def test_a_backup_is_dumped_verified_and_described(pg_world: PgWorld, tmp_path: Path) -> None:
    pg_world.sql("INSERT INTO tweets (body) SELECT 'row ' || g FROM generate_series(1, 2000) g")
    seen: list[Progress] = []
    leaked: list[bool] = []

    def progress(p: Progress) -> None:
        seen.append(p)
        if len(seen) == 1:
            leaked.append(pg_world.cluster.password in _cmdlines())

    backup = await take_backup(
        admin_dsn(pg_world), tmp_path, environment="sandbox", reason="r-1", on_progress=progress
    )
    path = Path(backup.path)
    assert path.is_file() and path.suffix == ".dump"
    assert path.name.startswith("bharathva-sandbox-") and path.name.endswith("-r-1.dump")
    assert backup.verified and backup.entries > 0 and backup.size == path.stat().st_size
    assert backup.start_lsn and backup.server_version.startswith(str(pg_world.cluster.version[0]))
    assert seen and seen[-1].objects >= 2  # tweets and flyway_schema_history
    assert leaked == [False]
    assert not list(tmp_path.glob("*.partial"))
    listed = list_backups(tmp_path)
    assert [b.name for b in listed] == [path.name] and listed[0].verified
    assert not list(Path("/tmp").glob("bva-pgpass-*")), "the passfile outlived the dump"


async def test_a_dump_that_dies_leaves_no_backup(pg_world: PgWorld, tmp_path: Path) -> None:
    stopped: list[bool] = []

    def stop_the_server(p: Progress) -> None:
        if not stopped:
            stopped.append(True)
            pg_world.cluster.stop_server("primary")

    try:
        with pytest.raises(BackupError, match="pg_dump failed"):
            await take_backup(
                admin_dsn(pg_world),
                tmp_path,
                environment="sandbox",
                reason="r-2",
                on_progress=stop_the_server,
            )
    finally:
        pg_world.cluster.start_server("primary")
    assert stopped
    assert list(tmp_path.iterdir()) == []


async def test_an_older_pg_dump_is_refused(pg_world: PgWorld, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = bin_dir / tool
        script.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.2'\n")
        script.chmod(0o755)
    with pytest.raises(BackupError, match=r"pg_dump 13\.2 is older than the server"):
        await take_backup(
            admin_dsn(pg_world),
            tmp_path / "backups",
            environment="sandbox",
            reason="manual",
            pg_bin=str(bin_dir),
        )
    assert not (tmp_path / "backups").exists()


async def test_an_unreachable_server_is_one_line_without_the_password(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    dsn = f"postgresql://postgres:Sekr1t-x@127.0.0.1:{pg_world.cluster.primary.port}/bharathva"
    with pytest.raises(BackupError) as err:
        await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    assert "Sekr1t-x" not in str(err.value) and "\n" not in str(err.value)
    assert "password authentication failed" in str(err.value)


def test_listing_retention_and_removal(tmp_path: Path) -> None:
    dump = tmp_path / "bharathva-sandbox-20260101T000000Z-manual.dump"
    dump.write_bytes(b"PGDMP...")
    os.utime(dump, (1_000_000.0, 1_000_000.0))
    (listed,) = list_backups(tmp_path)
    assert not listed.verified and listed.taken_at == 1_000_000.0  # no sidecar: unverified
    assert past_retention([listed], 30 * 86400, now=1_000_000.0 + 31 * 86400) == [listed]
    assert past_retention([listed], 30 * 86400, now=1_000_000.0 + 29 * 86400) == []
    remove_backup(listed)
    assert list(tmp_path.iterdir()) == []
