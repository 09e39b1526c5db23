"""Restore against a real primary and replica: a round trip checked row for row, refused while
the application is connected, a safety backup first, and what will be lost in the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.db.backup import take_backup
from backends.db.restore import RestoreError, plan_restore, restore
from tests.support.pg_world import PgWorld

pytestmark = pytest.mark.xdist_group("pg-restore")


def rows(world: PgWorld) -> list[tuple[object, ...]]:
    with world.admin() as conn:
        return list(conn.execute("SELECT id, body FROM tweets ORDER BY id").fetchall())


async def test_round_trip_row_for_row(pg_world: PgWorld, tmp_path: Path) -> None:
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    pg_world.sql("INSERT INTO tweets (body) SELECT 'kept ' || g FROM generate_series(1, 500) g")
    before = rows(pg_world)
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="r-9")
    pg_world.sql("DELETE FROM tweets WHERE id % 2 = 0")
    pg_world.sql("INSERT INTO tweets (body) VALUES ('written after the backup')")
    plan = await plan_restore(dsn, backup, "sandbox")
    assert plan.database == "bharathva" and plan.confirmation_text == "bharathva@sandbox"
    assert plan.drained and plan.replicas == 1
    assert plan.wal_since_backup is not None and plan.wal_since_backup > 0
    assert "bytes of WAL since the backup began" in plan.loss_words(backup.taken_at + 90)
    steps: list[str] = []
    result = await restore(plan, dsn, tmp_path, on_step=steps.append)
    assert rows(pg_world) == before
    assert dict(result.tables)["public.tweets"] == len(before)
    assert result.safety.reason == "safety-before-restore" and Path(result.safety.path).is_file()
    assert steps[0] == "safety backup" and any(s.startswith("restoring ") for s in steps)


async def test_refused_while_the_application_is_connected(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    with pg_world.idle_connections(2, app="auth-service"):
        plan = await plan_restore(dsn, backup, "sandbox")
        assert not plan.drained
        assert [(c.application, c.sessions) for c in plan.connected] == [("auth-service", 2)]
        with pytest.raises(RestoreError, match=r"still connected: auth-service \(2\)"):
            await restore(plan, dsn, tmp_path)
    assert len(list(tmp_path.glob("*.dump"))) == 1  # no safety backup was even taken


async def test_only_verified_backups_of_this_database(pg_world: PgWorld, tmp_path: Path) -> None:
    import dataclasses

    dsn = pg_world.cluster.dsn("primary", "bharathva")
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    with pytest.raises(RestoreError, match="never verified"):
        await plan_restore(dsn, dataclasses.replace(backup, verified=False), "sandbox")
    with pytest.raises(RestoreError, match="a backup of otherdb, not of bharathva"):
        await plan_restore(dsn, dataclasses.replace(backup, database="otherdb"), "sandbox")
