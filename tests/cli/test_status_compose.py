"""`bva status` on a compose environment: a platform file with `orchestrator = "compose"`
reads a project on a real Docker Engine (by compose's labels) and its health endpoints; the
Engine's address comes from DOCKER_HOST before the platform file, as the docker CLI does; an
Engine that cannot be reached is exit 3 with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.compose import labels as L
from tests.support.dockerd import Dockerd, compose_up, import_image, start_dockerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.xdist_group("dockerd")

IMAGE = "bharathva/auth-service:1.4.2"
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


@pytest.fixture(scope="module")
def engine() -> Iterator[Dockerd]:
    running = start_dockerd()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def project(engine: Dockerd) -> Iterator[int]:
    """auth-service x2 on project "shop"; yields the first one's published port."""
    with engine.client() as api:
        import_image(api, IMAGE, cmd=HTTPD)
        api.create_network("shop_default", labels={L.PROJECT: "shop"})
        ids = [compose_up(api, "shop", "auth-service", n, IMAGE) for n in (1, 2)]
        port = int(api.port(ids[0], 8080)[0]["HostPort"])
        try:
            yield port
        finally:
            for cid in ids:
                api.remove_container(cid, force=True)
            api.remove_network("shop_default")


def platform(tmp: Path, engine: Dockerd, port: int) -> Path:
    path = tmp / "shop.toml"
    path.write_text(
        'name = "Shop"\ndefault_environment = "local"\n\n'
        '[environments.local]\norchestrator = "compose"\nproject = "shop"\n'
        f'docker_host = "{engine.host}"\n\n'
        '[[services]]\nname = "auth-service"\nimage = "bharathva/auth-service"\nport = 8080\n'
        f'replicas = 2\nhealth = ["/actuator/health"]\nurl = "http://127.0.0.1:{port}"\n'
    )
    return path


def status(config: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    base = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "BVA_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(config), "status", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_of_a_compose_project(engine: Dockerd, project: int, tmp_path: Path) -> None:
    config = platform(tmp_path, engine, project)

    def healthy() -> Any:
        out = status(config, "--json")
        return out if out.returncode == 0 else None

    out = wait_until(healthy, 30, "bva status to say healthy")
    doc = json.loads(out.stdout)
    (auth,) = doc["services"]
    assert auth["name"] == "auth-service" and auth["health"] == "UP"
    assert auth["ready"] == auth["desired"] == 2 and auth["image_tag"] == "1.4.2"
    assert auth["rollout"]["state"] == "complete"
    assert {s["name"] for s in doc["sources"]} == {"compose", "health"}
    text = status(config)
    assert text.returncode == 0 and "auth-service" in text.stdout

    # DOCKER_HOST wins over the platform file, as with the docker CLI: here it points nowhere.
    nowhere = f"unix://{tmp_path}/none.sock"
    down = status(config, "--json", env={"DOCKER_HOST": nowhere})
    assert down.returncode == 3, down.stdout + down.stderr
    compose = next(s for s in json.loads(down.stdout)["sources"] if s["name"] == "compose")
    assert (
        compose["ok"] is False
        and "cannot reach the Docker Engine at " + nowhere in compose["message"]
    )


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ('docker_host = "unix:///run/docker.sock"', 'project: required for orchestrator "compose"'),
        ('project = "Shop!"', 'project: bad compose project name "Shop!"'),
        (
            'project = "shop"\ndocker_host = "http://x"',
            'docker_host: bad Docker Engine address "http://x"',
        ),
    ],
)
def test_bad_compose_settings_are_one_line(tmp_path: Path, settings: str, said: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "Shop"\ndefault_environment = "local"\n\n'
        f'[environments.local]\norchestrator = "compose"\n{settings}\n\n'
        '[[services]]\nname = "auth-service"\nimage = "bharathva/auth-service"\nport = 8080\n'
    )
    out = status(path)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"bva: {path}: environments.local.{said}"), line
