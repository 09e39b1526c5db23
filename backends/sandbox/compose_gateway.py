"""The compose sandbox's service addresses: one HTTP endpoint per service on 127.0.0.1 that
does what the platform's gateway (and a Kubernetes Service) does for its callers.

A request goes to one of the service's ready containers, round robin, stable and canary alike
(so a canary's share of the traffic is its share of the replicas, as on Kubernetes).
``/actuator/prometheus`` answers with every running container's metrics at once, each
series labelled with the container's name and track as a scraper's service discovery would
label them: what bva's gates read. The containers are found on the Engine by the project's
labels, again every half second.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

# Compose's own labels: the world knows them as compose writes them, not through bva.
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CANARY_SUFFIX = "-canary"
REFRESH_S = 0.5
METRICS_PATH = "/actuator/prometheus"
_LABEL = re.compile(r'(pod|track)="[^"]*"')


@dataclass(frozen=True)
class Backend:
    name: str
    track: str
    url: str  # http://127.0.0.1:<published port>
    ready: bool


def backends_from(
    rows: list[dict[str, Any]], project: str, service: str, port: int
) -> list[Backend]:
    """The running containers of ``service`` (stable or canary) from ``GET /containers/json``."""
    out = []
    for row in rows:
        labels = row.get("Labels") or {}
        if labels.get(PROJECT) != project or labels.get(ONEOFF) == "True":
            continue
        compose = labels.get(SERVICE, "")
        if compose not in (service, service + CANARY_SUFFIX) or row.get("State") != "running":
            continue
        published = next(
            (
                p
                for p in row.get("Ports") or []
                if p.get("PrivatePort") == port and p.get("PublicPort")
            ),
            None,
        )
        if published is None:
            continue
        status = str(row.get("Status") or "")
        ready = "(health: starting)" not in status and "(unhealthy)" not in status
        name = str((row.get("Names") or ["?"])[0]).lstrip("/")
        out.append(
            Backend(
                name,
                "canary" if compose.endswith(CANARY_SUFFIX) else "stable",
                f"http://127.0.0.1:{published['PublicPort']}",
                ready,
            )
        )
    return sorted(out, key=lambda b: b.name)


class ServiceGateway:
    def __init__(self, engine_host: str, project: str, service: str, port: int) -> None:
        self._host = engine_host
        self._project = project
        self.service = service
        self._port = port
        self.backends: list[Backend] = []
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._api: Any = None
        self.url = ""

    @property
    def ready(self) -> int:
        return sum(1 for b in self.backends if b.ready)

    async def start(self) -> str:
        import docker

        self._api = docker.APIClient(base_url=self._host, timeout=10)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5,
            handler_cancellation=True,
        )  # fmt: skip
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        await self._refresh()
        self._task = asyncio.create_task(self._keep_fresh())
        return self.url

    async def _refresh(self) -> None:
        flt = {"label": [f"{PROJECT}={self._project}"]}
        try:
            rows = await asyncio.to_thread(self._api.containers, filters=flt)
        except Exception:
            return  # the Engine is away: keep the last list (callers see failed requests)
        self.backends = backends_from(rows, self._project, self.service, self._port)

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            await self._refresh()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        if request.path == METRICS_PATH:
            return await self._metrics()
        ready = [b for b in self.backends if b.ready] or []
        if not ready:
            return web.json_response(
                {"status": "DOWN", "error": f"no ready instance of {self.service}"}, status=503
            )
        backend = ready[next(self._turn) % len(ready)]
        try:
            async with self._session.request(
                request.method, backend.url + request.path_qs, data=await request.read()
            ) as resp:
                body = await resp.read()
                headers = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type",)}
                return web.Response(body=body, status=resp.status, headers=headers)
        except (aiohttp.ClientError, TimeoutError):
            return web.json_response(
                {"status": "DOWN", "error": f"{backend.name} did not answer"}, status=502
            )

    async def _metrics(self) -> web.Response:
        session = self._session
        assert session is not None

        async def one(b: Backend) -> str:
            try:
                async with session.get(
                    b.url + METRICS_PATH, timeout=aiohttp.ClientTimeout(total=5)
                ) as resp:
                    text = await resp.text()
            except (aiohttp.ClientError, TimeoutError):
                return ""
            return _relabel(text, b.name, b.track)

        parts = await asyncio.gather(*(one(b) for b in self.backends))
        return web.Response(text=_merge(parts), content_type="text/plain", charset="utf-8")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self._api is not None:
            self._api.close()


def _relabel(text: str, pod: str, track: str) -> str:
    """The container's own name and track on each series, as service discovery labels them
    (a canary is a copy of a stable container: what it says of itself is not to be trusted)."""

    def swap(m: re.Match[str]) -> str:
        return f'{m.group(1)}="{pod if m.group(1) == "pod" else track}"'

    return "\n".join(
        _LABEL.sub(swap, line) if not line.startswith("#") else line for line in text.splitlines()
    )


def _merge(parts: list[str]) -> str:
    """Several exposition texts as one: each family's HELP and TYPE once, then all of its
    samples together (the text format wants a family's samples in one group)."""
    heads: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for part in parts:
        family = ""
        for line in part.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                family = line[7:].split(" ", 1)[0]
                head = heads.setdefault(family, [])
                samples.setdefault(family, [])
                if not any(h[:7] == line[:7] for h in head):
                    head.append(line)
            elif line and not line.startswith("#"):
                samples.setdefault(family, []).append(line)
                heads.setdefault(family, [])
    out = [line for family in heads for line in (*heads[family], *samples[family])]
    return "\n".join(out) + "\n"
