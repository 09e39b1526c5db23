"""`bva sandbox --orchestrator compose`: the BharathVA services as a compose project on a
Docker Engine — the one ``DOCKER_HOST`` names when it answers, else a private one it starts
and stops — each instance a real container running the sandbox's simulated
service (backends/sandbox/compose_instance.py), each service reached through its gateway
(compose_gateway.py), the sandbox's PostgreSQL beside them as on Kubernetes.

There is no registry: every version tag a release may ask for is imported up front
(``VERSIONS``, with the failure tags), Python and the repo bind-mounted read-only. The outage
drill (SIGUSR1/SIGUSR2) kills the Engine and starts it again under the running containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Any

import aiohttp

from backends.sandbox.compose_gateway import NUMBER, ONEOFF, PROJECT, SERVICE, ServiceGateway
from backends.sandbox.compose_images import REPO_ROOT, build_images, instance_mounts
from backends.sandbox.dockerd import Dockerd, restart, start_dockerd
from backends.sandbox.pgworld import SandboxDatabase
from backends.sandbox.runner import AlreadyRunning, NotReady, database_up
from backends.sandbox.state import SandboxState, read_state, remove_state, runtime_dir, write_state

VERSIONS = (
    "1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "2.0.0",
    "2.0.0-crash", "2.0.0-unhealthy", "2.0.0-hang",
)  # fmt: skip
READY_POLL_S = 0.25
STOP_GRACE_S = 2  # each container's stop_grace_period


class ComposeSandbox:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.project = settings.namespace
        self.engine: Dockerd | None = None  # the private Engine this sandbox started
        self.host = ""
        self.gateways: dict[str, ServiceGateway] = {}
        self.service_urls: dict[str, str] = {}
        self.api_url = ""
        self.kubeconfig_path = None
        self.database: SandboxDatabase | None = None
        self._db_task: asyncio.Future[None] | None = None
        if settings.database:
            self.database = SandboxDatabase(
                runtime_dir() / f"sandbox-db-{os.getpid()}",
                pool_size=settings.db_pool_size,
                pg_bin=settings.pg_bin,
                ready_pods=lambda s: self.gateways[s].ready if s in self.gateways else 0,
                seed_value=settings.seed,
            )

    # -- up -----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.settings.announce:
            self._refuse_if_running()
        if self.database is not None:
            self._db_task = asyncio.ensure_future(asyncio.to_thread(self.database.start_blocking))
        self.host = await asyncio.to_thread(_reachable_engine)
        if not self.host:
            self.engine = await asyncio.to_thread(start_dockerd)
            self.host = self.engine.host
        self.api_url = self.host
        await asyncio.to_thread(self._up)
        for s in self.settings.services:
            gateway = ServiceGateway(self.host, self.project, s.name, s.port)
            self.gateways[s.name] = gateway
            self.service_urls[s.name] = await gateway.start()

    def _refuse_if_running(self) -> None:
        running = read_state()
        if running is not None and running.pid != os.getpid():
            raise AlreadyRunning(f"a sandbox is already running (pid {running.pid})")

    def _client(self) -> Any:
        import docker

        return docker.APIClient(base_url=self.host, timeout=60)

    def _up(self) -> None:
        s = self.settings
        python = sys.base_prefix
        with self._client() as api:
            if api.containers(all=True, filters={"label": f"{PROJECT}={self.project}"}):
                raise AlreadyRunning(
                    f"the Engine at {self.host} already runs a project {self.project}"
                )
            repos = sorted({s.images[svc.name].rsplit(":", 1)[0] for svc in s.services})
            refs = [f"{repo}:{v}" for repo in repos for v in VERSIONS]
            refs += [img for img in s.images.values() if img not in refs]
            build_images(api, refs, python_prefix=python, repo_root=REPO_ROOT, speed=s.speed)
            network = f"{self.project}_default"
            api.create_network(
                network, labels={PROJECT: self.project, "com.docker.compose.network": "default"}
            )
            mounts = instance_mounts(python, REPO_ROOT)
            for svc in s.services:
                for n in range(1, s.replicas.get(svc.name, 1) + 1):
                    self._container(api, svc, n, network, mounts)

    def _container(self, api: Any, svc: Any, n: int, network: str, mounts: list[str]) -> None:
        s = self.settings
        image = s.images[svc.name]
        env = {
            "BVA_SANDBOX_SERVICE": svc.name,
            "BVA_SANDBOX_PORT": str(svc.port),
            "BVA_SANDBOX_SPEED": f"{s.speed:g}",
            "BVA_SANDBOX_SEED": str(s.seed * 1000 + n),
            "BVA_SANDBOX_HEALTH_PATHS": ",".join(svc.health_paths),
            "BVA_SANDBOX_LOG_FORMAT": svc.log_format,
        }
        # The variables the platform file says the service gets: names matter, values are
        # stand-ins (as the Kubernetes sandbox's Secrets hold dummy values).
        env.update({name: f"sandbox-{name.lower()}" for name in svc.env})
        # As `docker compose up` labels them: bva's own labels come with bva's changes.
        labels = {PROJECT: self.project, SERVICE: svc.name, NUMBER: str(n), ONEOFF: "False"}
        created = api.create_container(
            image,
            name=f"{self.project}-{svc.name}-{n}",
            environment=env,
            labels=labels,
            ports=[svc.port],
            stop_timeout=STOP_GRACE_S,
            host_config=api.create_host_config(
                binds=mounts,
                port_bindings={svc.port: ("127.0.0.1", None)},
                restart_policy={"Name": "always"},
            ),
            networking_config=api.create_networking_config(
                {network: api.create_endpoint_config(aliases=[svc.name])}
            ),
        )
        # Again when the Engine picked a host port another process holds (its allocator does
        # not ask the kernel; the next try takes the next port).
        for attempt in range(5):
            try:
                api.start(created["Id"])
                break
            except Exception as exc:
                if "address already in use" not in str(exc) or attempt == 4:
                    raise

    async def wait_ready(self, timeout: float) -> None:
        """Until every service has its replicas ready and its health endpoints answer UP
        through its gateway; raises NotReady after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._db_task is not None and self.database is not None:
            await database_up(self._db_task, self.database, timeout)
        bound = aiohttp.ClientTimeout(total=max(2.0, 2.0 / self.settings.speed))
        async with aiohttp.ClientSession(timeout=bound) as session:
            while True:
                waiting = await self._waiting(session)
                if not waiting:
                    return
                if loop.time() >= deadline:
                    raise NotReady(
                        f"the project did not come up within {timeout:.0f}s, still waiting "
                        f"for: {', '.join(waiting)}"
                    )
                await asyncio.sleep(READY_POLL_S)

    async def _waiting(self, session: aiohttp.ClientSession) -> list[str]:
        out = []
        for svc in self.settings.services:
            gateway = self.gateways[svc.name]
            want = self.settings.replicas.get(svc.name, 1)
            if gateway.ready < want:
                out.append(f"{svc.name} {gateway.ready}/{want} ready")
                continue
            for path in svc.health_paths:
                try:
                    async with session.get(gateway.url + path) as resp:
                        body = await resp.json(content_type=None)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    out.append(f"{svc.name} {path} {type(exc).__name__}")
                    continue
                if not isinstance(body, dict) or body.get("status") != "UP":
                    out.append(f"{svc.name} {path} not UP")
        return out

    def announce(self) -> None:
        if not self.settings.announce:
            return
        self._refuse_if_running()
        write_state(
            SandboxState(
                pid=os.getpid(),
                api_url=self.host,
                kubeconfig="",
                namespace=self.project,
                context="",
                services=dict(self.service_urls),
                platform=self.settings.platform_source,
                started=time.time(),
                database=self.database.state_block() if self.database is not None else None,
                orchestrator="compose",
                docker_host=self.host,
                project=self.project,
            )
        )

    def ready_line(self) -> str:
        return (
            f"sandbox ready: compose project {self.project} on {self.api_url} "
            f"({len(self.settings.services)} services)"
        )

    def _down(self) -> None:
        with self._client() as api:
            mine = api.containers(all=True, filters={"label": f"{PROJECT}={self.project}"})
            state = api.containers(all=True, filters={"label": f"io.bva.state-of={self.project}"})
            for c in [*mine, *state]:
                with contextlib.suppress(Exception):
                    api.remove_container(c["Id"], force=True)
            with contextlib.suppress(Exception):
                api.remove_network(f"{self.project}_default")

    # -- the outage drill --------------------------------------------------------------------
    async def stop_api(self) -> None:
        """The Engine dies under the running containers (as a crashed docker.service)."""
        if self.engine is not None and self.engine.proc.poll() is None:
            await asyncio.to_thread(self.engine.kill)

    async def start_api(self) -> None:
        if self.engine is not None and self.engine.proc.poll() is not None:
            await asyncio.to_thread(restart, self.engine)

    # -- down ---------------------------------------------------------------------------------
    async def stop(self) -> None:
        for gateway in self.gateways.values():
            await gateway.stop()
        if self.database is not None:
            if self._db_task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self._db_task
            await self.database.stop()
        if self.engine is not None:
            await asyncio.to_thread(self.engine.stop)  # its containers go with it
        elif self.host:
            await asyncio.to_thread(self._down)  # someone else's Engine: only the project goes
        if self.settings.announce:
            remove_state(os.getpid())


def _reachable_engine() -> str:
    """``DOCKER_HOST`` when an Engine answers there (the sandbox then uses it, and removes
    only its project at the end); "" to start a private one."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return ""
    try:
        import docker

        with docker.APIClient(base_url=host, timeout=3) as api:
            api.ping()
    except Exception:
        return ""
    return host
