"""The guarded restore as the CLI and the wizard drive it, on the sandbox's real cluster and a
real primary: a connected service goes to 0 before the restore and back to its replicas after,
when the restore fails too; every step is an event and a journal record."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.db.admin import DatabaseAdmin
from backends.db.backup import take_backup
from backends.db.restore import plan_restore
from backends.db.restore_flow import run_restore
from backends.db.restore_models import Backup, EventLevel, RestoreEvent, Step
from backends.journal.store import Journal
from backends.orchestrator import Orchestrator
from backends.platform import Platform, open_platform
from tests.support.pg_world import PgWorld
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.sandbox_release import ready
from tests.support.waiting import until

CFG = load_platform(builtin_platform_path())
SERVICE = "auth-service"
pytestmark = pytest.mark.xdist_group("pg-restore-flow")


@pytest.fixture
async def platform(sandbox: RunningSandbox) -> AsyncIterator[Platform]:
    p = open_platform(CFG, "sandbox", sandbox=read_sandbox_state(sandbox.runtime_dir))
    try:
        await ready(p)
        yield p
    finally:
        await p.aclose()


def admin(tmp_path: Path, dsn: str) -> DatabaseAdmin:
    return DatabaseAdmin(
        environment="sandbox",
        backup_dir=tmp_path / "backups",
        rpo_s=900.0,
        retention_s=30 * 86400.0,
        read_only=False,
        resolve_dsn=lambda: dsn,
    )


def replicas_now(sandbox: RunningSandbox, kubectl: str, deployment: str) -> int:
    """What the cluster says, asked from outside (kubectl), at the moment of the call."""
    out = subprocess.run(
        [kubectl, "get", "deployment", deployment, "-n", sandbox.namespace, "-o", "json"],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(json.loads(out.stdout)["spec"]["replicas"])


async def sessions_until_scaled_to_zero(
    world: PgWorld, orchestrator: Orchestrator, deployment: str, n: int
) -> None:
    """The service's sessions on the database, closed once its Deployment is at 0 replicas:
    what happens to a real service's connections when Kubernetes removes its pods."""
    conns = [
        await psycopg.AsyncConnection.connect(
            world.cluster.dsn("primary", "bharathva"), application_name=SERVICE, autocommit=True
        )
        for _ in range(n)
    ]

    async def at_zero() -> bool:
        return (await orchestrator.get_workload(deployment)).desired == 0

    try:
        await until(at_zero, 60, f"{deployment} to be scaled to 0")
    finally:
        for c in conns:
            await c.close()


def journal_lines(journal: Journal) -> list[tuple[str, str, str, object]]:
    out = []
    for line in journal.path.read_text().splitlines():
        r = json.loads(line)
        out.append((r["action"], r["stage"], r["result"], r["details"].get("to")))
    return out


async def prepared(world: PgWorld, tmp_path: Path) -> tuple[str, Backup]:
    """A backup with a row written before it and one after, both named after the test."""
    dsn = world.cluster.dsn("primary", "bharathva")
    world.sql(f"INSERT INTO tweets (body) VALUES ('before {tmp_path.name}')")
    backup = await take_backup(dsn, tmp_path / "backups", environment="sandbox", reason="r-f")
    world.sql(f"INSERT INTO tweets (body) VALUES ('after {tmp_path.name}')")
    return dsn, backup


def count(world: PgWorld, which: str, tmp_path: Path) -> object:
    return world.sql(f"SELECT count(*) FROM tweets WHERE body = '{which} {tmp_path.name}'")


async def test_a_connected_service_goes_to_zero_for_the_restore_and_comes_back(
    platform: Platform, pg_world: PgWorld, sandbox: RunningSandbox, kubectl: str, tmp_path: Path
) -> None:
    services = dict(platform.services())
    dep = services[SERVICE]
    before = (await platform.orchestrator.get_workload(dep)).desired
    assert before > 0
    dsn, backup = await prepared(pg_world, tmp_path)
    app = asyncio.create_task(
        sessions_until_scaled_to_zero(pg_world, platform.orchestrator, dep, 2)
    )
    await asyncio.sleep(0.2)
    plan = await plan_restore(dsn, backup, "sandbox")
    assert [(c.application, c.sessions) for c in plan.connected] == [(SERVICE, 2)]
    events: list[RestoreEvent] = []
    during: list[int] = []

    def on_event(event: RestoreEvent) -> None:
        events.append(event)
        if event.step is Step.RESTORE and event.text.startswith("restoring "):
            during.append(replicas_now(sandbox, kubectl, dep))

    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    outcome = await run_restore(
        platform.orchestrator,
        services,
        admin(tmp_path, dsn),
        plan,
        dsn,
        journal,
        scale_down=True,
        on_event=on_event,
    )
    await app
    assert outcome.ok and outcome.result is not None, outcome.error
    assert outcome.scaled == ((dep, before),) and outcome.not_scaled_back == ()
    assert during == [0]
    assert replicas_now(sandbox, kubectl, dep) == before
    assert count(pg_world, "after", tmp_path) == 0
    assert count(pg_world, "before", tmp_path) == 1
    steps = [e.step for e in events]
    assert steps[0] is Step.SCALE_DOWN and steps[-1] is Step.SCALE_UP
    assert events[0].text == f"scaled {dep} {before} -> 0"
    assert events[-1].text == f"scaled {dep} back to {before}"
    assert all(e.level is EventLevel.INFO for e in events)
    assert journal_lines(journal) == [
        ("db.restore.scale", "before", "", 0),
        ("db.restore.scale", "after", "ok", 0),
        ("db.restore", "before", "", None),
        ("db.restore", "after", "ok", None),
        ("db.restore.scale", "before", "", before),
        ("db.restore.scale", "after", "ok", before),
    ]
    assert journal.verify().ok


async def test_a_failed_restore_still_scales_the_service_back(
    platform: Platform, pg_world: PgWorld, sandbox: RunningSandbox, kubectl: str, tmp_path: Path
) -> None:
    services = dict(platform.services())
    dep = services[SERVICE]
    before = (await platform.orchestrator.get_workload(dep)).desired
    dsn, backup = await prepared(pg_world, tmp_path)
    app = asyncio.create_task(
        sessions_until_scaled_to_zero(pg_world, platform.orchestrator, dep, 1)
    )
    await asyncio.sleep(0.2)
    plan = await plan_restore(dsn, backup, "sandbox")
    Path(backup.path).write_bytes(b"PGDMP" + b"\0" * 64)  # the file went bad after the plan
    events: list[RestoreEvent] = []
    during: list[int] = []

    def on_event(event: RestoreEvent) -> None:
        events.append(event)
        if event.step is Step.RESTORE and event.text.startswith("safety backup "):
            during.append(replicas_now(sandbox, kubectl, dep))

    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    outcome = await run_restore(
        platform.orchestrator,
        services,
        admin(tmp_path, dsn),
        plan,
        dsn,
        journal,
        scale_down=True,
        on_event=on_event,
    )
    await app
    assert not outcome.ok and outcome.result is None
    assert outcome.error.startswith(f"pg_restore cannot read {backup.name}, nothing was changed")
    assert during == [0]
    assert replicas_now(sandbox, kubectl, dep) == before
    assert count(pg_world, "after", tmp_path) == 1
    failed = [e for e in events if e.step is Step.FAILED]
    assert len(failed) == 1 and failed[0].level is EventLevel.ERROR
    assert failed[0].text == f"restore failed: {outcome.error}"
    assert events[-1] == RestoreEvent(Step.SCALE_UP, f"scaled {dep} back to {before}")
    actions = journal_lines(journal)
    assert actions[3][:2] == ("db.restore", "after") and str(actions[3][2]).startswith("failed")
    assert actions[-1] == ("db.restore.scale", "after", "ok", before)


async def test_without_scale_down_the_drain_times_out_and_nothing_is_scaled(
    platform: Platform, pg_world: PgWorld, sandbox: RunningSandbox, kubectl: str, tmp_path: Path
) -> None:
    services = dict(platform.services())
    dep = services[SERVICE]
    before = (await platform.orchestrator.get_workload(dep)).desired
    dsn, backup = await prepared(pg_world, tmp_path)
    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    events: list[RestoreEvent] = []
    with pg_world.idle_connections(1, app=SERVICE):
        plan = await plan_restore(dsn, backup, "sandbox")
        outcome = await run_restore(
            platform.orchestrator,
            services,
            admin(tmp_path, dsn),
            plan,
            dsn,
            journal,
            scale_down=False,
            on_event=events.append,
            drain_timeout_s=0.5,
            poll_s=0.1,
        )
    assert outcome.result is None and outcome.scaled == ()
    assert outcome.error == f"still connected after 0.5s of draining: {SERVICE} (1)"
    assert [e.step for e in events] == [Step.DRAIN, Step.FAILED]
    assert replicas_now(sandbox, kubectl, dep) == before
    assert not journal.path.exists()  # nothing was changed, so nothing to journal
    assert count(pg_world, "after", tmp_path) == 1
