"""`bva db status`, `bva db backup|backups|prune` and the `databases` of `bva status --json`,
as a user runs them, against a real primary and replica; the password never reaches the
terminal or the journal."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.pg_world import PgWorld

pytestmark = pytest.mark.xdist_group("pg-cli")


@pytest.fixture(scope="module")
def world(pg_world: PgWorld) -> PgWorld:
    return pg_world


def bva(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bva", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def env_for(world: PgWorld, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ, BVA_DB_URL=world.dsn("primary"), BVA_DB_REPLICA_URL=world.dsn("replica-1")
    )
    env.pop("BVA_CONFIG", None)
    env.update(extra)
    return env


def test_db_status_prints_both_servers_and_the_flyway_line(world: PgWorld) -> None:
    out = bva("db", "status", "--env", "production", env=env_for(world))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "BharathVA · production · database"
    assert any(line.startswith("primary ") and "✔ UP" in line for line in lines)
    assert any(line.startswith("replica-1 ") and "✔ UP" in line for line in lines)
    assert "flyway: latest 1.1, pending unknown" in out.stdout
    assert world.monitor_password not in out.stdout + out.stderr


def test_db_status_json(world: PgWorld) -> None:
    out = bva("db", "status", "--env", "production", "--json", env=env_for(world))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "bva.db/v1" and doc["ok"] is True and doc["pool_size"] == 20
    primary, replica = doc["databases"]
    assert primary["role"] == "primary" and primary["in_recovery"] is False
    assert [s["name"] for s in primary["standbys"]] == ["replica-1"]
    assert [m["version"] for m in primary["flyway"]["migrations"]] == ["1", "1.1"]
    assert replica["replica"]["receiver"] == "streaming" and "flyway" not in replica
    assert world.monitor_password not in out.stdout


def test_a_failed_migration_degrades_and_exits_1(world: PgWorld) -> None:
    world.sql(
        "INSERT INTO flyway_schema_history VALUES (9, '2', 'broken', 'SQL', 'V2__broken.sql',"
        " 5, 'app', now(), 3, false)"
    )
    try:
        out = bva("db", "status", "--env", "production", env=env_for(world))
    finally:
        world.sql("DELETE FROM flyway_schema_history WHERE installed_rank = 9")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "✖ primary: failed migration: 2" in out.stdout
    assert "1 FAILED (2)" in out.stdout


def test_a_wrong_password_is_unreachable_and_never_shown(world: PgWorld) -> None:
    port = world.cluster.primary.port
    wrong = "Wr0ng-Pa55word"
    env = env_for(world, BVA_DB_URL=f"postgresql://bva_monitor:{wrong}@127.0.0.1:{port}/bharathva")
    for args in (("db", "status"), ("db", "status", "--json")):
        out = bva(*args, "--env", "production", env=env)
        assert out.returncode == 3, out.stdout + out.stderr
        assert "password authentication failed" in out.stdout
        assert wrong not in out.stdout + out.stderr


def test_an_unset_dsn_is_a_one_line_usage_error(world: PgWorld) -> None:
    env = env_for(world)
    del env["BVA_DB_URL"]
    out = bva("db", "status", "--env", "production", env=env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "bva: not configured: env:BVA_DB_URL: environment variable BVA_DB_URL is not set"
    ]
    assert out.stdout == ""


def test_db_needs_an_action() -> None:
    out = bva("db", env=dict(os.environ))
    assert out.returncode == 2
    actions = "status, migrations, backup, backups, restore, prune"
    assert out.stderr.strip() == f"bva: error: db needs an action: {actions} (see 'bva db --help')"


def test_status_json_carries_the_databases(world: PgWorld) -> None:
    # Production's cluster is not reachable from here: the exit code says so (3), and the
    # database is still read and reported.
    out = bva("status", "--env", "production", "--json", env=env_for(world))
    doc = json.loads(out.stdout)
    assert doc["schema"] == "bva.status/v1"
    assert [d["name"] for d in doc["databases"]] == ["primary", "replica-1"]
    assert all(d["state"] == "up" for d in doc["databases"])
    assert any(s["name"] == "database" and s["ok"] for s in doc["sources"])
    assert world.monitor_password not in out.stdout + out.stderr


# --- backups -----------------------------------------------------------------------------


def backup_env(world: PgWorld, tmp_path: Path) -> dict[str, str]:
    # The backup role is the owner: here the superuser, through the same env: reference.
    return env_for(
        world,
        BVA_DB_URL=world.cluster.dsn("primary", "bharathva"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        BVA_JOURNAL_DIR=str(tmp_path / "journal"),
    )


def test_backup_then_backups_then_prune(world: PgWorld, tmp_path: Path) -> None:
    env = backup_env(world, tmp_path)
    out = bva("db", "backups", "--env", "production", env=env)
    assert out.returncode == 1 and "no verified backup" in out.stdout
    out = bva("db", "backup", "--env", "production", "--reason", "before r-7", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("backup ") and "verified" in out.stdout
    assert world.cluster.password not in out.stdout + out.stderr
    listed = bva("db", "backups", "--env", "production", "--json", env=env)
    doc = json.loads(listed.stdout)
    assert listed.returncode == 0 and doc["within_rpo"] is True
    (b,) = doc["backups"]
    assert b["verified"] and b["reason"] == "before r-7" and b["size"] > 0
    assert Path(doc["directory"]) == tmp_path / "data" / "bva" / "backups" / "production"
    journal = (tmp_path / "journal" / "production.jsonl").read_text()
    assert '"db.backup"' in journal and world.cluster.password not in journal
    # Nothing is past 30 days: prune removes nothing and asks nothing.
    pruned = bva("db", "prune", "--env", "production", env=env)
    assert pruned.returncode == 0 and "nothing past the retention" in pruned.stdout
    old = Path(b["path"])
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    sidecar = old.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["taken_at"] = time.time() - 40 * 86400
    sidecar.write_text(json.dumps(data))
    stale = bva("db", "backups", "--env", "production", env=env)
    assert stale.returncode == 1 and "older than the RPO (15m)" in stale.stdout, stale.stdout
    # Past the retention, but the only verified backup: never pruned, and prune says so.
    kept = bva("db", "prune", "--env", "production", "--yes", env=env)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines()[0] == (
        f"keeping {old.name} (40d old, past the retention): it is the newest verified backup"
    )
    assert "nothing past the retention" in kept.stdout and old.exists() and sidecar.exists()
    assert bva("db", "backup", "--env", "production", env=env).returncode == 0
    refused = subprocess.run(
        ["bva", "db", "prune", "--env", "production"],
        env=env,
        input="no\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and old.exists()
    assert "keeping" not in refused.stdout and f"  {old.name}  " in refused.stdout
    pruned = bva("db", "prune", "--env", "production", "--yes", env=env)
    assert pruned.returncode == 0 and not old.exists() and not sidecar.exists()
    assert "removed 1 backup(s) past the retention" in pruned.stdout
    assert len(list(old.parent.glob("*.dump"))) == 1
    assert '"db.prune"' in (tmp_path / "journal" / "production.jsonl").read_text()


def test_backup_is_refused_read_only_before_any_secret_is_read(
    world: PgWorld, tmp_path: Path
) -> None:
    env = backup_env(world, tmp_path)
    del env["BVA_DB_URL"]  # a secret that would fail to resolve: never reached
    out = bva("db", "backup", "--env", "production", "--read-only", env=env)
    assert out.returncode == 1
    assert out.stderr.strip() == "bva: read-only: backup refused"
    assert not (tmp_path / "data").exists()


# --- migrations ----------------------------------------------------------------------------


def platform_with_migrations(tmp_path: Path, directory: Path) -> Path:
    from backends.config.loader import builtin_platform_path

    text = builtin_platform_path().read_text()
    text = text.replace("pool_size = 20", f'pool_size = 20\nmigrations = "{directory}"', 1)
    path = tmp_path / "bva.toml"
    path.write_text(text)
    return path


def test_migrations_info_and_validate(world: PgWorld, tmp_path: Path) -> None:
    from backends.db.flyway import checksum

    mig = tmp_path / "migrations"
    mig.mkdir()
    body = "CREATE SCHEMA auth;\n"
    (mig / "V1__create_auth_schema.sql").write_text(body)
    (mig / "V1_1__add_sessions.sql").write_text("CREATE TABLE auth.sessions (id int);\n")
    (mig / "V2__tweets.sql").write_text("SELECT 1;\n")
    # The history rows carry made-up checksums (11, 22): the file for 1.1 differs, 1 is fixed.
    world.sql(f"UPDATE flyway_schema_history SET checksum = {checksum(body)} WHERE version = '1'")
    config = platform_with_migrations(tmp_path, mig)
    env = env_for(world)
    out = bva("--config", str(config), "db", "migrations", "--env", "production", env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "RANK",
        "VERSION",
        "DESCRIPTION",
        "TYPE",
        "STATE",
        "INSTALLED",
        "ON",
        "CHECKSUM",
    ]
    assert [line.split()[1] for line in lines[1:3]] == ["1", "1.1"]
    assert lines[3].split()[:4] == ["2", "tweets", "SQL", "Pending"]  # no rank yet
    assert "validate: FAILED" in out.stdout and "1.1: checksum mismatch (applied 22" in out.stdout
    (mig / "V1_1__add_sessions.sql").unlink()
    world.sql("DELETE FROM flyway_schema_history WHERE version = '1.1'")
    try:
        out = bva(
            "--config", str(config), "db", "migrations", "--env", "production", "--json", env=env
        )
    finally:
        world.sql(
            "INSERT INTO flyway_schema_history VALUES (2, '1.1', 'add sessions', 'SQL', "
            "'V1_1__add_sessions.sql', 22, 'app', now(), 8, true)"
        )
    assert out.stdout, out.stderr
    doc = json.loads(out.stdout)
    assert out.returncode == 0, doc["problems"]
    assert doc["schema"] == "bva.db.migrations/v1" and doc["pending"] == ["2"]
    assert doc["problems"] == [] and doc["latest"] == "1"


# --- restore -------------------------------------------------------------------------------


def test_restore_refuses_while_connected_then_restores_after_confirmation(
    world: PgWorld, tmp_path: Path
) -> None:
    env = backup_env(world, tmp_path)
    world.sql("INSERT INTO tweets (body) VALUES ('before the backup')")
    assert bva("db", "backup", "--env", "production", env=env).returncode == 0
    world.sql("INSERT INTO tweets (body) VALUES ('after the backup')")
    with world.idle_connections(1, app="tweet-service"):
        out = bva("db", "restore", "latest", "--env", "production", "--yes", env=env)
    assert out.returncode == 1
    assert "connected: tweet-service (1)" in out.stdout
    assert "drain it (or pass --scale-down): nothing was changed" in out.stderr
    wrong = subprocess.run(
        ["bva", "db", "restore", "latest", "--env", "production"],
        env=env,
        input="production\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1 and "not confirmed" in wrong.stderr
    assert world.sql("SELECT count(*) FROM tweets WHERE body = 'after the backup'") == 1
    done = subprocess.run(
        ["bva", "db", "restore", "latest", "--env", "production"],
        env=env,
        input="bharathva@production\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loses   every write of the last" in done.stdout
    assert "safety backup bharathva-production-" in done.stdout
    assert world.sql("SELECT count(*) FROM tweets WHERE body = 'after the backup'") == 0
    assert world.sql("SELECT count(*) FROM tweets WHERE body = 'before the backup'") == 1
    assert world.cluster.password not in done.stdout + done.stderr
    journal = (tmp_path / "journal" / "production.jsonl").read_text()
    assert '"db.restore"' in journal and world.cluster.password not in journal


def test_restore_is_refused_read_only(world: PgWorld, tmp_path: Path) -> None:
    out = bva(
        "db",
        "restore",
        "latest",
        "--env",
        "production",
        "--read-only",
        "--yes",
        env=backup_env(world, tmp_path),
    )
    assert out.returncode == 1 and out.stderr.strip() == "bva: read-only: restore refused"


def test_a_failing_restore_is_one_line_and_exit_1(world: PgWorld, tmp_path: Path) -> None:
    env = backup_env(world, tmp_path)
    assert bva("db", "backup", "--env", "production", env=env).returncode == 0
    (dump,) = (tmp_path / "data" / "bva" / "backups" / "production").glob("*.dump")
    sidecar = json.loads(dump.with_suffix(".json").read_text())
    # Same size as its sidecar says (so still listed verified), but no longer an archive.
    dump.write_bytes(b"#" * sidecar["size"])
    out = bva("db", "restore", "latest", "--env", "production", "--yes", env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith(
        f"bva: restore failed: pg_restore cannot read {dump.name}, nothing was changed: "
        "input file does not appear to be a valid "
    )
    assert "new connections allowed again" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    missing = bva("db", "restore", "no-such.dump", "--env", "production", "--yes", env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("bva: no backup no-such.dump in ")
    unset = dict(env)
    del unset["BVA_DB_URL"]
    out = bva("db", "restore", "latest", "--env", "production", "--yes", env=unset)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
