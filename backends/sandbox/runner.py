"""Run the sandbox: the API, the services' endpoints, the kubeconfig and the state file."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from backends.sandbox.api import Api
from backends.sandbox.cluster import Cluster
from backends.sandbox.endpoints import ServiceEndpoints
from backends.sandbox.logfeed import LogFeeds
from backends.sandbox.pgbin import PgSetupError
from backends.sandbox.pgworld import DrillError, SandboxDatabase
from backends.sandbox.state import (
    SandboxState,
    read_state,
    ready_timeout,
    remove_state,
    runtime_dir,
    write_state,
)
from backends.sandbox.view import SandboxService

CONTEXT = "bva-sandbox"
READY_POLL_S = 0.05


@dataclass
class SandboxSettings:
    services: list[SandboxService]
    namespace: str
    replicas: dict[str, int]
    images: dict[str, str]
    kubeconfig: Path | None = None
    speed: float = 1.0
    seed: int = 1
    ready_delay: float = 1.0
    progress_deadline: int = 600
    port: int = 0
    platform_source: str = ""
    announce: bool = True
    # Lines appended to <log_dir>/<service>.log become that service's pods' output.
    log_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # A real PostgreSQL primary and two streaming replicas beside the cluster.
    database: bool = False
    pg_bin: str | None = None
    db_pool_size: int = 20
    # Shared Secrets and ConfigMaps are named <config_prefix>-<group>; default the namespace.
    config_prefix: str = ""
    # "compose": the services as a compose project on a private Docker Engine instead.
    orchestrator: str = "kubernetes"


class AlreadyRunning(Exception):
    pass


class NotReady(Exception):
    pass


def drill_socket() -> Path:
    return runtime_dir() / "sandbox-drill.sock"


def kubeconfig_text(api_url: str, namespace: str) -> str:
    # JSON is valid YAML, so kubectl and the kubernetes client read it as a kubeconfig.
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": api_url}}],
            "users": [{"name": CONTEXT, "user": {}}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
                }
            ],
            "current-context": CONTEXT,
            "preferences": {},
        },
        indent=2,
    )


class Sandbox:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.cluster = Cluster(
            settings.services,
            settings.namespace,
            replicas=settings.replicas,
            images=settings.images,
            speed=settings.speed,
            seed=settings.seed,
            ready_delay=settings.ready_delay,
            progress_deadline=settings.progress_deadline,
            config_prefix=settings.config_prefix,
        )
        self.api = Api(self.cluster)
        self.endpoints = ServiceEndpoints(
            services=settings.services,
            view=self.cluster,
            traffic=self.cluster.traffic,
            speed=settings.speed,
            seed=settings.seed,
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self.port = settings.port
        self.api_url = ""
        self.service_urls: dict[str, str] = {}
        self.kubeconfig_path: Path | None = None
        self.database: SandboxDatabase | None = None
        self._db_task: asyncio.Future[None] | None = None
        self._drills: asyncio.Server | None = None
        if settings.database:
            self.database = SandboxDatabase(
                runtime_dir() / f"sandbox-db-{os.getpid()}",
                pool_size=settings.db_pool_size,
                pg_bin=settings.pg_bin,
                ready_pods=self._ready_pods,
                seed_value=settings.seed,
            )

    def _ready_pods(self, service: str) -> int:
        return sum(1 for p in self.cluster.pods_for_service(service) if p.ready)

    async def start(self) -> None:
        """The cluster, the API and the endpoints, listening; not yet announced."""
        if self.settings.announce:
            self._refuse_if_running()
        if self.database is not None:
            # Blocking subprocess work (initdb, base backups): beside the cluster, not before it.
            self._db_task = asyncio.ensure_future(asyncio.to_thread(self.database.start_blocking))
        self.cluster.seed_objects()
        self._loop_task = asyncio.create_task(self.cluster.run())
        if self.settings.log_dir is not None:
            feeds = LogFeeds(
                self.settings.log_dir,
                [s.name for s in self.settings.services],
                self.cluster.logs,
            )
            self._feed_task = asyncio.create_task(feeds.run())
        await self.start_api()
        self.service_urls = await self.endpoints.start()
        path = self.settings.kubeconfig or runtime_dir() / "sandbox-kubeconfig.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(kubeconfig_text(self.api_url, self.settings.namespace))
        path.chmod(0o600)
        self.kubeconfig_path = path

    def _refuse_if_running(self) -> None:
        running = read_state()
        if running is not None and running.pid != os.getpid():
            raise AlreadyRunning(
                f"a sandbox is already running (pid {running.pid}, kubeconfig {running.kubeconfig})"
            )

    async def wait_ready(self, timeout: float) -> None:
        """Until the platform is up: every deployment rolled out, Available and all its
        replicas ready, and every health endpoint of every service answering UP. Until then
        `bva status` would call the sandbox degraded; raises NotReady after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        per_probe = aiohttp.ClientTimeout(total=max(2.0, 2.0 / self.settings.speed))
        if self._db_task is not None and self.database is not None:
            await database_up(self._db_task, self.database, timeout)
            try:
                await self._serve_drills()
            except OSError as exc:
                raise NotReady(f"cannot open the drill socket {drill_socket()}: {exc}") from None
        async with aiohttp.ClientSession(timeout=per_probe) as session:
            while True:
                waiting = self.cluster.unready_deployments()
                if not waiting:
                    waiting = await self._unhealthy(session)
                if not waiting:
                    return
                if loop.time() >= deadline:
                    raise NotReady(
                        f"the platform did not come up within {timeout:.0f}s, still waiting "
                        f"for: {', '.join(waiting)}"
                    )
                await asyncio.sleep(READY_POLL_S)

    async def _unhealthy(self, session: aiohttp.ClientSession) -> list[str]:
        """The health endpoints not answering UP, each as "service path answer"."""
        checks = [(s.name, path) for s in self.settings.services for path in s.health_paths]
        answers = await asyncio.gather(*(self._health(session, n, p) for n, p in checks))
        return [
            f"{name} {path} {answer}"
            for (name, path), answer in zip(checks, answers, strict=True)
            if answer != "UP"
        ]

    async def _health(self, session: aiohttp.ClientSession, service: str, path: str) -> str:
        # Asked over HTTP like `bva status` asks, so "UP" is what it will be told.
        try:
            async with session.get(self.service_urls[service] + path) as resp:
                body = await resp.json(content_type=None)
                code = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return type(exc).__name__
        status = str(body.get("status")) if isinstance(body, dict) else "?"
        return status if code == 200 else f"HTTP {code} {status}"

    def announce(self) -> None:
        """Write the state file: from now on other bva commands find this sandbox."""
        if not self.settings.announce:
            return
        # Checked again: another sandbox may have announced itself while this one came up.
        self._refuse_if_running()
        write_state(
            SandboxState(
                pid=os.getpid(),
                api_url=self.api_url,
                kubeconfig=str(self.kubeconfig_path),
                namespace=self.settings.namespace,
                context=CONTEXT,
                services=dict(self.service_urls),
                platform=self.settings.platform_source,
                started=time.time(),
                database=self.database.state_block() if self.database is not None else None,
            )
        )

    async def start_api(self) -> None:
        if self._runner is None:
            self._runner = web.AppRunner(
                self.api.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5
            )
            await self._runner.setup()
        self.api.stopping.clear()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        self.api_url = f"http://127.0.0.1:{self.port}"

    async def stop_api(self) -> None:
        """An API outage: the listener and every open connection (keep-alive, watches, log
        streams) go away, as they would if the API server died."""
        self.api.stopping.set()
        self.cluster.store.close_watchers()
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def stop(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        await self.stop_api()
        self.cluster.stop()
        if self._loop_task is not None:
            await self._loop_task
        await self.endpoints.stop()
        await self._stop_database()
        if self.settings.announce:
            remove_state(os.getpid())

    async def _stop_database(self) -> None:
        if self._drills is not None:
            self._drills.close()
            self._drills = None
            drill_socket().unlink(missing_ok=True)
        if self.database is None:
            return
        if self._db_task is not None:
            # A start still under way is let finish, so what it started is stopped too.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._db_task
        await self.database.stop()

    async def _serve_drills(self) -> None:
        """`bva sandbox drill ...` from another terminal: one JSON line in, one out."""
        path = drill_socket()
        path.unlink(missing_ok=True)
        self._drills = await asyncio.start_unix_server(self._drill, path=str(path))
        path.chmod(0o600)

    async def _drill(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readline(), 5)
            request = json.loads(raw or b"{}")
            action, server = str(request.get("action", "")), request.get("server")
            assert self.database is not None
            try:
                message = await self.database.drill(action, str(server) if server else None)
                answer = {"ok": True, "message": message}
            except DrillError as exc:
                answer = {"ok": False, "message": str(exc), "usage": exc.usage}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, ValueError, TimeoutError, AttributeError):
            pass
        finally:
            writer.close()


async def database_up(
    task: asyncio.Future[None], database: SandboxDatabase, timeout: float
) -> None:
    """Wait for the database's start (begun beside the rest) and put its load on; NotReady
    with the reason when it does not come up."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        raise NotReady(f"the database did not come up within {timeout:.0f}s") from None
    except PgSetupError as exc:
        raise NotReady(f"the database did not start: {exc}") from None
    database.start_load()


async def serve(settings: SandboxSettings) -> int:
    sandbox: Any
    if settings.orchestrator == "compose":
        from backends.sandbox import compose_sandbox
        from backends.sandbox.dockerd import EngineUnavailable

        sandbox = compose_sandbox.ComposeSandbox(settings)
        refused: tuple[type[Exception], ...] = (AlreadyRunning, EngineUnavailable)
    else:
        sandbox = Sandbox(settings)
        refused = (AlreadyRunning,)
    stopping: tuple[type[Exception], ...] = (NotReady, *refused)
    try:
        await sandbox.start()
    except refused as exc:
        print(f"bva sandbox: {exc}", file=sys.stderr)
        if not isinstance(sandbox, Sandbox):
            await sandbox.stop()  # an engine it started is not left behind
        return 1
    except OSError as exc:
        print(
            f"bva sandbox: cannot listen on 127.0.0.1:{settings.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, done.set)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    # The terminal went away (a closed SSH session, a killed tmux): stop cleanly, servers too.
    loop.add_signal_handler(signal.SIGHUP, done.set)
    # "ready" and the state file mean the platform is up, so a `bva status` right after
    # them reports it healthy.
    try:
        up = await _unless(sandbox.wait_ready(ready_timeout(settings.speed)), done)
        if up:
            sandbox.announce()
            # What the start built (2000 pods, their events) is out of the cyclic collector's
            # sight from here on: a full collection at that size stops the loop for 0.1 s.
            gc.freeze()
    except stopping as exc:
        await sandbox.stop()
        print(f"bva sandbox: {exc}", file=sys.stderr)
        return 1
    if up:
        toggles: list[asyncio.Task[None]] = []
        # Outage drills for tests and demos: USR1 takes the API down, USR2 brings it back.
        loop.add_signal_handler(
            signal.SIGUSR1, lambda: toggles.append(loop.create_task(sandbox.stop_api()))
        )
        loop.add_signal_handler(
            signal.SIGUSR2, lambda: toggles.append(loop.create_task(sandbox.start_api()))
        )
        if isinstance(sandbox, Sandbox):
            line = (
                f"sandbox ready: api {sandbox.api_url} kubeconfig {sandbox.kubeconfig_path} "
                f"namespace {settings.namespace} ({len(settings.services)} services)"
            )
        else:
            line = sandbox.ready_line()
        print(line, flush=True)
        for name, url in sandbox.service_urls.items():
            print(f"  {name:<24} {url}", flush=True)
        if sandbox.database is not None:
            for note in sandbox.database.cluster.notes:
                print(f"  note: {note}", flush=True)
            print(f"  {sandbox.database.describe()}", flush=True)
        await done.wait()
    await sandbox.stop()
    print("sandbox stopped", flush=True)
    return 0


async def _unless(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first; whether it ran to its end."""
    task = asyncio.create_task(work)
    halt = asyncio.create_task(stop.wait())
    await asyncio.wait({task, halt}, return_when=asyncio.FIRST_COMPLETED)
    halt.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True
