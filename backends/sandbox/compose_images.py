"""The Docker Compose sandbox's images, built locally: there is no registry to pull from.

Every image is one tiny root filesystem (a static busybox, for the HEALTHCHECK's ``wget`` and a
``sh``) imported once per reference, which is what makes versions differ: each image names
itself in ``BVA_SANDBOX_IMAGE``, and its tag picks how ``compose_instance`` behaves.

Python is not in the images. A container bind-mounts, read-only, the host's interpreter (its
prefix and, for a virtual environment, the base one), the host's ``/usr``, ``/lib`` and
``/lib64`` (libc, libssl and the rest the interpreter loads) and the repository, at the same
paths: ``instance_mounts`` lists them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker

REPOSITORY_PREFIX = "bharathva"
INSTANCE_MODULE = "backends.sandbox.compose_instance"
REPO_ROOT = str(Path(__file__).resolve().parents[2])
LIVENESS_PATH = "/actuator/health/liveness"
# The directories of the root filesystem: the kernel's and Docker's mount points, the bind
# mounts' targets, /tmp, and /bin for busybox.
_DIRS = ("bin", "dev", "etc", "lib", "lib64", "proc", "root", "run", "sys", "tmp", "usr", "var")
_APPLETS = ("sh", "wget")
_SYSTEM_MOUNTS = ("/usr", "/lib", "/lib64")


def tags_for(
    service: str, versions: Iterable[str], *, prefix: str = REPOSITORY_PREFIX
) -> list[str]:
    """``bharathva/<service>:<version>`` for each version, as the platform names its images."""
    return [f"{prefix}/{service}:{version}" for version in versions]


def _busybox() -> str:
    for path in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox")):
        if path and os.path.isfile(path):
            return path
    raise FileNotFoundError("busybox is not installed (apt-get install busybox-static)")


def rootfs_tar(busybox: str | None = None) -> bytes:
    """A root filesystem of busybox (at /bin/busybox, with sh and wget) and empty directories.

    Debian's busybox-static needs nothing else; a dynamically linked busybox also runs, from
    the host's libraries that every container mounts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in _DIRS:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        data = Path(busybox or _busybox()).read_bytes()  # the file, even through a symlink
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buf.getvalue()


def _python_roots(python_prefix: str) -> list[str]:
    """The interpreter's prefix; for this interpreter, its base prefix too (a venv's python
    is a link into it) and its prefix (the venv's site-packages)."""
    roots = [python_prefix]
    mine = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    if os.path.realpath(python_prefix) in mine:
        roots += [sys.base_prefix, sys.prefix]
    return roots


def instance_mounts(python_prefix: str, repo_root: str) -> list[str]:
    """The read-only bind specs ("/usr:/usr:ro", ...) that an instance's container needs: each
    path once, none inside another (Docker refuses a duplicate mount point)."""
    paths = [p for p in _SYSTEM_MOUNTS if os.path.exists(p)]
    paths += [*_python_roots(python_prefix), repo_root]
    chosen: list[str] = []
    for raw in paths:
        path = os.path.normpath(os.path.abspath(raw))
        if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in chosen):
            chosen.append(path)
    return [f"{p}:{p}:ro" for p in chosen]


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def image_changes(ref: str, *, python_prefix: str, repo_root: str, speed: float = 1.0) -> list[str]:
    """The Dockerfile instructions ``docker import --change`` applies for the image ``ref``."""
    speed = speed if speed > 0 else 1.0
    # No ``wget -T``: Debian's busybox 1.35 segfaults with it; --timeout bounds a hung probe.
    probe = (
        f"wget -q -O /dev/null http://127.0.0.1:${{BVA_SANDBOX_PORT:-8080}}{LIVENESS_PATH}"
        " || exit 1"
    )
    health = (
        f"HEALTHCHECK --interval={_duration(1.0 / speed)} --timeout={_duration(2.0 / speed)}"
        f" --start-period={_duration(10.0 / speed)} --retries=3 CMD {probe}"
    )
    cmd = [f"{python_prefix.rstrip('/')}/bin/python3", "-m", INSTANCE_MODULE]
    return [
        f"ENV BVA_SANDBOX_IMAGE={ref}",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        f"ENV PYTHONPATH={repo_root}",
        health,
        "STOPSIGNAL SIGTERM",
        "CMD " + json.dumps(cmd),
    ]


def _split(ref: str) -> tuple[str, str]:
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:  # no tag, or the colon was a registry's port
        return ref, "latest"
    return name, tag


def build_images(
    api: docker.APIClient,
    refs: list[str],
    *,
    python_prefix: str,
    repo_root: str,
    speed: float = 1.0,
) -> None:
    """``docker import`` the root filesystem once per reference, with that image's changes.

    Older Engines (20.10 here) refuse STOPSIGNAL in import changes; the image is then imported
    without it, which is the same: SIGTERM is Docker's default stop signal."""
    tar = rootfs_tar()
    stop_signal = True
    for ref in refs:
        repository, tag = _split(ref)
        changes = image_changes(ref, python_prefix=python_prefix, repo_root=repo_root, speed=speed)
        try:
            answer = _import(api, tar, repository, tag, changes, stop_signal)
        except docker.errors.APIError as exc:
            if not stop_signal or "stopsignal" not in str(exc.explanation).lower():
                raise
            stop_signal = False
            answer = _import(api, tar, repository, tag, changes, stop_signal)
        # The Engine reports a failed import inside a 200 answer, as a JSON stream.
        for line in str(answer or "").splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("error"):
                raise docker.errors.APIError(f"importing {ref}: {message['error']}")


def _import(
    api: docker.APIClient,
    tar: bytes,
    repository: str,
    tag: str,
    changes: list[str],
    stop_signal: bool,
) -> Any:
    if not stop_signal:
        changes = [c for c in changes if not c.startswith("STOPSIGNAL ")]
    return api.import_image_from_data(tar, repository=repository, tag=tag, changes=changes)
