"""The restore wizard through the real engine on a real primary and replica: the console
restores what a backup holds, row for row, journals it, and keeps the replica following."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from backends.db.admin import DatabaseAdmin
from backends.db.backup import take_backup
from screens.restore_steps import ExecuteRestoreStep, ReviewRestoreStep
from tests.screens.conftest import fake_app
from tests.support.fake_platform import scenario
from tests.support.pg_world import PgWorld, wait_replayed
from tests.support.waiting import pilot_until
from widgets.confirm import TypeToConfirm

pytestmark = pytest.mark.xdist_group("pg-restore-wizard")


async def test_the_console_restores_the_backup_row_for_row(
    pg_world: PgWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BVA_JOURNAL_DIR", str(tmp_path / "journal"))
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    pg_world.sql(
        "INSERT INTO public.tweets (body) SELECT 'kept ' || i FROM generate_series(1, 5) i"
    )
    admin = DatabaseAdmin(
        environment="sandbox",
        backup_dir=tmp_path / "backups",
        rpo_s=900,
        retention_s=86400,
        read_only=False,
        resolve_dsn=lambda: dsn,
    )
    backup = await take_backup(dsn, admin.backup_dir, environment="sandbox", reason="manual")
    before = pg_world.sql("SELECT string_agg(body, ',' ORDER BY id) FROM public.tweets")
    pg_world.sql("INSERT INTO public.tweets (body) VALUES ('written after the backup')")
    pg_world.sql("CREATE TABLE public.made_later (id int)")
    platform = dataclasses.replace(scenario("healthy"), database_admin=admin)
    app = fake_app("healthy", platform=platform)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("3")
        await pilot_until(pilot, lambda: app.screen.__class__.__name__ == "RollbackScreen", 10, "")
        await pilot.press("D")
        await pilot_until(pilot, lambda: app.screen.__class__.__name__ == "PickBackupStep", 10, "")
        await pilot.press("enter")
        review: Any = await pilot_until(
            pilot, lambda: app.screen if isinstance(app.screen, ReviewRestoreStep) else None, 10, ""
        )
        assert review.plan.backup.name == backup.name and review.plan.drained
        assert "connected: nobody" in str(review.query_one("#rs-plan").render())
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, TypeToConfirm), 10, "confirm")
        await pilot.press(*"bharathva@sandbox", "enter")
        done: Any = await pilot_until(
            pilot,
            lambda: app.screen if isinstance(app.screen, ExecuteRestoreStep) else None,
            10,
            "",
        )
        await pilot_until(pilot, lambda: done.outcome is not None, 60, "the restore to end")
        assert done.outcome.ok, done.outcome.error
    assert pg_world.sql("SELECT string_agg(body, ',' ORDER BY id) FROM public.tweets") == before
    assert pg_world.sql("SELECT to_regclass('public.made_later')") is None
    wait_replayed(pg_world)
    on_replica = pg_world.sql(
        "SELECT string_agg(body, ',' ORDER BY id) FROM public.tweets", "replica-1"
    )
    assert on_replica == before
    records = [
        json.loads(line)
        for line in (tmp_path / "journal" / "sandbox.jsonl").read_text().splitlines()
    ]
    restores = [(r["stage"], r["result"]) for r in records if r["action"] == "db.restore"]
    assert restores == [("before", ""), ("after", "ok")]
