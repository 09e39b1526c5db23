"""One instance of one platform service, the program inside a Docker Compose sandbox container.

Configured from the environment only. The image names itself (``BVA_SANDBOX_IMAGE``; its tag
picks the behaviour as in the Kubernetes sandbox), the container says which service it is:
``BVA_SANDBOX_SERVICE``, ``BVA_SANDBOX_PORT`` (default 8080), ``BVA_SANDBOX_HEALTH_PATHS``
(comma list), ``BVA_SANDBOX_SPEED``, ``BVA_SANDBOX_SEED``, ``BVA_SANDBOX_TRACK`` (stable or
canary) and ``BVA_SANDBOX_LOG_FORMAT`` (plain or json); the instance is named by ``HOSTNAME``
(Docker sets it to the container's hostname).

It answers as one pod of the Kubernetes sandbox does, from the same code: Actuator health
(``endpoints.health_reply``), Micrometer metrics of its own simulated traffic (``Traffic`` over
a one-pod view), Spring Boot log lines on stdout (``LogBook``). A "crash" image logs a failed
start and exits 1 without ever listening; SIGTERM logs a graceful shutdown and exits 0.

    python -m backends.sandbox.compose_instance
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TextIO

from aiohttp import web

from backends.sandbox.endpoints import (
    HANG_S,
    HEALTH_PATH,
    POD_HEADER,
    PROMETHEUS_TEXT,
    error_body,
    health_latency,
    health_reply,
)
from backends.sandbox.logs import LogBook
from backends.sandbox.traffic import Traffic
from backends.sandbox.view import (
    Behaviour,
    LogFormat,
    PodView,
    SandboxService,
    behaviour_for_image,
)

METRICS_PATH = "/actuator/prometheus"
TICK_S = 0.25  # the Kubernetes sandbox's simulation tick
CRASH_RUN_S = 1.5  # from launch to "Application run failed", at speed 1
EXIT_CRASH = 1
EXIT_CONFIG = 2


@dataclass(frozen=True)
class InstanceConfig:
    service: str
    image: str
    pod: str
    port: int = 8080
    health_paths: tuple[str, ...] = ()
    speed: float = 1.0
    seed: int = 1
    track: str = "stable"
    log_format: LogFormat = "plain"

    @property
    def behaviour(self) -> Behaviour:
        return behaviour_for_image(self.image)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InstanceConfig:
        """Raises ValueError naming the variable that is missing or wrong."""
        service = env.get("BVA_SANDBOX_SERVICE", "").strip()
        if not service:
            raise ValueError("BVA_SANDBOX_SERVICE is not set")
        port = int(_number(env, "BVA_SANDBOX_PORT", 8080, int))
        if not 0 <= port <= 65535:
            raise ValueError(f"BVA_SANDBOX_PORT {port} is not a TCP port")
        speed = _number(env, "BVA_SANDBOX_SPEED", 1.0, float)
        if not speed > 0:
            raise ValueError("BVA_SANDBOX_SPEED must be above 0")
        track = env.get("BVA_SANDBOX_TRACK", "").strip() or "stable"
        if track not in ("stable", "canary"):
            raise ValueError(f"BVA_SANDBOX_TRACK must be stable or canary, not {track!r}")
        fmt = env.get("BVA_SANDBOX_LOG_FORMAT", "").strip() or "plain"
        if fmt not in ("plain", "json"):
            raise ValueError(f"BVA_SANDBOX_LOG_FORMAT must be plain or json, not {fmt!r}")
        paths = env.get("BVA_SANDBOX_HEALTH_PATHS", "").split(",")
        return cls(
            service=service,
            image=env.get("BVA_SANDBOX_IMAGE", "").strip(),
            pod=env.get("HOSTNAME", "").strip() or socket.gethostname(),
            port=port,
            health_paths=tuple(p.strip() for p in paths if p.strip()),
            speed=speed,
            seed=int(_number(env, "BVA_SANDBOX_SEED", 1, int)),
            track=track,
            log_format="json" if fmt == "json" else "plain",
        )


def _number(
    env: Mapping[str, str], name: str, default: float, kind: Callable[[str], float]
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


class _OnePod:
    """The ClusterView of a service that is this one instance."""

    def __init__(self, pod: PodView) -> None:
        self.pod = pod

    def pods_for_service(self, service: str) -> list[PodView]:
        return [self.pod] if service == self.pod.service else []


class Instance:
    def __init__(
        self,
        config: InstanceConfig,
        *,
        host: str = "0.0.0.0",
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._host = host
        self._out = out if out is not None else sys.stdout
        self._clock = clock
        self._rng = random.Random(f"{config.seed}/endpoints/{config.pod}")
        self.service = SandboxService(
            name=config.service,
            container=config.service,
            port=config.port,
            health_paths=config.health_paths,
            metrics_path=METRICS_PATH,
            log_format=config.log_format,
        )
        pod = PodView(
            name=config.pod,
            service=config.service,
            container=config.service,
            track=config.track,
            image=config.image,
            behaviour=config.behaviour,
            ready=True,
            running=True,
            started_at=clock(),
        )
        self._view = _OnePod(pod)
        self.logs = LogBook(seed=config.seed, clock=clock, speed=config.speed)
        self.traffic = Traffic(
            services=[self.service],
            view=self._view,
            seed=config.seed,
            clock=clock,
            speed=config.speed,
        )
        self.port = config.port
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._printer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def pod(self) -> PodView:
        return self._view.pod

    async def start(self) -> None:
        """Log the start and listen (``port`` is then the bound one); a crashing image never
        opens its port, as a Spring Boot app whose context fails does not."""
        cfg = self.config
        self.logs.container_started(
            cfg.pod,
            cfg.service,
            service=cfg.service,
            fmt=cfg.log_format,
            behaviour=cfg.behaviour,
            image=cfg.image,
            port=cfg.port,
        )
        self._printer = asyncio.create_task(self._print(self.logs.follow(cfg.pod, cfg.service)))
        if cfg.behaviour == "crash":
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A client that gives up cancels its handler: a "hang" instance's waits do not pile up.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.25,
            handler_cancellation=True,
        )
        try:
            await self._runner.setup()
            await web.TCPSite(self._runner, self._host, cfg.port, reuse_address=True).start()
        except BaseException:
            await self._close()
            raise
        self.port = int(self._runner.addresses[0][1])
        self._ticker = asyncio.create_task(self._simulate())

    def stop(self) -> None:
        """SIGTERM: ``wait`` returns after the graceful shutdown."""
        self._stopping.set()

    async def wait(self) -> int:
        """Until ``stop`` (exit code 0) or the crashing image's failed start (1)."""
        cfg = self.config
        if cfg.behaviour == "crash":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CRASH_RUN_S / cfg.speed)
        else:
            await self._stopping.wait()
        code = 0 if self._stopping.is_set() else EXIT_CRASH
        self._view.pod = replace(self.pod, ready=False, running=False)
        self.logs.container_terminated(
            cfg.pod, cfg.service, exit_code=code, reason="Completed" if code == 0 else "Error"
        )
        await self._close()
        return code

    async def _close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.logs.pod_deleted(self.config.pod)  # ends the printer once it has written all
        if self._printer is not None:
            await self._printer

    async def _simulate(self) -> None:
        last = self._clock()
        while True:
            await asyncio.sleep(TICK_S)
            now = self._clock()
            self.traffic.tick(now - last)
            self.logs.tick()
            last = now

    async def _print(self, batches: AsyncIterator[list[str]]) -> None:
        async for batch in batches:
            self._out.write("".join(line + "\n" for line in batch))
            self._out.flush()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        is_health = (
            path == HEALTH_PATH
            or path.startswith(HEALTH_PATH + "/")
            or path in self.service.health_paths
        )
        if (is_health or path == METRICS_PATH) and request.method not in ("GET", "HEAD"):
            return self._error(405, path)
        if path == METRICS_PATH:
            return self._reply(self.traffic.render(self.service.name), PROMETHEUS_TEXT, 200)
        if not is_health:
            return self._error(404, path)
        pod = self.pod
        if pod.behaviour == "hang":
            # Accepted, and nothing comes back: the prober's timeout is what ends it.
            await asyncio.sleep(HANG_S)
        await asyncio.sleep(health_latency(pod.behaviour, self._rng, self.config.speed))
        reply = health_reply(self.service, path, pod)
        if reply is None:
            return self._error(404, path)
        body, content_type = reply
        return self._reply(json.dumps(body), content_type, 200 if body["status"] == "UP" else 503)

    def _error(self, status: int, path: str) -> web.Response:
        body = json.dumps(error_body(status, path, self._clock()))
        return self._reply(body, "application/json", status)

    def _reply(self, text: str, content_type: str, status: int) -> web.Response:
        resp = web.Response(text=text, status=status)
        # Set whole: aiohttp would otherwise append its own charset parameter.
        resp.headers["Content-Type"] = content_type
        resp.headers[POD_HEADER] = self.pod.name
        return resp


async def serve(config: InstanceConfig) -> int:
    instance = Instance(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, instance.stop)
    try:
        await instance.start()
    except OSError as exc:
        print(f"cannot listen on 0.0.0.0:{config.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    return await instance.wait()


def main() -> int:
    try:
        config = InstanceConfig.from_env(os.environ)
    except ValueError as exc:
        print(f"bva sandbox instance: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
