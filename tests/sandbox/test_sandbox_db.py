"""`bva sandbox` with its real database: up before "ready", described in the state file with
0600 DSN files, live load from the services, the drills from another terminal, and nothing
left behind after SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backends.config.values import resolve_secret
from backends.sandbox.pgcluster import PgCluster
from backends.sandbox.pgworld import OWNER_FILE, _postmaster_of, reap_orphans
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state, start_sandbox
from tests.support.waiting import wait_until

pytestmark = pytest.mark.xdist_group("sandbox-db")


@pytest.fixture(scope="module")
def sandbox_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path_factory.mktemp("sandbox-db"), database=True, timeout=90)
    try:
        yield running
    finally:
        running.stop()


def block(sb: RunningSandbox) -> dict[str, object]:
    state = read_sandbox_state(sb.runtime_dir)
    assert state.database is not None
    return state.database


def dsn(sb: RunningSandbox, server: str) -> str:
    b = block(sb)
    refs = {"primary": b["url"], **{f"replica-{i}": r for i, r in enumerate(b["replicas"], 1)}}  # type: ignore[arg-type]
    return resolve_secret(str(refs[server]))


def one(sb: RunningSandbox, server: str, sql: str) -> object:
    with psycopg.connect(dsn(sb, server), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def bva(sb: RunningSandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bva", *args], env=sb.env, capture_output=True, text=True, timeout=90, check=False
    )


def test_ready_comes_after_the_database_and_the_state_names_it(sandbox_db: RunningSandbox) -> None:
    out = "\n".join(sandbox_db.output)
    b = block(sandbox_db)
    assert set(b) == {
        "url",
        "replicas",
        "admin_url",
        "pool_size",
        "migrations",
        "migrate_command",
        "data_dir",
    }
    assert b["migrate_command"][-2:] == ["-m", "backends.sandbox.pgmigrate"]  # type: ignore[index]
    assert b["pool_size"] == 20 and len(b["replicas"]) == 2  # type: ignore[arg-type]
    for ref in [b["url"], *b["replicas"], b["admin_url"]]:  # type: ignore[misc]
        path = Path(str(ref).removeprefix("file:"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        password = secret.split("@")[0].rsplit(":", 1)[1]
        assert password and password not in out
    assert sorted(p.name for p in Path(str(b["migrations"])).iterdir())[-1].startswith("V7__")
    # bva's monitoring role reads, and only reads.
    assert one(sandbox_db, "primary", "SELECT current_user") == "bva_monitor"
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        one(sandbox_db, "primary", "CREATE TABLE nope (x int)")


def test_the_services_load_the_primary_and_the_replicas(sandbox_db: RunningSandbox) -> None:
    apps = (
        "SELECT string_agg(DISTINCT application_name, ',') FROM pg_stat_activity"
        " WHERE backend_type = 'client backend'"
    )

    def loaded(server: str, want: set[str]) -> bool:
        got = set(str(one(sandbox_db, server, apps) or "").split(","))
        return want <= got

    services = {"auth-service", "user-service", "tweet-service"}
    wait_until(lambda: loaded("primary", services), 20, "the services' pools on the primary")
    wait_until(lambda: loaded("replica-1", {"tweet-service"}), 20, "reads on replica-1")
    streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    assert one(sandbox_db, "primary", streaming) == 2
    status = bva(sandbox_db, "db", "status", "--env", "sandbox", "--json")
    doc = json.loads(status.stdout)
    assert status.returncode == 0, status.stdout
    assert doc["databases"][0]["flyway"]["latest"] == "6"
    assert doc["databases"][0]["flyway"]["pending"] == ["7"]


def test_a_service_scaled_to_zero_holds_no_connection(sandbox_db: RunningSandbox) -> None:
    """Its pool goes with its pods, as a real service's: that is how a restore drains."""
    count = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'user-service'"
        " AND backend_type = 'client backend'"
    )

    def kubectl_scale(n: int) -> None:
        subprocess.run(
            ["kubectl", "-n", sandbox_db.namespace, "scale", "deployment/user-service",
             f"--replicas={n}"],
            env=sandbox_db.env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    wait_until(lambda: int(str(one(sandbox_db, "primary", count))) > 0, 20, "user-service's pool")
    kubectl_scale(0)
    try:
        wait_until(lambda: one(sandbox_db, "primary", count) == 0, 30, "the pool to close")
    finally:
        kubectl_scale(2)
    wait_until(lambda: int(str(one(sandbox_db, "primary", count))) > 0, 30, "the pool back")


def test_drills_pause_flood_stop(sandbox_db: RunningSandbox) -> None:
    done = bva(sandbox_db, "sandbox", "drill", "pause-replay", "replica-1")
    assert done.returncode == 0 and done.stdout.strip() == "replica-1: replay paused"
    try:
        assert one(sandbox_db, "replica-1", "SELECT pg_is_wal_replay_paused()") is True

        def lagging() -> bool:
            doc = json.loads(bva(sandbox_db, "db", "status", "--env", "sandbox", "--json").stdout)
            replica = doc["databases"][1]
            return replica["lag_s"] > 1.0 and any(
                p["text"] == "replay paused" for p in replica["problems"]
            )

        wait_until(lagging, 30, "replica-1's lag to pass 1 s while the load writes", interval=0.5)
    finally:
        assert bva(sandbox_db, "sandbox", "drill", "resume-replay", "replica-1").returncode == 0
    flood = bva(sandbox_db, "sandbox", "drill", "flood")
    try:
        assert flood.returncode == 0 and "idle connections open (drill-idle)" in flood.stdout
        degraded = bva(sandbox_db, "db", "status", "--env", "sandbox")
        assert degraded.returncode == 1 and "of the pool (over 80%)" in degraded.stdout
    finally:
        assert bva(sandbox_db, "sandbox", "drill", "calm").returncode == 0
    assert bva(sandbox_db, "sandbox", "drill", "stop", "replica-2").stdout.strip() == (
        "replica-2: stopped"
    )
    try:
        down = bva(sandbox_db, "db", "status", "--env", "sandbox")
        assert "✖ replica-2: unreachable" in down.stdout
    finally:
        assert bva(sandbox_db, "sandbox", "drill", "start", "replica-2").returncode == 0

    def back() -> bool:
        return bva(sandbox_db, "db", "status", "--env", "sandbox").returncode == 0

    wait_until(back, 30, "every server UP again", interval=0.5)
    bad = bva(sandbox_db, "sandbox", "drill", "pause-replay", "primary")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "bva: pause-replay is for a replica, primary is the primary"
    )


def test_everything_is_removed_after_sigterm(tmp_path: Path) -> None:
    sb = start_sandbox(tmp_path, database=True, timeout=90)
    b = block(sb)
    data_dir = Path(str(b["data_dir"]))
    files = Path(str(b["url"]).removeprefix("file:")).parent
    assert data_dir.is_dir() and files.is_dir()
    secret = resolve_secret(str(b["url"])).split("@")[0].rsplit(":", 1)[1]
    sb.stop()
    assert sb.proc.stdout is not None
    rest = sb.proc.stdout.read()
    assert "database bharathva (PostgreSQL " in rest and "replica-2 127.0.0.1:" in rest
    assert rest.rstrip().endswith("sandbox stopped") and secret not in rest
    password = Path(str(b["url"]).removeprefix("file:"))
    assert not data_dir.exists() and not files.exists() and not password.exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(data_dir) not in ps.stdout


def test_no_db_and_a_too_old_pg_bin(tmp_path: Path) -> None:
    old = tmp_path / "pg13"
    old.mkdir()
    for tool in ("postgres", "initdb", "pg_ctl", "pg_basebackup"):
        (old / tool).write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 13.4'\n")
        (old / tool).chmod(0o755)
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path / "rt")}
    out = subprocess.run(
        ["bva", "sandbox", "--pg-bin", str(old)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"bva: error: PostgreSQL 13.4 in {old}: the sandbox needs 14 or newer"
    )


def test_a_hangup_stops_the_servers_too(tmp_path: Path) -> None:
    """A closed SSH session or a killed tmux sends SIGHUP: the servers must not outlive it."""
    sb = start_sandbox(tmp_path, database=True, timeout=90)
    data_dir = Path(str(block(sb)["data_dir"]))
    sb.proc.send_signal(signal.SIGHUP)
    assert sb.proc.wait(30) == 0
    assert not data_dir.exists()


def test_servers_whose_sandbox_was_killed_are_reaped(tmp_path: Path) -> None:
    cluster = PgCluster(replicas=1)
    cluster.start()
    try:
        assert cluster.directory is not None
        dead = subprocess.Popen(["true"])
        dead.wait()
        (cluster.directory / OWNER_FILE).write_text(f"{dead.pid}\n")
        pids = [
            int((cluster.directory / s.name / "postmaster.pid").read_text().split()[0])
            for s in cluster.servers
        ]
        assert reap_orphans() == [cluster.directory]
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 10, "reaped")
        assert not cluster.directory.exists()
    finally:
        cluster.stop()


def test_reaping_spares_what_the_sandbox_did_not_make(tmp_path: Path) -> None:
    """A directory under the same prefix that is not private, or a postmaster.pid naming a
    process that is no server of that directory (a reused pid), is not ours to kill."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        for name, mode in (("bva-pg-open", 0o755), ("bva-pg-private", 0o700)):
            d = tmp_path / name
            (d / "primary").mkdir(parents=True)
            d.chmod(mode)
            (d / OWNER_FILE).write_text(f"{dead.pid}\n")
            (d / "primary" / "postmaster.pid").write_text(f"{bystander.pid}\n/elsewhere\n")
        planted = tmp_path / "bva-pg-private" / "primary" / "postmaster.pid"
        # The pid is alive but no server of that directory: not one to signal.
        assert _postmaster_of(planted, tmp_path / "bva-pg-private") is None
        assert reap_orphans(tmp_path) == [tmp_path / "bva-pg-private"]
        assert (tmp_path / "bva-pg-open").exists()
        assert bystander.poll() is None, "a process that is not the directory's server lives"
    finally:
        bystander.kill()
        bystander.wait()
