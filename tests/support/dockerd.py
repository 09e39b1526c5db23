"""A private Docker Engine for tests (backends/sandbox/dockerd.py starts it) and the images
they import: a busybox root filesystem that serves a file as Actuator health.

Fails loudly when it cannot start: a test that needs an engine must not pass without one.
"""

from __future__ import annotations

import io
import json
import os
import tarfile

import docker
import pytest

from backends.sandbox.dockerd import Dockerd, EngineUnavailable, restart
from backends.sandbox.dockerd import start_dockerd as _start_dockerd

# Set by .ci/run: there the engine must start, and a test that cannot have one fails.
REQUIRED = os.environ.get("BVA_REQUIRE_DOCKER") == "1"


def unavailable(reason: str) -> None:
    """No engine can run here: skipped with the reason, except where one is required (CI)."""
    if REQUIRED:
        pytest.fail(f"a Docker Engine is required here (BVA_REQUIRE_DOCKER=1): {reason}")
    pytest.skip(f"no Docker Engine can be started here: {reason}")


def start_dockerd(timeout: float = 60.0) -> Dockerd:
    try:
        return _start_dockerd(timeout)
    except EngineUnavailable as exc:
        unavailable(str(exc))
        raise


__all__ = ["Dockerd", "import_image", "restart", "rootfs_tar", "start", "start_dockerd"]

BUSYBOX = "/usr/bin/busybox"  # Debian's busybox-static: one static binary, the whole rootfs


def rootfs_tar() -> bytes:
    """A root filesystem of busybox alone: sh, sleep, wget, httpd and the rest of its applets."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "run", "www", "www/actuator"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "sleep", "wget", "httpd", "echo", "cat", "date"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for path, body in (
            ("www/index.html", b"ok\n"),
            # Spring Boot Actuator's answer, as a file busybox httpd serves.
            ("www/actuator/health", b'{"status":"UP"}'),
        ):
            info = tarfile.TarInfo(path)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def import_image(
    api: docker.APIClient,
    ref: str,
    env: dict[str, str] | None = None,
    cmd: list[str] | None = None,
) -> None:
    """``docker import`` of the busybox root filesystem as ``ref`` (no registry here), with
    its own ENV and CMD: what a version of a service does is its image's."""
    repo, _, tag = ref.rpartition(":")
    changes = [f"ENV {k}={v}" for k, v in (env or {}).items()]
    changes.append("CMD " + json.dumps(cmd or ["/bin/sh"]))
    api.import_image_from_data(rootfs_tar(), repository=repo, tag=tag, changes=changes)


def start(api: docker.APIClient, cid: str) -> None:
    """``api.start``, again when the Engine picked a host port another process holds (its
    allocator does not ask the kernel: another engine or any server may have it)."""
    from backends.compose.changes import start_container

    start_container(api, cid)


def compose_up(
    api: docker.APIClient,
    project: str,
    service: str,
    number: int,
    image: str,
    *,
    host_port: int | None = None,
    restart: str | None = None,
    **extra: object,
) -> str:
    """One container as `docker compose up` makes it: compose's labels and name, the
    project's network with the service's alias, port 8080 published on 127.0.0.1 (on
    ``host_port``, else one the Engine picks), started. The network must exist."""
    from backends.compose import labels as L

    c = api.create_container(
        image,
        name=f"{project}-{service}-{number}",
        labels={L.PROJECT: project, L.SERVICE: service, L.NUMBER: str(number),
                L.ONEOFF: "False"},
        ports=[8080],
        host_config=api.create_host_config(
            port_bindings={8080: ("127.0.0.1", host_port)},
            restart_policy={"Name": restart} if restart else None,
        ),
        networking_config=api.create_networking_config(
            {f"{project}_default": api.create_endpoint_config(aliases=[service])}
        ),
        **extra,
    )  # fmt: skip
    start(api, c["Id"])
    return str(c["Id"])
