"""The Health screen on a compose project on a real Docker Engine: live rows from the
containers, and the Engine killed under the running console — the screen says so, keeps
answering keys, and recovers by itself when the Engine is back."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.compose import labels as L
from backends.config.loader import load_platform
from backends.platform import Platform, open_platform
from screens.health import HealthScreen
from tests.screens.test_health_e2e import row, wait_for
from tests.support.dockerd import Dockerd, compose_up, import_image, restart, start_dockerd
from tui.app import AppSettings, make_app

pytestmark = pytest.mark.xdist_group("dockerd")

IMAGE = "bharathva/auth-service:1.0.0"


@pytest.fixture
def engine() -> Iterator[Dockerd]:
    running = start_dockerd()
    try:
        yield running
    finally:
        running.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project(engine: Dockerd) -> int:
    """auth-service x2 as `docker compose up` makes them with `restart: always` and the first
    on a fixed host port (a port the Engine picks may change when it comes back)."""
    fixed = free_port()
    with engine.client() as api:
        import_image(api, IMAGE, cmd=["httpd", "-f", "-p", "8080", "-h", "/www"])
        api.create_network("shop_default", labels={L.PROJECT: "shop"})
        for n in (1, 2):
            port = fixed if n == 1 else None
            compose_up(api, "shop", "auth-service", n, IMAGE, host_port=port, restart="always")
        return fixed


def app_on(engine: Dockerd, tmp: Path, port: int) -> Any:
    path = tmp / "shop.toml"
    path.write_text(
        'name = "Shop"\ndefault_environment = "local"\n\n'
        '[environments.local]\norchestrator = "compose"\nproject = "shop"\n'
        f'docker_host = "{engine.host}"\n\n'
        '[[services]]\nname = "auth-service"\nimage = "bharathva/auth-service"\nport = 8080\n'
        f'replicas = 2\nhealth = ["/actuator/health"]\nurl = "http://127.0.0.1:{port}"\n'
    )
    cfg = load_platform(path)

    async def opener() -> Platform:
        return open_platform(cfg, "local", probe_timeout=1.0)

    return make_app(
        AppSettings(
            env="local",
            poll_interval=0.5,
            platform_label=cfg.name,
            environment_label="local",
            open_platform=opener,
        )
    )


async def test_the_engine_killed_under_the_console_and_back(
    engine: Dockerd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    app = app_on(engine, tmp_path, project(engine))
    async with app.run_test(size=(120, 36)) as pilot:
        up = await wait_for(pilot, "healthy", lambda p: p.healthy, timeout=30)
        auth = row(up, "auth-service")
        assert auth.ready == auth.desired == 2
        header = str(app.screen.query_one("AppHeader").render())
        assert f"live · shop on {engine.host}" in header
        engine.kill()
        down = await wait_for(
            pilot, "compose source down", lambda p: not p.sources[0].ok, timeout=20
        )
        assert down.sources[0].name == "compose" and down.sources[0].last_good is not None
        assert "compose unreachable" in str(app.screen.query_one("AppHeader").render())
        # The console keeps answering: keys move, another screen opens and comes back.
        await pilot.press("down", "4")
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, HealthScreen)
        restart(engine)
        back = await wait_for(
            pilot, "recovered", lambda p: p.sources[0].ok and p.healthy, timeout=40
        )
        assert row(back, "auth-service").ready == 2
        assert "live" in str(app.screen.query_one("AppHeader").render())
