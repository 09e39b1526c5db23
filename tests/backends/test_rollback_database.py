"""A rollback plan names the database's changes since the target revision — migrations applied
after it and the newest backup before them — and never touches the database itself."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.db.admin import DatabaseAdmin
from backends.db.backup import take_backup
from backends.db.models import Role
from backends.db.source import DbServer, PgDatabase
from backends.platform import Platform, open_platform
from backends.rollback.engine import RollbackEngine
from tests.backends.test_rollback import AUTH, set_image
from tests.support.pg_world import PgWorld
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.sandbox_release import ready

CFG = load_platform(builtin_platform_path())
pytestmark = pytest.mark.xdist_group("pg-rollback")


@pytest.fixture
async def platform(
    sandbox: RunningSandbox, pg_world: PgWorld, tmp_path: Path
) -> AsyncIterator[Platform]:
    base = open_platform(CFG, "sandbox", sandbox=read_sandbox_state(sandbox.runtime_dir))
    admin_dsn = pg_world.cluster.dsn("primary", "bharathva")
    p = dataclasses.replace(
        base,
        database=PgDatabase(
            [DbServer("primary", Role.PRIMARY, pg_world.dsn("primary"))], pool_size=20
        ),
        database_admin=DatabaseAdmin(
            environment="sandbox",
            backup_dir=tmp_path / "backups",
            rpo_s=900.0,
            retention_s=30 * 86400.0,
            read_only=False,
            resolve_dsn=lambda: admin_dsn,
        ),
    )
    try:
        yield p
    finally:
        await p.aclose()


async def test_the_plan_names_migrations_since_the_target_and_the_backup_before_them(
    platform: Platform, pg_world: PgWorld, tmp_path: Path
) -> None:
    await ready(platform)
    # The world's own history rows are older than any revision of this sandbox.
    pg_world.sql("UPDATE flyway_schema_history SET installed_on = now() - interval '1 day'")
    engine = RollbackEngine(platform, None)
    plan = await engine.plan([AUTH])
    assert plan.database == ()  # nothing to roll back to yet: no target revision
    await set_image(platform, AUTH, "1.1.0")
    assert platform.database_admin is not None
    backup = await take_backup(
        platform.database_admin.dsn("backup"),
        platform.database_admin.backup_dir,
        environment="sandbox",
        reason="r-before-v7",
    )
    pg_world.sql(
        "INSERT INTO flyway_schema_history VALUES (7, '7', 'tweets hashtags', 'SQL', "
        "'V7__tweets_hashtags.sql', 7, 'app', now(), 40, true)"
    )
    try:
        plan = await engine.plan([AUTH])
    finally:
        pg_world.sql("DELETE FROM flyway_schema_history WHERE installed_rank = 7")
    assert plan.services[0].target is not None and plan.services[0].target.revision == 1
    assert plan.database[0] == "1 migration(s) applied since the target revision: 7"
    assert plan.database[1].startswith(f"newest backup before them: {backup.name} (")
    plan = await engine.plan([AUTH])
    assert plan.database == ("no migration was applied since the target revision",)
