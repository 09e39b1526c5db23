"""A real PostgreSQL primary and its streaming replicas on 127.0.0.1, for the sandbox and tests.

The primary is made by ``initdb`` (scram-sha-256, a random superuser password), each replica by
``pg_basebackup -R -X stream`` from it, all started by ``pg_ctl`` as the user ``pgbin`` picks.
The password reaches the tools only through a passfile (mode 0600), never a command line.
Durability is traded for speed (``fsync = off``): this is a sandbox, removed on exit.

Blocking calls throughout; the sandbox runs them in a thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from backends.sandbox.pgbin import (
    PgSetupError,
    PgUser,
    find_bin,
    reachable_bin,
    server_user,
    server_version,
)

SUPERUSER = "postgres"
START_TIMEOUT_S = 60

Role = Literal["primary", "replica"]

_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
max_connections = {max_connections}
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
# Base backups taken side by side each force a checkpoint, which may recycle the WAL the other
# is about to stream; each replica also has a slot, so one stopped by a drill can catch up.
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
fsync = off
synchronous_commit = off
full_page_writes = off
track_commit_timestamp = on
log_min_messages = warning
"""

_HBA = """
local   all          all                  scram-sha-256
host    all          all    127.0.0.1/32  scram-sha-256
host    replication  all    127.0.0.1/32  scram-sha-256
"""


@dataclass(slots=True)
class PgServer:
    name: str  # "primary", "replica-1", ...
    role: Role
    port: int
    data: Path
    running: bool = False

    @property
    def log(self) -> Path:
        return self.data.with_suffix(".log")


@dataclass
class PgCluster:
    """A primary and ``replicas`` streaming standbys under one private directory."""

    root: Path | None = None  # None: a private temporary directory
    replicas: int = 2
    pg_bin: str | None = None
    max_connections: int = 100
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    servers: list[PgServer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said once to the user
    version: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self._user: PgUser | None = None
        self._bin = Path()
        self._dir: Path | None = None

    # -- life --------------------------------------------------------------------------------

    def start(self, on_primary: Callable[[], None] | None = None) -> None:
        """Up and streaming, or PgSetupError with what failed; a failed start cleans up.

        ``on_primary`` runs once the primary is up and before the replicas are copied from
        it: what it writes (a seed) is in their base backups, with no replay to wait for."""
        try:
            self._start(on_primary)
        except BaseException:
            self.stop()
            raise

    def _start(self, on_primary: Callable[[], None] | None) -> None:
        bin_dir = find_bin(self.pg_bin)
        self.version = server_version(bin_dir)
        self._user = user = server_user()
        if user.home_note:
            self.notes.append(user.home_note)
        self._bin = reachable_bin(bin_dir, user, self.version)
        self._dir = self._private_dir()
        self._write_passfile()
        primary = PgServer("primary", "primary", _free_port(), self._dir / "primary")
        self.servers = [primary]
        self._initdb(primary)
        self._pg_ctl(primary, "start")
        if on_primary is not None:
            on_primary()
        replicas = [
            PgServer(f"replica-{i}", "replica", _free_port(), self._dir / f"replica-{i}")
            for i in range(1, self.replicas + 1)
        ]
        self.servers.extend(replicas)
        # Side by side: each copy mostly waits on the primary's checkpoint and the network.
        with ThreadPoolExecutor(max_workers=max(1, len(replicas))) as pool:
            for done in [pool.submit(self._make_replica, primary, r) for r in replicas]:
                done.result()

    def _make_replica(self, primary: PgServer, replica: PgServer) -> None:
        self._basebackup(primary, replica)
        self._pg_ctl(replica, "start")

    def stop(self) -> None:
        """Every server stopped (replicas first) and the directory removed."""
        for server in reversed(self.servers):
            if server.running:
                with contextlib.suppress(PgSetupError, OSError, subprocess.SubprocessError):
                    self._pg_ctl(server, "stop")
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def stop_server(self, name: str) -> None:
        self._pg_ctl(self.server(name), "stop")

    def start_server(self, name: str) -> None:
        self._pg_ctl(self.server(name), "start")

    # -- what clients need -----------------------------------------------------------------

    def server(self, name: str) -> PgServer:
        for server in self.servers:
            if server.name == name:
                return server
        raise PgSetupError(f"no server {name!r} (have {', '.join(s.name for s in self.servers)})")

    @property
    def primary(self) -> PgServer:
        return self.servers[0]

    def dsn(self, name: str = "primary", dbname: str = "postgres") -> str:
        """A libpq URL with the password in it: give it to a client, never print it."""
        port = self.server(name).port
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{port}/{dbname}"

    @property
    def directory(self) -> Path | None:
        """The private directory holding every server's data, logs and the passfile."""
        return self._dir

    @property
    def passfile(self) -> Path:
        assert self._dir is not None
        return self._dir / "pgpass"

    # -- steps -------------------------------------------------------------------------------

    def _private_dir(self) -> Path:
        user = self._user
        assert user is not None
        if self.root is not None and user.uid is None:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            where = Path(tempfile.mkdtemp(prefix="pg-", dir=self.root))
        else:
            # The servers' own user must reach its data: a directory of its own, not inside
            # root's private state directory.
            where = Path(tempfile.mkdtemp(prefix="bva-pg-"))
        if user.uid is not None and user.gid is not None:
            os.chown(where, user.uid, user.gid)
        os.chmod(where, 0o700)
        return where

    def _write_passfile(self) -> None:
        # hostname:port:database:username:password; "*" matches every server of the cluster.
        line = f"127.0.0.1:*:*:{SUPERUSER}:{_escape(self.password)}\n"
        self._own_file(self.passfile, line)
        self._own_file(self.passfile.with_name("pwfile"), self.password + "\n")

    def _own_file(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        user = self._user
        if user is not None and user.uid is not None and user.gid is not None:
            os.chown(path, user.uid, user.gid)

    def _initdb(self, server: PgServer) -> None:
        self._run(
            "initdb", "-D", str(server.data), "-U", SUPERUSER, "--auth=scram-sha-256",
            f"--pwfile={self.passfile.with_name('pwfile')}", "-E", "UTF8", "--locale=C",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.passfile.with_name("pwfile").unlink()
        self._configure(server)

    def _configure(self, server: PgServer) -> None:
        assert self._dir is not None
        settings = _SETTINGS.format(
            port=server.port, sockets=self._dir, max_connections=self.max_connections
        )
        with (server.data / "postgresql.conf").open("a") as f:
            f.write("\n# bva sandbox\n" + settings)
        (server.data / "pg_hba.conf").write_text(_HBA)

    def _basebackup(self, primary: PgServer, replica: PgServer) -> None:
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", SUPERUSER,
            "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
            "-C", "-S", replica.name.replace("-", "_"),
            "-d", f"application_name={replica.name}",
        )  # fmt: skip
        # The copy carries the primary's port: the replica gets its own.
        with (replica.data / "postgresql.conf").open("a") as f:
            f.write(f"\nport = {replica.port}\n")

    def _pg_ctl(self, server: PgServer, verb: Literal["start", "stop"]) -> None:
        if verb == "start":
            self._run(
                "pg_ctl", "-D", str(server.data), "-l", str(server.log), "-w",
                "-t", str(START_TIMEOUT_S), "start",
            )  # fmt: skip
            server.running = True
        else:
            self._run("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop")
            server.running = False

    def _run(self, tool: str, *args: str) -> None:
        user = self._user
        assert user is not None and self._dir is not None
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGPASSFILE": str(self.passfile),
            "LC_ALL": "C",
        }
        try:
            done = subprocess.run(
                [str(self._bin / tool), *args],
                env=env,
                cwd=self._dir,
                user=user.uid,
                group=user.gid,
                extra_groups=[] if user.uid is not None else None,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S + 10,
                start_new_session=True,  # a terminal's Ctrl-C goes to bva, which stops them
            )
        except subprocess.TimeoutExpired:
            raise PgSetupError(f"{tool} did not finish in {START_TIMEOUT_S + 10} s") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            # The first error names the cause; the last line is often the clean-up after it.
            errors = [line for line in said if "error:" in line or "FATAL" in line]
            last = (errors or said or [f"exit {done.returncode}"])[0]
            raise PgSetupError(f"{tool} failed: {last[:200].replace(self.password, '***')}")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_streaming(
    cluster: PgCluster, timeout: float = 30.0, *, replica: str | None = None
) -> None:
    """Block until every replica (or only ``replica``) streams from the primary, as
    pg_stat_replication says; PgSetupError after ``timeout`` seconds."""
    import psycopg

    names = [replica] if replica else [s.name for s in cluster.servers[1:]]
    sql = (
        "SELECT count(*) FROM pg_stat_replication"
        " WHERE state = 'streaming' AND application_name = ANY(%s)"
    )
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(cluster.dsn(), connect_timeout=3) as conn,
        ):
            row = conn.execute(sql, (names,)).fetchone()
            if row is not None and int(row[0]) >= len(names):
                return
        if time.monotonic() > deadline:
            who = replica or "the replicas"
            raise PgSetupError(f"{who} did not start streaming in {timeout:.0f} s")
        time.sleep(0.05)
