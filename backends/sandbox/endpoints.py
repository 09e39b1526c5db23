"""Each simulated service's own HTTP port: Actuator health, Prometheus metrics, 404s.

A request is answered "by" one pod, as through a Kubernetes Service: round-robin over the
ready pods, or the pod named in the ``X-Sandbox-Pod`` request header (like a port-forward to
one pod). Responses name the answering pod in the same header.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from backends.sandbox.traffic import Traffic
from backends.sandbox.view import Behaviour, ClusterView, PodView, SandboxService

HANG_S = 3600.0  # the "hang" image's health endpoints answer after this long
POD_HEADER = "X-Sandbox-Pod"
ACTUATOR_JSON = "application/vnd.spring-boot.actuator.v3+json"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
HEALTH_PATH = "/actuator/health"

_DISK_TOTAL = 107_374_182_400  # a 100 GiB node volume
_DISK_THRESHOLD = 10_485_760
_DB_DOWN_ERROR = (
    "org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC "
    "Connection; HikariPool-1 - Connection is not available, request timed out after 30000ms."
)
_REASONS = {404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

Health = dict[str, Any]


def _spring_time(ts: float) -> str:
    """Jackson's rendering of java.util.Date in Spring's error body."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"


def _disk(pod: str, up: bool) -> Health:
    # Free space is stable per pod so repeated reads agree.
    free = _DISK_TOTAL // 4 + zlib.crc32(pod.encode()) % (_DISK_TOTAL // 2)
    return {
        "status": "UP" if up else "DOWN",
        "details": {
            "total": _DISK_TOTAL,
            "free": free if up else 0,
            "threshold": _DISK_THRESHOLD,
            "path": "/app/.",
            "exists": up,
        },
    }


def pod_health(pod: PodView) -> Health:
    """What Actuator reports for one running pod of the given behaviour."""
    if pod.behaviour == "unhealthy":
        db: Health = {"status": "DOWN", "details": {"error": _DB_DOWN_ERROR}}
        status = "DOWN"
    else:
        db = {"status": "UP", "details": {"database": "PostgreSQL", "validationQuery": "isValid()"}}
        status = "UP"
    return {
        "status": status,
        "components": {"db": db, "diskSpace": _disk(pod.name, True), "ping": {"status": "UP"}},
    }


def no_pod_health(service: str) -> Health:
    """No pod could answer: every component is reported DOWN with the reason."""
    error = f"no ready pod behind service {service}"
    return {
        "status": "DOWN",
        "components": {
            "db": {"status": "DOWN", "details": {"error": error}},
            "diskSpace": _disk(service, False),
            "ping": {"status": "DOWN", "details": {"error": error}},
        },
    }


def health_reply(
    service: SandboxService, path: str, pod: PodView | None
) -> tuple[Health, str] | None:
    """Actuator's answer on one of the service's health paths as ``pod`` (None: no pod could
    answer): the body and its content type, or None for an unknown component. The status code
    follows the body: 200 when it says UP, else 503."""
    body = no_pod_health(service.name) if pod is None else pod_health(pod)
    if path == HEALTH_PATH:
        return body, ACTUATOR_JSON
    if path in service.health_paths:
        return {"status": body["status"], "service": service.name}, "application/json"
    component = path[len(HEALTH_PATH) + 1 :]
    if component in ("liveness", "readiness"):
        # Kubernetes probe groups: an app that is merely unhealthy still accepts traffic.
        up = pod is not None and (component == "liveness" or pod.ready)
        state = "UP" if up else ("OUT_OF_SERVICE" if pod is not None else "DOWN")
        return {"status": state}, ACTUATOR_JSON
    part = body["components"].get(component)
    if part is None:
        return None
    return part, ACTUATOR_JSON


def health_latency(behaviour: Behaviour, rng: random.Random, speed: float) -> float:
    """How long a pod of ``behaviour`` takes to answer a health request (not counting "hang")."""
    if behaviour == "unhealthy":
        return rng.uniform(0.3, 0.9) / speed
    return rng.uniform(0.002, 0.006) / speed


def error_body(status: int, path: str, ts: float, *, message: str | None = None) -> Health:
    """Spring Boot's default error body at clock time ``ts``."""
    body: Health = {
        "timestamp": _spring_time(ts),
        "status": status,
        "error": _REASONS.get(status, "Error"),
        "path": path,
    }
    if message:
        body["message"] = message
    return body


class _Site:
    __slots__ = ("next", "runner", "service")

    def __init__(self, service: SandboxService, runner: web.AppRunner) -> None:
        self.service = service
        self.runner = runner
        self.next = 0


class ServiceEndpoints:
    def __init__(
        self,
        *,
        services: Sequence[SandboxService],
        view: ClusterView,
        traffic: Traffic,
        host: str = "127.0.0.1",
        clock: Callable[[], float] = time.time,
        speed: float = 1.0,
        seed: int = 0,
    ) -> None:
        self._services = list(services)
        self._view = view
        self._traffic = traffic
        self._host = host
        self._clock = clock
        self._speed = speed if speed > 0 else 1.0
        self._rng = random.Random(f"{seed}/endpoints")
        self._sites: list[_Site] = []
        self.urls: dict[str, str] = {}

    async def start(self) -> dict[str, str]:
        """One server per service on a free port; returns ``{service: base URL}``."""
        try:
            for service in self._services:
                self.urls[service.name] = await self._start_one(service)
        except BaseException:
            await self.stop()
            raise
        return dict(self.urls)

    async def _start_one(self, service: SandboxService) -> str:
        app = web.Application()
        # A client that gives up cancels its handler: a "hang" pod's waits do not pile up.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            handler_cancellation=True,
        )
        site = _Site(service, runner)
        app.router.add_route("*", "/{tail:.*}", self._handler(site))
        await runner.setup()
        self._sites.append(site)
        tcp = web.TCPSite(runner, self._host, 0)
        await tcp.start()
        port = runner.addresses[0][1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        sites, self._sites = self._sites, []
        self.urls = {}
        await asyncio.gather(*(s.runner.cleanup() for s in sites), return_exceptions=True)

    def _handler(self, site: _Site) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(site, request)

        return handle

    # --- routing ------------------------------------------------------------------------------

    def _pick(self, site: _Site, request: web.Request) -> tuple[PodView | None, str | None]:
        """The answering pod, or None; plus an error text when the named pod is not ours."""
        pods = self._view.pods_for_service(site.service.name)
        wanted = request.headers.get(POD_HEADER)
        if wanted:
            for pod in pods:
                if pod.name == wanted:
                    return (pod if pod.running else None), None
            return None, f"pod {wanted} is not a pod of service {site.service.name}"
        ready = [p for p in pods if p.ready and p.running]
        if not ready:
            return None, None
        pod = ready[site.next % len(ready)]
        site.next += 1
        return pod, None

    async def _handle(self, site: _Site, request: web.Request) -> web.StreamResponse:
        service = site.service
        path = request.path
        pod, foreign = self._pick(site, request)
        if foreign is not None:
            return self._error(404, path, None, message=foreign)
        is_health = path == HEALTH_PATH or path.startswith(HEALTH_PATH + "/")
        known = is_health or path in service.health_paths or path == service.metrics_path
        if known and request.method not in ("GET", "HEAD"):
            return self._error(405, path, pod)
        if path == service.metrics_path:
            targeted = bool(request.headers.get(POD_HEADER))
            if targeted and pod is None:
                return self._error(503, path, None)
            # Prometheus scrapes pods directly, not through the Service, so without a named
            # pod every pod of the service is exposed, labelled by pod, even if none is ready.
            only = pod.name if targeted and pod is not None else None
            text = self._traffic.render(service.name, pod=only)
            return self._respond(web.Response(text=text), PROMETHEUS_TEXT, pod)
        if is_health or path in service.health_paths:
            return await self._health(service, path, pod)
        if pod is None:
            return self._error(503, path, None)
        return self._error(404, path, pod)

    async def _health(
        self, service: SandboxService, path: str, pod: PodView | None
    ) -> web.Response:
        if pod is not None:
            if pod.behaviour == "hang":
                # A wedged app: the connection is accepted and nothing ever comes back (until
                # the client gives up), so a prober's timeout is what bounds it.
                await asyncio.sleep(HANG_S)
            await asyncio.sleep(health_latency(pod.behaviour, self._rng, self._speed))
        reply = health_reply(service, path, pod)
        if reply is None:
            return self._error(404, path, pod)
        return self._json(reply[0], reply[1], pod)

    # --- responses ----------------------------------------------------------------------------

    def _json(self, body: Health, content_type: str, pod: PodView | None) -> web.Response:
        up = body.get("status") == "UP"
        resp = web.Response(text=json.dumps(body), status=200 if up else 503)
        return self._respond(resp, content_type, pod)

    def _error(
        self, status: int, path: str, pod: PodView | None, *, message: str | None = None
    ) -> web.Response:
        """Spring Boot's default error body; ``message`` only for the sandbox's routing errors."""
        body = error_body(status, path, self._clock(), message=message)
        resp = web.Response(text=json.dumps(body), status=status)
        return self._respond(resp, "application/json", pod)

    @staticmethod
    def _respond(resp: web.Response, content_type: str, pod: PodView | None) -> web.Response:
        # Set the header whole: aiohttp would otherwise append its own charset parameter.
        resp.headers["Content-Type"] = content_type
        if pod is not None:
            resp.headers[POD_HEADER] = pod.name
        return resp
