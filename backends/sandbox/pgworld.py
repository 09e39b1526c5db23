"""The sandbox's database as the rest of the sandbox sees it: a PgCluster (primary and two
streaming replicas) seeded with the BharathVA schemas, the DSN files bva reads (mode 0600, in
the sandbox's runtime dir), the simulated load, and the drills.

The servers' data lives in PgCluster's own private directory (owned by the unprivileged
``bva-pg`` user when bva runs as root, so it cannot sit inside the 0700 runtime dir); the DSN
files and the migrations directory live in the runtime dir, readable by bva's user only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import pwd
import secrets
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from backends.sandbox.pgbin import PG_USER, PgSetupError
from backends.sandbox.pgcluster import PgCluster, wait_streaming
from backends.sandbox.pgload import DbLoad, Target
from backends.sandbox.pgschema import (
    APP_ROLE,
    BROKEN_MIGRATION,
    DATABASE,
    DRILLS,
    MONITOR_ROLE,
    seed,
    write_migrations,
)
from backends.sandbox.state import pid_alive

FLOOD_APP = "drill-idle"


OWNER_FILE = "bva-sandbox.pid"


def _trusted_uids() -> set[int]:
    """Who may own a sandbox's server directory: this user, and the servers' own user."""
    uids = {os.geteuid()}
    with contextlib.suppress(KeyError):
        uids.add(pwd.getpwnam(PG_USER).pw_uid)
    return uids


def _ours(directory: Path, uids: set[int]) -> bool:
    """A directory the sandbox made (mkdtemp, 0700, owned by us or bva-pg), not something a
    local user planted under the same prefix to have it deleted or its pids killed."""
    try:
        st = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid in uids


def _postmaster_of(pidfile: Path, directory: Path) -> int | None:
    """The pid in ``pidfile`` if that process is a server whose data dir is in ``directory``
    (its cwd): a pid reused since by anything else is left alone."""
    try:
        pid = int(pidfile.read_text().split()[0])
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError, IndexError):
        return None
    return pid if cwd.is_relative_to(directory.resolve()) else None


def reap_orphans(tmp: Path | None = None) -> list[Path]:
    """Servers left by a sandbox that was killed outright (SIGKILL, a crashed machine's
    leftovers): their owner is gone, so stop them at once and remove their data. A sandbox
    that ends normally stops its own."""
    reaped = []
    uids = _trusted_uids()
    for directory in Path(tmp or tempfile.gettempdir()).glob("bva-pg-*"):
        if not _ours(directory, uids):
            continue
        try:
            owner = int((directory / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not one of ours, or still starting
        if pid_alive(owner):
            continue
        for pidfile in directory.glob("*/postmaster.pid"):
            pid = _postmaster_of(pidfile, directory)
            if pid is not None:
                with contextlib.suppress(OSError):
                    # SIGQUIT: PostgreSQL's immediate shutdown; the data is thrown away anyway.
                    os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(directory, ignore_errors=True)
        reaped.append(directory)
    return reaped


class DrillError(Exception):
    """A drill that could not be done; ``str()`` is one line. ``usage``: it was asked wrong (an
    unknown action or server), not refused by the servers."""

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class SandboxDatabase:
    def __init__(
        self,
        files_dir: Path,
        *,
        pool_size: int = 20,
        pg_bin: str | None = None,
        replicas: int = 2,
        ready_pods: Callable[[str], int] = lambda _: 1,
        seed_value: int = 1,
        load: dict[str, Any] | None = None,
    ) -> None:
        self._files = files_dir
        self._pool = pool_size
        self._ready = ready_pods
        self._seed = seed_value
        self._load_options = dict(load or {})  # DbLoad's knobs, for tests that cannot wait
        self.cluster = PgCluster(replicas=replicas, pg_bin=pg_bin)
        self._monitor_pw = secrets.token_urlsafe(18)
        self._app_pw = secrets.token_urlsafe(18)
        self._load: DbLoad | None = None
        self._flood: list[psycopg.AsyncConnection[tuple[object, ...]]] = []

    # -- life ------------------------------------------------------------------------------

    def start_blocking(self) -> None:
        """Servers up, seeded (before the replicas are copied, so they start with it) and
        streaming; the DSN files written. Blocking: run it in a thread."""
        reap_orphans()
        try:
            self.cluster.start(on_primary=self._seed_primary)
            directory = self.cluster.directory
            if directory is not None:
                (directory / OWNER_FILE).write_text(f"{os.getpid()}\n")
            wait_streaming(self.cluster)
            self._write_files()
        except OSError as exc:
            raise PgSetupError(f"{exc.filename or 'the database'}: {exc.strerror}") from None

    def _seed_primary(self) -> None:
        try:
            seed(
                self.cluster.dsn("primary", "postgres"),
                monitor_password=self._monitor_pw,
                app_password=self._app_pw,
            )
        except psycopg.Error as exc:
            # The server's words, never the DSN (it carries the superuser's password).
            raise PgSetupError(f"seeding the database failed: {_first_line(exc)}") from None

    def start_load(self) -> None:
        replicas = tuple(
            self._dsn(s.name, APP_ROLE, self._app_pw) for s in self.cluster.servers[1:]
        )
        target = Target(self._dsn("primary", APP_ROLE, self._app_pw), replicas)
        self._load = DbLoad(target, self._ready, seed=self._seed, **self._load_options)
        self._load.start()

    async def stop(self) -> None:
        if self._load is not None:
            await self._load.stop()
        await self._calm()
        await asyncio.to_thread(self.cluster.stop)
        shutil.rmtree(self._files, ignore_errors=True)

    # -- what bva reads --------------------------------------------------------------------

    def _dsn(self, server: str, user: str, password: str) -> str:
        port = self.cluster.server(server).port
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{port}/{DATABASE}"

    def _write_files(self) -> None:
        self._files.mkdir(parents=True, exist_ok=True, mode=0o700)
        for server in self.cluster.servers:
            self._secret(
                f"{server.name}.dsn", self._dsn(server.name, MONITOR_ROLE, self._monitor_pw)
            )
        self._secret("admin.dsn", self.cluster.dsn("primary", DATABASE))
        write_migrations(self._files / "migrations")

    def _secret(self, name: str, text: str) -> None:
        path = self._files / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")

    def state_block(self) -> dict[str, object]:
        """The ``database`` entry of the sandbox's state file (see backends/platform.py)."""
        return {
            "url": f"file:{self._files / 'primary.dsn'}",
            "replicas": [f"file:{self._files / f'{s.name}.dsn'}" for s in self.cluster.servers[1:]],
            "admin_url": f"file:{self._files / 'admin.dsn'}",
            "pool_size": self._pool,
            "migrations": str(self._files / "migrations"),
            # Flyway's stand-in: the sandbox has no Java (see backends/sandbox/pgmigrate.py).
            "migrate_command": [sys.executable, "-m", "backends.sandbox.pgmigrate"],
            "data_dir": str(self.cluster.directory),
        }

    def describe(self) -> str:
        """One line for the ready banner: names and ports, never a password."""
        parts = [f"{s.name} 127.0.0.1:{s.port}" for s in self.cluster.servers]
        major, minor = self.cluster.version
        return f"database {DATABASE} (PostgreSQL {major}.{minor}): " + ", ".join(parts)

    # -- drills ----------------------------------------------------------------------------

    async def drill(self, action: str, server: str | None) -> str:
        if action not in DRILLS:
            raise DrillError(f"unknown drill {action!r} (one of: {', '.join(DRILLS)})")
        if action in ("flood", "calm"):
            return await (self._flood_up() if action == "flood" else self._calm())
        if action in ("break-migration", "repair-migration"):
            return await self._migration_drill(action == "break-migration")
        if server is None:
            raise DrillError(f"{action} needs a server: {self._names()}")
        try:
            target = self.cluster.server(server)
        except Exception:
            raise DrillError(f"no server {server!r} (have {self._names()})") from None
        if action in ("pause-replay", "resume-replay"):
            if target.role != "replica":
                raise DrillError(f"{action} is for a replica, {server} is the primary")
            fn = "pg_wal_replay_pause" if action == "pause-replay" else "pg_wal_replay_resume"
            await self._admin(server, f"SELECT {fn}()")
            return f"{server}: replay {'paused' if action == 'pause-replay' else 'resumed'}"
        if action == "stop":
            if not target.running:
                return f"{server}: already stopped"
            await self._pg_ctl(self.cluster.stop_server, server)
            return f"{server}: stopped"
        if target.running:
            return f"{server}: already running"
        await self._pg_ctl(self.cluster.start_server, server)
        if target.role == "replica":
            await self._pg_ctl(lambda name: wait_streaming(self.cluster, replica=name), server)
            return f"{server}: started, streaming from the primary again"
        return f"{server}: started"

    async def _migration_drill(self, breaking: bool) -> str:
        script, text = BROKEN_MIGRATION
        path = self._files / "migrations" / script
        if breaking:
            path.write_text(text)
            return f"{script} added: the next release's migrate step fails on it"
        path.unlink(missing_ok=True)
        # What `flyway repair` does to a failed row; the file's half is rolled back already.
        removed = await self._admin(
            "primary",
            "WITH gone AS (DELETE FROM public.flyway_schema_history WHERE NOT success "
            "RETURNING 1) SELECT count(*) FROM gone",
            database=DATABASE,
        )
        return f"{script} removed, {removed} failed history row(s) repaired"

    async def _pg_ctl(self, verb: Callable[[str], None], server: str) -> None:
        try:
            await asyncio.to_thread(verb, server)
        except PgSetupError as exc:
            raise DrillError(str(exc), usage=False) from None

    def _names(self) -> str:
        return ", ".join(s.name for s in self.cluster.servers)

    async def _admin(self, server: str, sql: str, database: str = "postgres") -> object:
        try:
            async with await psycopg.AsyncConnection.connect(
                self.cluster.dsn(server, database), autocommit=True, connect_timeout=3
            ) as conn:
                cur = await conn.execute(sql)
                row = await cur.fetchone() if cur.description else None
                return row[0] if row else None
        except psycopg.Error as exc:
            raise DrillError(f"{server}: {_first_line(exc)}", usage=False) from None

    async def _flood_up(self) -> str:
        count = (
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()"
        )
        now = int(str(await self._admin("primary", count)))
        want = math.floor(self._pool * 0.8) + 1  # over the 80 % line
        for _ in range(max(0, want - now)):
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.cluster.dsn("primary", DATABASE),
                    autocommit=True,
                    application_name=FLOOD_APP,
                    connect_timeout=3,
                )
            except psycopg.Error as exc:
                raise DrillError(
                    f"primary: {len(self._flood)} idle connections open, then {_first_line(exc)}",
                    usage=False,
                ) from None
            self._flood.append(conn)
        total = now + max(0, want - now)
        return (
            f"primary: {len(self._flood)} idle connections open ({FLOOD_APP}); "
            f"{total} of the pool's {self._pool} = {100 * total / self._pool:.0f}%"
        )

    async def _calm(self) -> str:
        n = len(self._flood)
        for conn in self._flood:
            with contextlib.suppress(Exception):
                await conn.close()
        self._flood.clear()
        return f"primary: {n} idle connections closed"
