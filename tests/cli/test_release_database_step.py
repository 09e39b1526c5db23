"""The database step of `bva release start`, end to end on a real `bva sandbox` with its
PostgreSQL primary and replicas: backup, migrate (the sandbox's Flyway stand-in), verify, then
the phases; a migration that fails stops the release before any Deployment changes, with the
error and the backup to restore from; a failed history refuses the next release."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox_proc import RunningSandbox, start_sandbox

FAST = ["--hold", "0.5", "--interval", "0.5", "--failure-limit", "1000", "--yes"]


@pytest.fixture
def sandbox_db(tmp_path: Path) -> Iterator[RunningSandbox]:
    """A sandbox of its own: each test migrates, so none may see another's history."""
    running = start_sandbox(tmp_path / "sbx", database=True, timeout=90)
    try:
        yield running
    finally:
        running.stop()


def bva(sandbox: RunningSandbox, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **sandbox.env,
        "BVA_JOURNAL_DIR": str(tmp / "journal"),
        "XDG_DATA_HOME": str(tmp / "data"),
    }
    env.pop("BVA_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def release(
    sandbox: RunningSandbox, tmp: Path, version: str, *services: str
) -> subprocess.CompletedProcess[str]:
    chosen = [a for s in services for a in ("--service", s)]
    return bva(
        sandbox, tmp, "release", "start", "--env", "sandbox", *chosen, "--version", version, *FAST
    )


def kubectl_json(sandbox: RunningSandbox, *args: str) -> dict[str, object]:
    out = subprocess.run(
        ["kubectl", "-n", sandbox.namespace, *args, "-o", "json"],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data: dict[str, object] = json.loads(out.stdout)
    return data


def deployments(sandbox: RunningSandbox) -> dict[str, str]:
    """name -> image of every Deployment, as kubectl sees them."""
    items = kubectl_json(sandbox, "get", "deployments")["items"]
    assert isinstance(items, list)
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in items
    }


def migrations(sandbox: RunningSandbox, tmp: Path) -> dict[str, str]:
    out = bva(sandbox, tmp, "db", "migrations", "--env", "sandbox", "--json")
    rows = json.loads(out.stdout)["migrations"]
    return {str(m["version"]): str(m["state"]) for m in rows if m["version"]}


def journal_actions(tmp: Path) -> list[tuple[str, str, str]]:
    lines = (tmp / "journal" / "sandbox.jsonl").read_text().splitlines()
    return [(r["action"], r["stage"], r["result"]) for r in map(json.loads, lines)]


def test_a_release_backs_up_migrates_verifies_then_ships(
    sandbox_db: RunningSandbox, tmp_path: Path
) -> None:
    assert migrations(sandbox_db, tmp_path)["7"] == "Pending"
    out = release(sandbox_db, tmp_path, "1.4.0", "user-service")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    # The plan names the step before anything runs, then one line per event, in order.
    assert "database: V6 → V7 (1 pending: V7 add tweet edited at)" in text
    order = [
        "database: backup (pg_dump -Fc)",
        "database: migrate V6 → V7",
        "database: migrated to V7",
        "database: verified, at V7",
        "phase 1/4: weight 5%",
        "finished: user-service on 1.4.0",
    ]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions), text
    assert migrations(sandbox_db, tmp_path)["7"] == "Success"
    dumps = list((tmp_path / "data" / "bva" / "backups" / "sandbox").glob("*.dump"))
    assert len(dumps) == 1 and "-r-" in dumps[0].name, dumps
    actions = journal_actions(tmp_path)
    for action in ("release.db.backup", "release.db.migrate"):
        assert (action, "after", "ok") in actions, actions
    assert ("release.db.verify", "after", "ok") in actions
    first = next(i for i, a in enumerate(actions) if a[0] == "release.db.backup")
    start = next(i for i, a in enumerate(actions) if a[0] == "release.start")
    assert first < start, "the backup is journalled before any service changes"
    assert deployments(sandbox_db)["user-service"].endswith(":1.4.0")
    # The release record keeps the database change and how to undo it.
    (record,) = (tmp_path / "journal" / "releases").glob("r-*.json")
    doc = json.loads(record.read_text())
    db = doc["database"]
    assert (db["from"], db["to"]) == ("V6", "V7") and db["backup"] == dumps[0].name
    assert db["migrations"] == [{"version": "7", "description": "add tweet edited at"}]
    assert [s["state"] for s in db["steps"]] == ["done", "done", "done"]
    assert doc["rollback"]["database"] == f"bva db restore --env sandbox {dumps[0].name}"


def test_a_failing_migration_stops_the_release_before_any_service_changes(
    sandbox_db: RunningSandbox, tmp_path: Path
) -> None:
    drill = bva(sandbox_db, tmp_path, "sandbox", "drill", "break-migration")
    assert drill.returncode == 0, drill.stderr
    before = deployments(sandbox_db)
    out = release(sandbox_db, tmp_path, "2.0.0", "tweet-service", "auth-service")
    assert out.returncode == 1, out.stdout + out.stderr
    # V7 applied, V8 failed: Flyway's error, the services untouched, the backup named.
    assert 'relation "tweets.no_such_table" does not exist' in out.stdout
    assert "the services were not changed" in out.stdout
    dumps = list((tmp_path / "data" / "bva" / "backups" / "sandbox").glob("*.dump"))
    assert len(dumps) == 1
    assert f"bva db restore {dumps[0].name}" in out.stdout
    assert "phase 1/4" not in out.stdout
    assert deployments(sandbox_db) == before
    assert not [n for n in before if n.endswith("-canary")]
    state = migrations(sandbox_db, tmp_path)
    assert state["7"] == "Success" and state["8"] == "Failed", state
    actions = journal_actions(tmp_path)
    assert not [a for a in actions if a[0] == "release.start"]
    (record,) = (tmp_path / "journal" / "releases").glob("r-*.json")
    doc = json.loads(record.read_text())
    assert doc["outcome"]["state"] == "failed" and "migrate failed" in doc["outcome"]["reason"]
    assert doc["rollback"]["commands"] == []
    assert doc["rollback"]["note"] == "no stable Deployment changed: nothing to roll back"
    assert doc["rollback"]["database"] == f"bva db restore --env sandbox {dumps[0].name}"
    assert any(a[0] == "release.db.migrate" and a[2].startswith("failed:") for a in actions)
    # The half-done history refuses the next release until it is repaired.
    again = release(sandbox_db, tmp_path, "2.0.1", "tweet-service")
    assert again.returncode == 1
    assert "the migration history fails validation" in again.stderr
    assert deployments(sandbox_db) == before
    repaired = bva(sandbox_db, tmp_path, "sandbox", "drill", "repair-migration")
    assert "1 failed history row(s) repaired" in repaired.stdout
    assert "8" not in migrations(sandbox_db, tmp_path)


def test_no_backup_needs_a_reason_and_is_journalled(
    sandbox_db: RunningSandbox, tmp_path: Path
) -> None:
    args = ["release", "start", "--env", "sandbox", "--service", "user-service"]
    bare = bva(sandbox_db, tmp_path, *args, "--version", "1.5.0", "--no-backup", "--yes")
    assert bare.returncode == 2
    assert bare.stderr.strip() == (
        "bva: error: --no-backup needs --reason TEXT: skipping the backup is journalled"
    )
    out = bva(
        sandbox_db,
        tmp_path,
        *args,
        "--version",
        "1.5.0",
        "--no-backup",
        "--reason",
        "restored from staging an hour ago",
        *FAST,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "database backup skipped (--no-backup): restored from staging an hour ago" in out.stdout
    assert not list((tmp_path / "data").rglob("*.dump"))
    assert ("release.db.backup.skip", "after", "skipped") in journal_actions(tmp_path)
    assert migrations(sandbox_db, tmp_path)["7"] == "Success"
