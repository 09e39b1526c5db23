"""Backups against a real primary: dump, verify, keep; a dump that dies leaves nothing; the
client's version is checked; the password never shows in a command line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from backends.db.backup import (
    Backup,
    BackupError,
    Progress,
    list_backups,
    past_retention,
    remove_backup,
    take_backup,
)
from tests.support.pg_world import PgWorld

pytestmark = pytest.mark.xdist_group("pg-backup")


@pytest.fixture
def private_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory for bva's passfiles: other tests (and other
    processes) write theirs to /tmp at the same time."""
    directory = tmp_path_factory.mktemp("private-tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


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


async def test_a_backup_is_dumped_verified_and_described(
    pg_world: PgWorld, tmp_path: Path, private_tmp: Path
) -> None:
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
    assert list(private_tmp.iterdir()) == [], "the passfile outlived the dump"


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


# --- review fixes ------------------------------------------------------------------------


def _children(name: str) -> list[int]:
    """This process's children running ``name``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if comm == name and int(rest.split()[1]) == os.getpid():
            out.append(int(pid))
    return out


async def test_a_cancelled_backup_kills_pg_dump_and_keeps_nothing(
    pg_world: PgWorld, tmp_path: Path, private_tmp: Path
) -> None:
    import asyncio

    pg_world.sql("INSERT INTO tweets (body) SELECT 'bulk ' || g FROM generate_series(1, 50000) g")
    seen: list[int] = []
    task: asyncio.Task[object] | None = None

    def cancel(p: Progress) -> None:
        if not seen and task is not None:
            seen.extend(_children("pg_dump"))
            task.cancel()

    task = asyncio.ensure_future(
        take_backup(
            admin_dsn(pg_world), tmp_path, environment="sandbox", reason="r-c", on_progress=cancel
        )
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) == 1, "pg_dump was not running when the task was cancelled"
    assert not Path(f"/proc/{seen[0]}").exists(), "pg_dump outlived the cancelled task"
    assert _children("pg_dump") == [] and _children("pg_restore") == []
    assert list(tmp_path.iterdir()) == []
    assert list(private_tmp.iterdir()) == [], "the passfile outlived the cancelled dump"


async def test_pg_dump_waits_for_a_lock_only_as_long_as_it_is_told(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    import time

    with pg_world.admin() as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE tweets IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        locked = r"pg_dump failed: .*timeout \(a table's lock was not granted within 0\.5s\)"
        with pytest.raises(BackupError, match=locked) as err:
            await take_backup(
                admin_dsn(pg_world),
                tmp_path,
                environment="sandbox",
                reason="locked",
                lock_wait_timeout=0.5,
            )
        holder.execute("ROLLBACK")
    assert time.monotonic() - t0 < 15
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


async def test_tool_and_os_errors_are_backup_errors(pg_world: PgWorld, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"^no pg_dump in "):
        await take_backup(
            admin_dsn(pg_world),
            tmp_path,
            environment="sandbox",
            reason="manual",
            pg_bin=str(tmp_path),
        )
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(BackupError, match="File exists"):
        await take_backup(admin_dsn(pg_world), not_a_dir, environment="sandbox", reason="manual")
    port = pg_world.cluster.primary.port
    with pytest.raises(BackupError) as err:
        await take_backup(
            f"host=127.0.0.1 port={port} password=Sekr1t-y nonsense=1",
            tmp_path / "b",
            environment="sandbox",
            reason="manual",
        )
    assert "Sekr1t-y" not in str(err.value) and "\n" not in str(err.value)


def test_libpq_env_carries_every_keyword_that_has_a_variable() -> None:
    from backends.db.tools import ToolError, libpq_env

    dsn = (
        "host=db.example port=6432 dbname=app user=owner password=Pa55:w\\\\rd sslmode=verify-full"
        " sslcert=/c/cert.pem sslkey=/c/key.pem sslrootcert=/c/root.pem sslcrl=/c/crl.pem"
        " target_session_attrs=read-write gssencmode=disable krbsrvname=pg"
        " ssl_min_protocol_version=TLSv1.3 channel_binding=require keepalives=1"
    )
    with libpq_env(dsn, connect_timeout=7) as env:
        assert {k: v for k, v in env.items() if k.startswith("PG") and k != "PGPASSFILE"} == {
            "PGHOST": "db.example",
            "PGPORT": "6432",
            "PGDATABASE": "app",
            "PGUSER": "owner",
            "PGSSLMODE": "verify-full",
            "PGSSLCERT": "/c/cert.pem",
            "PGSSLKEY": "/c/key.pem",
            "PGSSLROOTCERT": "/c/root.pem",
            "PGSSLCRL": "/c/crl.pem",
            "PGTARGETSESSIONATTRS": "read-write",
            "PGGSSENCMODE": "disable",
            "PGKRBSRVNAME": "pg",
            "PGSSLMINPROTOCOLVERSION": "TLSv1.3",
            "PGCHANNELBINDING": "require",
            "PGCONNECT_TIMEOUT": "7",
            "PGAPPNAME": "bva",
        }
        assert Path(env["PGPASSFILE"]).read_text() == "*:*:*:*:Pa55\\:w\\\\rd\n"
        assert "Pa55" not in " ".join(v for k, v in env.items() if k != "PGPASSFILE")
    assert not Path(env["PGPASSFILE"]).exists()
    with (
        pytest.raises(ToolError, match="sets sslpassword, which bva cannot pass"),
        libpq_env("host=x sslpassword=hush"),
    ):
        pass


async def test_pg_dump_gets_the_dsns_keywords_and_never_the_password(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    dsn = admin_dsn(pg_world) + "?gssencmode=disable&target_session_attrs=read-write&keepalives=1"
    seen: list[tuple[str, str]] = []

    def look(p: Progress) -> None:
        if not seen:
            (pid,) = _children("pg_dump")
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
            seen.append((environ, _cmdlines()))

    await take_backup(dsn, tmp_path, environment="sandbox", reason="kw", on_progress=look)
    ((environ, cmdlines),) = seen
    assert "PGTARGETSESSIONATTRS=read-write" in environ.split("\0")
    assert "PGGSSENCMODE=disable" in environ.split("\0")
    assert "PGCONNECT_TIMEOUT=5" in environ.split("\0")
    assert pg_world.cluster.password not in environ + cmdlines


def test_a_sidecar_pointing_elsewhere_is_not_followed(tmp_path: Path) -> None:
    import json

    mine, foreign = tmp_path / "mine", tmp_path / "foreign"
    mine.mkdir()
    foreign.mkdir()
    name = "bharathva-sandbox-20260101T000000Z-manual.dump"
    for d in (mine, foreign):
        (d / name).write_bytes(b"PGDMP....")
    sidecar = {
        "path": str(foreign / name),
        "database": "bharathva",
        "environment": "sandbox",
        "reason": "manual",
        "taken_at": 1_000_000.0,
        "duration_s": 1.0,
        "size": 9,
        "server_version": "18.6",
        "dump_version": "18.6",
        "start_lsn": "0/1",
        "verified": True,
        "entries": 3,
    }
    (mine / name).with_suffix(".json").write_text(json.dumps(sidecar))
    (listed,) = list_backups(mine)
    assert listed.path == str(mine / name) and listed.verified
    remove_backup(listed)
    assert list(mine.iterdir()) == [] and (foreign / name).exists()
    # A sidecar naming another file, or with a field of the wrong type, is not believed.
    (mine / name).write_bytes(b"PGDMP....")
    for bad in ({"path": str(foreign / "other.dump")}, {"size": "9"}, {"verified": "yes"}):
        (mine / name).with_suffix(".json").write_text(json.dumps({**sidecar, **bad}))
        (listed,) = list_backups(mine)
        assert listed.path == str(mine / name) and not listed.verified


def test_the_newest_verified_backup_is_never_past_retention() -> None:
    import dataclasses

    day = 86400.0
    base = Backup("/b/x.dump", "db", "env", "r", 0.0, 1.0, 1, "18", "18", "0/1", True, 1)
    old_verified = dataclasses.replace(base, path="/b/1.dump", taken_at=1 * day)
    newer_verified = dataclasses.replace(base, path="/b/2.dump", taken_at=2 * day)
    newest_unverified = dataclasses.replace(
        base, path="/b/3.dump", taken_at=3 * day, verified=False
    )
    now = 100 * day
    assert past_retention([old_verified], 30 * day, now) == []
    assert past_retention([newest_unverified, newer_verified, old_verified], 30 * day, now) == [
        newest_unverified,
        old_verified,
    ]
