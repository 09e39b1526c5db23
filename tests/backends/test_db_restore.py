"""Restore against a real primary and replica: a round trip checked row for row, refused while
the application is connected, a safety backup first, and what will be lost in the plan."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from backends.db.backup import take_backup
from backends.db.restore import RestoreError, plan_restore, restore
from tests.support.pg_world import PgWorld

pytestmark = pytest.mark.xdist_group("pg-restore")


def can_connect(world: PgWorld, user: str) -> bool:
    try:
        psycopg.connect(world.dsn("primary", user=user), connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "permission denied for database" in str(exc), exc
        return False
    return True


def connect_grants(world: PgWorld) -> object:
    return world.sql(
        "SELECT coalesce(datacl, acldefault('d', datdba))::text FROM pg_database"
        " WHERE datname = 'bharathva'"
    )


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
    assert steps[0] == "new connections refused for PUBLIC (CONNECT revoked)"
    assert steps[1] == "safety backup" and any(s.startswith("restoring ") for s in steps)
    assert steps[-2:] == ["new connections allowed again", steps[-1]]
    assert can_connect(pg_world, "plain")


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


# --- review fixes ------------------------------------------------------------------------


def everything(world: PgWorld) -> dict[str, object]:
    """What a human would compare: every user relation and schema, and the tweets row for row."""
    with world.admin() as conn:
        relations = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm', 'S', 'p') AND n.nspname NOT LIKE 'pg\\_%'"
            " AND n.nspname <> 'information_schema' ORDER BY 1, 2"
        ).fetchall()
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
            " AND nspname <> 'information_schema' ORDER BY 1"
        ).fetchall()
    return {"relations": relations, "schemas": schemas, "tweets": rows(world)}


async def test_what_was_created_after_the_backup_is_gone(pg_world: PgWorld, tmp_path: Path) -> None:
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    pg_world.sql("INSERT INTO tweets (body) SELECT 'kept ' || g FROM generate_series(1, 300) g")
    before = everything(pg_world)
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="r-10")
    # A later migration's work: a table with a foreign key to a dumped one (which makes a
    # plain --clean fail), a view on a dumped table, a new schema with a table, a sequence.
    pg_world.sql(
        "CREATE TABLE public.likes (id serial PRIMARY KEY, tweet int REFERENCES tweets (id));"
        "INSERT INTO likes (tweet) SELECT id FROM tweets WHERE id % 3 <> 0 LIMIT 5;"
        "CREATE VIEW public.recent AS SELECT * FROM tweets ORDER BY id DESC LIMIT 10;"
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int);"
        "CREATE SEQUENCE public.loose_seq;"
        "DELETE FROM tweets WHERE id % 3 = 0;"
        "INSERT INTO tweets (body) VALUES ('after the backup');"
    )
    assert everything(pg_world) != before
    plan = await plan_restore(dsn, backup, "sandbox")
    await restore(plan, dsn, tmp_path)
    assert everything(pg_world) == before
    assert can_connect(pg_world, "plain")


async def test_connections_are_refused_during_the_restore_and_given_back(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    grants = connect_grants(pg_world)
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    during: list[bool] = []

    def step(text: str) -> None:
        if text.startswith("restoring "):
            during.append(can_connect(pg_world, "plain"))
            during.append(can_connect(pg_world, "bva_monitor"))

    assert can_connect(pg_world, "plain")
    await restore(await plan_restore(dsn, backup, "sandbox"), dsn, tmp_path, on_step=step)
    assert during == [False, False]
    assert can_connect(pg_world, "plain") and can_connect(pg_world, "bva_monitor")
    assert connect_grants(pg_world) == grants


async def test_a_session_that_comes_in_after_the_safety_backup_stops_the_restore(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    pg_world.sql("INSERT INTO tweets (body) VALUES ('must survive')")
    before = everything(pg_world)
    sneaky: list[psycopg.Connection[tuple[object, ...]]] = []

    def step(text: str) -> None:
        if text.startswith("safety backup ") and not sneaky:
            # A superuser: no grant keeps it out, only the last drain check sees it.
            sneaky.append(
                psycopg.connect(
                    pg_world.cluster.dsn("primary", "bharathva"), application_name="sneaky"
                )
            )

    try:
        with pytest.raises(RestoreError, match=r"still connected: sneaky \(1\)"):
            await restore(await plan_restore(dsn, backup, "sandbox"), dsn, tmp_path, on_step=step)
    finally:
        for c in sneaky:
            c.close()
    assert sneaky and everything(pg_world) == before
    assert can_connect(pg_world, "plain")


async def test_a_failed_restore_names_the_first_error_and_changes_nothing(
    pg_world: PgWorld, tmp_path: Path
) -> None:
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    # A function on the tweets row type: the restore's DROP TABLE tweets cannot go through.
    pg_world.sql(
        "CREATE FUNCTION public.all_tweets() RETURNS SETOF tweets AS 'SELECT * FROM tweets'"
        " LANGUAGE sql"
    )
    pg_world.sql("CREATE TABLE public.later (id int)")
    try:
        before = everything(pg_world)
        plan = await plan_restore(dsn, backup, "sandbox")
        with pytest.raises(RestoreError) as err:
            await restore(plan, dsn, tmp_path)
        text = str(err.value)
        assert text == (
            "pg_restore failed, nothing was changed: "
            "cannot drop table public.tweets because other objects depend on it"
        )
        assert "HINT" not in text and "DETAIL" not in text and "\n" not in text
        assert everything(pg_world) == before  # the prelude's drops were rolled back too
        assert can_connect(pg_world, "plain")
        # A dump pg_restore cannot read: its own first "pg_restore: error:" line.
        Path(backup.path).write_bytes(b"PGDMP" + b"\0" * 64)
        with pytest.raises(RestoreError) as err:
            await restore(plan, dsn, tmp_path)
        assert str(err.value).startswith(f"pg_restore cannot read {backup.name}, nothing was")
        assert "pg_restore: error:" not in str(err.value) and "\n" not in str(err.value)
        assert everything(pg_world) == before
    finally:
        pg_world.sql("DROP FUNCTION IF EXISTS public.all_tweets(); DROP TABLE IF EXISTS later")


async def test_a_missing_tool_is_a_restore_error(pg_world: PgWorld, tmp_path: Path) -> None:
    import os
    import shutil

    from backends.db.tools import find_tool

    dsn = pg_world.cluster.dsn("primary", "bharathva")
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore"):  # no psql
        os.symlink(find_tool(tool), bin_dir / tool)
    with pytest.raises(RestoreError, match=r"^no psql in "):
        await restore(
            await plan_restore(dsn, backup, "sandbox"), dsn, tmp_path, pg_bin=str(bin_dir)
        )
    shutil.rmtree(bin_dir)
    assert can_connect(pg_world, "plain")


def _children(name: str) -> list[int]:
    import os

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


async def test_a_cancelled_restore_kills_its_children_and_changes_nothing(
    pg_world: PgWorld,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    # Its own directory for the passfile and the prelude: other tests write theirs to /tmp.
    private_tmp = tmp_path_factory.mktemp("private-tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    dsn = pg_world.cluster.dsn("primary", "bharathva")
    pg_world.sql(
        "INSERT INTO tweets (body) SELECT repeat('x', 200) FROM generate_series(1, 200000)"
    )
    backup = await take_backup(dsn, tmp_path, environment="sandbox", reason="manual")
    pg_world.sql("INSERT INTO tweets (body) VALUES ('after the backup')")
    before = everything(pg_world)
    task = asyncio.ensure_future(restore(await plan_restore(dsn, backup, "sandbox"), dsn, tmp_path))
    seen: list[int] = []
    while not task.done() and not seen:
        seen = _children("psql")
        await asyncio.sleep(0.01)
    seen += _children("pg_restore")
    for pid in seen:  # neither command line nor environment carries the password
        for what in ("cmdline", "environ"):
            assert pg_world.cluster.password not in Path(f"/proc/{pid}/{what}").read_text()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) == 2, "psql and pg_restore were not both running"
    assert not any(Path(f"/proc/{pid}").exists() for pid in seen)
    assert list(private_tmp.iterdir()) == [], "the passfile or the prelude outlived the restore"
    assert everything(pg_world) == before
    assert can_connect(pg_world, "plain")
    pg_world.sql("DELETE FROM tweets WHERE length(body) = 200")
