"""What every Kubernetes call of the adapter shares: the lazily loaded client, calls in a
worker thread with errors made one line, the read-only guard, which Deployments and Pods
are the platform's, and list-then-watch. ``KubeAdapter`` (adapter.py) builds the contract
on it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, TypeVar

from backends.errors import BvaError, ReadOnlyError
from backends.kube.client import (
    KubeClient,
    load_client,
    map_error,
    read_json,
)
from backends.kube.convert import (
    pod_from,
    workload_from,
)
from backends.kube.watch import WatchConfig, watch_events
from backends.models import (
    Pod,
    WatchEvent,
    Workload,
)

R = TypeVar("R")
Json = dict[str, Any]

CANARY_SUFFIX = "-canary"


class KubeBase:
    """The plumbing; the Orchestrator contract is in KubeAdapter."""

    def __init__(
        self,
        *,
        namespace: str,
        kubeconfig: str | None = None,
        context: str | None = None,
        read_only: bool = False,
        services: Sequence[tuple[str, str]] = (),
        request_timeout: float = 10.0,
        watch_config: WatchConfig | None = None,
    ) -> None:
        self.namespace = namespace
        self.read_only = read_only
        self.request_timeout = request_timeout
        self._kubeconfig = kubeconfig
        self._context = context
        self._services = tuple((service, deployment) for service, deployment in services)
        self._service_by_deployment = {deployment: service for service, deployment in services}
        self._watch_config = watch_config or WatchConfig()
        self._client: KubeClient | None = None
        # A threading lock, not an asyncio one: the adapter may outlive an event loop (tests).
        self._load_lock = threading.Lock()
        self._watch_stops: set[Callable[[], None]] = set()

    def _load(self) -> KubeClient:
        with self._load_lock:
            if self._client is None:
                self._client = load_client(self._kubeconfig, self._context)
            return self._client

    async def _kube(self) -> KubeClient:
        if self._client is not None:
            return self._client
        return await asyncio.to_thread(self._load)

    async def _call(self, fn: Callable[[KubeClient], R]) -> R:
        """Run a blocking client call in a thread; every failure becomes a BvaError."""
        kube = await self._kube()
        try:
            return await asyncio.to_thread(fn, kube)
        except BvaError:
            raise
        except Exception as exc:
            raise map_error(exc, kube.server) from exc

    @property
    def _timeout(self) -> tuple[float, float]:
        return (min(self.request_timeout, 5.0), self.request_timeout)

    def _raw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self._timeout}

    def _guard(self, action: str) -> None:
        # Synchronous and first: nothing may leave the process for a read-only platform.
        if self.read_only:
            raise ReadOnlyError(f"read-only: refusing to {action} in namespace {self.namespace}")

    def _service_for(self, deployment: str, labels: dict[str, str]) -> str | None:
        """The platform service a Deployment belongs to, None when it is not the platform's."""
        if not self._service_by_deployment:
            return labels.get("app") or deployment.removesuffix(CANARY_SUFFIX)
        if deployment in self._service_by_deployment:
            return self._service_by_deployment[deployment]
        if deployment.endswith(CANARY_SUFFIX):
            return self._service_by_deployment.get(deployment.removesuffix(CANARY_SUFFIX))
        return None

    def _workload(self, deployment: Json) -> Workload | None:
        meta = deployment.get("metadata") or {}
        name = str(meta.get("name", ""))
        service = self._service_for(name, meta.get("labels") or {})
        return None if service is None else workload_from(deployment, service)

    def _any_workload(self, deployment: Json) -> Workload:
        """Like _workload, for a Deployment asked for by name even if not the platform's."""
        meta = deployment.get("metadata") or {}
        name = str(meta.get("name", ""))
        labels = meta.get("labels") or {}
        service = (
            self._service_for(name, labels) or labels.get("app") or name.removesuffix(CANARY_SUFFIX)
        )
        return workload_from(deployment, service)

    def _order(self, workload: Workload) -> tuple[int, str, int]:
        services = [service for service, _ in self._services]
        rank = services.index(workload.service) if workload.service in services else len(services)
        return (rank, workload.name, workload.track == "canary")

    def _pod(self, pod: Json, service: str | None) -> Pod | None:
        converted = pod_from(pod)
        if service is None and self._services:
            known = {s for s, _ in self._services}
            if converted.service not in known:
                return None
        return converted

    def _pod_selector(self, service: str | None) -> str | None:
        return f"app={service}" if service else None

    async def _get_deployment(self, deployment: str) -> Json:
        def get(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.apps.read_namespaced_deployment(deployment, self.namespace, **self._raw())
                )
            )

        return await self._call(get)

    async def _list_replicasets(self) -> list[Json]:
        def list_(kube: KubeClient) -> list[Json]:
            data = read_json(kube.apps.list_namespaced_replica_set(self.namespace, **self._raw()))
            return list(data.get("items") or [])

        return await self._call(list_)

    async def _watch(
        self,
        name: str,
        list_call: Callable[[KubeClient, dict[str, Any]], Any],
        convert: Callable[[Json], Any],
        resource_version: str | None,
    ) -> AsyncGenerator[WatchEvent[Any], None]:
        kube = await self._kube()
        server_timeout = self._watch_config.server_timeout_s

        def list_fn() -> tuple[list[Json], str]:
            data = read_json(list_call(kube, self._raw()))
            rv = str((data.get("metadata") or {}).get("resourceVersion") or "")
            return list(data.get("items") or []), rv

        def open_fn(rv: str, timeout_s: int) -> Any:
            return list_call(
                kube,
                {
                    "watch": True,
                    "resource_version": rv,
                    "allow_watch_bookmarks": True,
                    "timeout_seconds": timeout_s,
                    "_preload_content": False,
                    # The server ends the stream after timeout_s; a silent socket past that
                    # (plus slack) means the connection is dead.
                    "_request_timeout": (self._timeout[0], server_timeout + 30),
                },
            )

        stream = watch_events(
            name=name,
            server=kube.server,
            list_fn=list_fn,
            open_fn=open_fn,
            convert=convert,
            config=self._watch_config,
            registry=self._watch_stops,
            resume_from=resource_version,
        )
        # aclosing: closing this generator must close the inner one (and stop its thread) now,
        # not whenever the garbage collector finalises it.
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                yield event

    async def _patch(self, deployment: str, body: Any, content_type: str) -> Json:
        def patch(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.apps.patch_namespaced_deployment(
                        deployment,
                        self.namespace,
                        body,
                        _content_type=content_type,
                        **self._raw(),
                    )
                )
            )

        return await self._call(patch)
