"""Restoring the database from a backup: the plan (what will be lost, who is connected), and
the guarded execution — the application kept out, a fresh safety backup, ``pg_restore
--clean --if-exists`` into the same database in one transaction, then a check.

Restored in place in one transaction rather than into a new database and swapped: the swap
needs a rename while nobody at all is connected plus the owner's CREATEDB right, must copy the
database's own settings, grants and locale by hand, and leaves a second full copy to clean up;
in one transaction a failed restore changes nothing (PostgreSQL rolls it back whole), and the
replicas replay it like any write.

``--clean`` alone drops and recreates only what the dump holds: a table created after the
backup (a newer migration's) would survive the restore, and one with a foreign key or a view
on a dumped table would even make its DROP fail. So the restore runs as one psql session: bva's
prelude opens the transaction, drops every relation and schema that is not in the dump's table
of contents, and takes the tables' locks within ``lock_wait_timeout``; then the script
``pg_restore --single-transaction`` writes (its own BEGIN only warns inside ours, and its COMMIT
ends both) is piped in. Dropping too much is harmless — whatever is in the dump is recreated
by the script — so a name the table of contents shows ambiguously (one with spaces) is simply
dropped and restored. If pg_restore dies halfway its COMMIT never comes, psql meets the end of
its input inside the transaction, and PostgreSQL rolls all of it back. Functions and types
created after the backup are not dropped; one that depends on a dumped table makes the restore
fail whole, and say so.

Over 500 lines because the guard (CONNECT revoked and given back), the safety backup, the
last drain check and the one-transaction script are one procedure whose safety is in their
order; apart, each piece would be callable without the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import psycopg
from psycopg import sql

from backends.db.backup import BackupError, one_line, take_backup
from backends.db.restore_models import Backup, Connected, RestorePlan, RestoreResult
from backends.db.tools import ToolError, find_tool, first_error, libpq_env, reap, toc_listing
from backends.sanitize import sanitize_text


class RestoreError(Exception):
    """The restore did not run or was rolled back; ``str()`` is one line."""


_PLAN_SQL = """
SELECT current_database(),
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)::bigint END,
       (SELECT count(*) FROM pg_stat_replication),
       coalesce((SELECT json_agg(json_build_object('app', app, 'n', n)) FROM (
           SELECT coalesce(nullif(application_name, ''), '(none)') AS app, count(*) AS n
             FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              -- bva's own sessions (consoles' read-only monitors, this restore's tools) are
              -- not the application: waiting for them to leave would wait forever.
              AND coalesce(application_name, '') <> 'bva'
              -- Another role's backend_type reads NULL without pg_read_all_stats.
              AND coalesce(backend_type, 'client backend') = 'client backend'
            GROUP BY 1 ORDER BY 2 DESC, 1) s), '[]')
"""


@contextlib.asynccontextmanager
async def _connect(dsn: str, connect_timeout: float) -> AsyncIterator[psycopg.AsyncConnection]:
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, round(connect_timeout)),
            application_name="bva",
        ) as conn:
            yield conn
    except psycopg.Error as exc:
        raise RestoreError(f"database error: {one_line(str(exc), dsn)}") from None


async def plan_restore(
    dsn: str, backup: Backup, environment: str, *, connect_timeout: float = 5.0
) -> RestorePlan:
    if not backup.verified:
        raise RestoreError(f"{backup.name} was never verified: bva restores only verified backups")
    try:
        present = Path(backup.path).is_file()
    except OSError as exc:
        raise RestoreError(f"{backup.name}: {one_line(str(exc), dsn)}") from None
    if not present:
        raise RestoreError(f"{backup.name}: the file is gone")
    lsn = backup.start_lsn or "0/0"
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, round(connect_timeout)),
            application_name="bva",
        ) as conn:
            cur = await conn.execute(_PLAN_SQL, (lsn,))
            row = await cur.fetchone()
    except psycopg.Error as exc:
        raise RestoreError(f"cannot reach the database: {one_line(str(exc), dsn)}") from None
    assert row is not None
    database, wal, replicas, connected = row
    if backup.database not in ("?", database):
        raise RestoreError(f"{backup.name} is a backup of {backup.database}, not of {database}")
    return RestorePlan(
        database=str(database),
        environment=environment,
        backup=backup,
        wal_since_backup=int(wal) if wal is not None and backup.start_lsn else None,
        connected=tuple(
            Connected(sanitize_text(str(c["app"]), 64), int(c["n"])) for c in connected
        ),
        replicas=int(replicas or 0),
    )


def _still_connected(plan: RestorePlan) -> RestoreError:
    who = ", ".join(f"{c.application} ({c.sessions})" for c in plan.connected)
    return RestoreError(f"the application is still connected: {who}; drain it first")


async def restore(
    plan: RestorePlan,
    dsn: str,
    directory: Path,
    *,
    pg_bin: str | None = None,
    on_step: Callable[[str], None] = lambda _: None,
    connect_timeout: float = 5.0,
    lock_wait_timeout: float = 30.0,
) -> RestoreResult:
    """Keep the application out, safety backup, restore, check. Refuses while the
    application is connected."""
    try:
        return await _restore(
            plan,
            dsn,
            directory,
            pg_bin=pg_bin,
            on_step=on_step,
            connect_timeout=connect_timeout,
            lock_wait_timeout=lock_wait_timeout,
        )
    except (ToolError, OSError, psycopg.Error) as exc:
        raise RestoreError(one_line(str(exc) or type(exc).__name__, dsn)) from None


async def _restore(
    plan: RestorePlan,
    dsn: str,
    directory: Path,
    *,
    pg_bin: str | None,
    on_step: Callable[[str], None],
    connect_timeout: float,
    lock_wait_timeout: float,
) -> RestoreResult:
    pg_restore, psql = find_tool("pg_restore", pg_bin), find_tool("psql", pg_bin)
    fresh = await plan_restore(dsn, plan.backup, plan.environment, connect_timeout=connect_timeout)
    if not fresh.drained:
        raise _still_connected(fresh)
    async with _application_kept_out(dsn, plan.database, connect_timeout, on_step):
        # Out before the safety backup, so that it holds the very last write: nothing is lost
        # between it and the restore.
        on_step("safety backup")
        try:
            safety = await take_backup(
                dsn,
                directory,
                environment=plan.environment,
                reason="safety-before-restore",
                pg_bin=pg_bin,
                connect_timeout=connect_timeout,
                lock_wait_timeout=lock_wait_timeout,
            )
        except BackupError as exc:
            raise RestoreError(f"no safety backup, so no restore: {exc}") from None
        on_step(f"safety backup {safety.name} ({safety.size} bytes)")
        # Again, immediately before: a session that came in before CONNECT was revoked (or
        # a superuser's, which no grant keeps out) would see its tables vanish under it.
        last = await plan_restore(
            dsn, plan.backup, plan.environment, connect_timeout=connect_timeout
        )
        if not last.drained:
            raise _still_connected(last)
        on_step(f"restoring {plan.backup.name}")
        t0 = time.monotonic()
        await _pg_restore(
            pg_restore,
            psql,
            dsn,
            Path(plan.backup.path),
            plan.database,
            connect_timeout=connect_timeout,
            lock_wait_timeout=lock_wait_timeout,
        )
        duration = time.monotonic() - t0
    on_step(f"restored in {duration:.1f}s; checking")
    return RestoreResult(safety, duration, await _table_rows(dsn, connect_timeout))


# --- keeping the application out -----------------------------------------------------------

# Who may connect, other than the owner (who always may): PUBLIC is grantee 0.
_CONNECT_SQL = """
SELECT coalesce((SELECT quote_ident(rolname) FROM pg_roles WHERE oid = a.grantee), 'PUBLIC'),
       a.is_grantable
  FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT'
   AND a.grantee <> d.datdba
 ORDER BY 1
"""


@contextlib.asynccontextmanager
async def _application_kept_out(
    dsn: str, database: str, connect_timeout: float, on_step: Callable[[str], None]
) -> AsyncIterator[None]:
    """CONNECT revoked from everyone but the owner for the duration, and given back after.

    REVOKE CONNECT rather than ``ALTER DATABASE ... CONNECTION LIMIT 0``: the limit spares
    superusers but not the owner, and in production bva restores as the (non-superuser) owner
    — the limit would lock the restore itself out of its psql and pg_dump sessions. CONNECT
    is checked at every new connection, the owner keeps it implicitly, and superusers are not
    checked at all (the drain check right before the restore catches their sessions)."""
    async with _connect(dsn, connect_timeout) as conn:
        rows = await (await conn.execute(_CONNECT_SQL)).fetchall()
        grants = [(str(r[0]), bool(r[1])) for r in rows]
        if grants:
            await conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                    sql.Identifier(database), sql.SQL(", ").join(sql.SQL(g) for g, _ in grants)
                )
            )
    try:
        async with _connect(dsn, connect_timeout) as conn:
            left = [str(r[0]) for r in await (await conn.execute(_CONNECT_SQL)).fetchall()]
        if left:
            # REVOKE only takes back its own grants: another role's stay, and with them the
            # application could come back mid-restore.
            who = sanitize_text(", ".join(left), 200)
            raise RestoreError(
                f"cannot keep the application out: {who} keep CONNECT on {database} "
                "(granted by another role); nothing was changed"
            )
        if grants:
            names = ", ".join(g for g, _ in grants)
            on_step(f"new connections refused for {names} (CONNECT revoked)")
        yield
    except BaseException as exc:
        problem = await asyncio.shield(_give_back(dsn, database, grants, connect_timeout))
        if problem is None:
            if grants:
                on_step("new connections allowed again")
            raise
        if isinstance(exc, RestoreError):
            raise RestoreError(f"{exc}; and {problem}") from None
        on_step(problem)  # cancelled: the cancellation goes on, the words stay
        raise
    problem = await asyncio.shield(_give_back(dsn, database, grants, connect_timeout))
    if problem is not None:
        raise RestoreError(f"the restore landed, but {problem}")
    if grants:
        on_step("new connections allowed again")


def _grant(database: str, grantee: str, grantable: bool) -> tuple[sql.Composed, str]:
    """The GRANT to run, and the same as text for a human to run by hand."""
    option = " WITH GRANT OPTION" if grantable and grantee != "PUBLIC" else ""
    ident = '"' + database.replace('"', '""') + '"'
    statement = sql.SQL("GRANT CONNECT ON DATABASE {} TO {}{}").format(
        sql.Identifier(database), sql.SQL(grantee), sql.SQL(option)
    )
    return statement, f"GRANT CONNECT ON DATABASE {ident} TO {grantee}{option}"


async def _give_back(
    dsn: str, database: str, grants: list[tuple[str, bool]], connect_timeout: float
) -> str | None:
    """CONNECT given back to whom it was revoked from; what failed, or None."""
    if not grants:
        return None
    statements = [_grant(database, g, o) for g, o in grants]
    try:
        async with _connect(dsn, connect_timeout) as conn:
            for statement, _ in statements:
                await conn.execute(statement)
    except RestoreError as exc:
        by_hand = "; ".join(text for _, text in statements)
        return f"the application cannot connect until CONNECT is given back ({exc}): run {by_hand}"
    return None


# --- the restore itself --------------------------------------------------------------------

_TOC_LINE = re.compile(r"^\d+;\s+\d+\s+\d+\s+(.*)$")
_RELATION_KINDS = ("MATERIALIZED VIEW", "FOREIGN TABLE", "TABLE", "VIEW", "SEQUENCE")


def toc_names(listing: Iterable[str]) -> tuple[set[tuple[str, str]], set[str]]:
    """(schema, relation) pairs and schema names in a ``pg_restore --list`` output."""
    relations: set[tuple[str, str]] = set()
    schemas: set[str] = set()
    for line in listing:
        m = _TOC_LINE.match(line)
        if m is None:
            continue
        rest = m.group(1)
        if rest.startswith("SCHEMA "):
            words = rest.split(" ")
            if len(words) == 4:  # SCHEMA - name owner
                schemas.add(words[2])
            continue
        for kind in _RELATION_KINDS:
            if rest.startswith(kind + " "):
                words = rest[len(kind) + 1 :].split(" ")
                if len(words) == 3:  # schema name owner; "TABLE DATA ..." has 4 or more
                    relations.add((words[0], words[1]))
                break
    return relations, schemas


def _literal(text: str) -> str:
    # standard_conforming_strings is on (the prelude says so): only quotes need doubling.
    return "'" + text.replace("'", "''") + "'"


def _array(values: Iterable[str]) -> str:
    return "ARRAY[" + ", ".join(_literal(v) for v in values) + "]::text[]"


# Relations and schemas that belong to an extension, or (a serial's or an identity's
# sequence) to a table, go with their owner.
_OWNED = """NOT EXISTS (SELECT 1 FROM pg_depend d
                   WHERE d.classid = {cls}::regclass AND d.objid = {oid}
                     AND (d.deptype = 'e' OR (d.deptype IN ('a', 'i')
                          AND d.refclassid = 'pg_class'::regclass)))"""
_USER_SCHEMA = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"


def prelude(relations: set[tuple[str, str]], schemas: set[str], lock_wait_timeout: float) -> str:
    """The SQL that opens the restore's transaction and clears what the dump does not hold."""
    keep_schemas, keep_names = zip(*sorted(relations), strict=True) if relations else ((), ())
    body = f"""
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
            WHERE {_USER_SCHEMA} AND n.nspname <> 'public'
              AND {_OWNED.format(cls="'pg_namespace'", oid="n.oid")}
              AND NOT n.nspname = ANY ({_array(sorted(schemas))})
  LOOP
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.nspname);
  END LOOP;
  FOR r IN SELECT n.nspname, c.relname, c.relkind
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER_SCHEMA}
              AND {_OWNED.format(cls="'pg_class'", oid="c.oid")}
              AND (n.nspname, c.relname) NOT IN (
                  SELECT * FROM unnest({_array(keep_schemas)}, {_array(keep_names)}))
  LOOP
    EXECUTE format('DROP %s IF EXISTS %I.%I CASCADE',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                  ELSE 'TABLE' END,
                   r.nspname, r.relname);
  END LOOP;
  -- Every lock the restore needs, taken now under lock_timeout: the script sets it to 0.
  FOR r IN SELECT n.nspname, c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMA}
              AND {_OWNED.format(cls="'pg_class'", oid="c.oid")}
  LOOP
    EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', r.nspname, r.relname);
  END LOOP;
END
"""
    tag = "$bva$"
    while tag in body:  # a name could hold the tag and end the body early
        tag = f"$bva_{secrets.token_hex(4)}$"
    timeout_ms = max(1, round(lock_wait_timeout * 1000))
    return (
        "BEGIN;\n"
        "SET standard_conforming_strings = on;\n"
        "SET client_min_messages = warning;\n"
        f"SET lock_timeout = {timeout_ms};\n"
        f"DO {tag}{body}{tag};\n"
    )


async def _listing(pg_restore: Path, dump: Path) -> list[str]:
    code, out, err = await toc_listing(pg_restore, dump)
    if code != 0:
        why = first_error(err, "pg_restore: error:") or f"exit code {code}"
        raise RestoreError(
            f"pg_restore cannot read {dump.name}, nothing was changed: {sanitize_text(why, 200)}"
        )
    return out


async def _pg_restore(
    pg_restore: Path,
    psql: Path,
    dsn: str,
    dump: Path,
    database: str,
    *,
    connect_timeout: float,
    lock_wait_timeout: float,
) -> None:
    relations, schemas = toc_names(await _listing(pg_restore, dump))
    fd, prelude_path = tempfile.mkstemp(prefix="bva-restore-", suffix=".sql")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(prelude(relations, schemas, lock_wait_timeout))
        with libpq_env(dsn, connect_timeout=connect_timeout) as env:
            env["PGDATABASE"] = database  # the one planned, whatever the DSN defaulted to
            psql_err, restore_err, psql_code, restore_code = await _pipe(
                pg_restore, psql, env, dump, Path(prelude_path)
            )
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(prelude_path)
    if psql_code == 0 and restore_code == 0:
        return
    # psql's error is the cause when it has one: pg_restore then only lost its pipe.
    why = (
        first_error(psql_err, "ERROR:")
        or first_error(psql_err, "error:")
        or first_error(restore_err, "pg_restore: error:")
        or f"exit code {restore_code or psql_code}"
    )
    raise RestoreError(f"pg_restore failed, nothing was changed: {one_line(why, dsn)}")


async def _pipe(
    pg_restore: Path, psql: Path, env: dict[str, str], dump: Path, prelude_path: Path
) -> tuple[list[str], list[str], int, int]:
    """pg_restore's script piped straight into psql after the prelude; both stderrs kept."""
    read_end, write_end = os.pipe()
    procs: list[asyncio.subprocess.Process] = []
    try:
        procs.append(
            await asyncio.create_subprocess_exec(
                str(psql),
                "--no-psqlrc",
                "--quiet",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                f"--file={prelude_path}",
                "--file=-",
                env=env,
                stdin=read_end,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        )
        procs.append(
            await asyncio.create_subprocess_exec(
                str(pg_restore),
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--file=-",
                str(dump),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=asyncio.subprocess.PIPE,
            )
        )
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        await reap(*procs)
        raise
    # Only the children hold the pipe now: psql sees its end when pg_restore exits.
    os.close(read_end)
    os.close(write_end)
    psql_proc, restore_proc = procs
    try:
        assert psql_proc.stderr is not None and restore_proc.stderr is not None
        psql_raw, restore_raw = await asyncio.gather(
            psql_proc.stderr.read(), restore_proc.stderr.read()
        )
        psql_code, restore_code = await asyncio.gather(psql_proc.wait(), restore_proc.wait())
    finally:
        # Killed psql means an aborted transaction: nothing lands.
        await reap(*procs)
    return (
        psql_raw.decode("utf-8", "replace").splitlines(),
        restore_raw.decode("utf-8", "replace").splitlines(),
        psql_code,
        restore_code,
    )


async def _table_rows(dsn: str, connect_timeout: float) -> tuple[tuple[str, int], ...]:
    """Exact row counts of every user table (the check a human would run by hand)."""
    async with _connect(dsn, connect_timeout) as conn:
        cur = await conn.execute(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1"
        )
        names = [str(r[0]) for r in await cur.fetchall()]
        out = []
        for name in names:
            count = await (await conn.execute(f"SELECT count(*) FROM {name}")).fetchone()
            out.append((name, int(count[0]) if count else 0))
    return tuple(out)
