"""The Kubernetes adapter: async methods over the blocking ``kubernetes`` client.

Every call runs the client in a worker thread and asks for raw JSON
(``_preload_content=False``), which we convert to models ourselves. The ``kubernetes``
package is imported on the first call, never at construction, so a TUI paints its first
frame without paying for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from backends.errors import BvaError, NotFound, ReadOnlyError
from backends.kube import rollout_rules
from backends.kube.client import (
    JSON_PATCH,
    MERGE,
    STRATEGIC_MERGE,
    KubeClient,
    load_client,
    map_error,
    read_json,
)
from backends.kube.convert import (
    container_images,
    event_from,
    pod_from,
    revision_from,
    workload_from,
)
from backends.kube.log_stream import LogReader
from backends.kube.release_objects import (
    LEASE_NAME,
    canary_from,
    canary_manifest,
    lease_body,
    lock_from,
)
from backends.kube.watch import WatchConfig, watch_events
from backends.logs.inbox import Inbox, StreamRequest
from backends.logs.parse import Joiner
from backends.models import (
    Canary,
    KubeEvent,
    LockRecord,
    Pod,
    Revision,
    RolloutStatus,
    WatchEvent,
    Workload,
)

R = TypeVar("R")
Json = dict[str, Any]

CANARY_SUFFIX = "-canary"


class KubeAdapter:
    """The platform's Deployments, Pods, ReplicaSets and Events in one namespace."""

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

    @property
    def kind(self) -> str:
        return "kubernetes"

    @property
    def target(self) -> str:
        context = f" (context {self._context})" if self._context else ""
        return f"namespace {self.namespace}{context}"

    def connection(self) -> dict[str, Any]:
        """How to build this adapter again in another process (JSON; the kubeconfig by path,
        so no credential is copied): ``KubeAdapter(**connection)``."""
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "kubeconfig": self._kubeconfig,
            "context": self._context,
            "read_only": self.read_only,
            "services": [list(pair) for pair in self._services],
            "request_timeout": self.request_timeout,
        }

    # -- plumbing ------------------------------------------------------------------------

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

    # -- reads ---------------------------------------------------------------------------

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

    async def list_workloads(self) -> list[Workload]:
        """The services' Deployments and their ``-canary`` companions, in platform order."""

        def list_(kube: KubeClient) -> list[Json]:
            data = read_json(kube.apps.list_namespaced_deployment(self.namespace, **self._raw()))
            return list(data.get("items") or [])

        items = await self._call(list_)
        workloads = [w for w in map(self._workload, items) if w is not None]
        return sorted(workloads, key=self._order)

    async def get_workload(self, deployment: str) -> Workload:
        return self._any_workload(await self._get_deployment(deployment))

    async def list_instances(self, service: str | None = None) -> list[Pod]:
        selector = self._pod_selector(service)

        def list_(kube: KubeClient) -> list[Json]:
            data = read_json(
                kube.core.list_namespaced_pod(
                    self.namespace, label_selector=selector, **self._raw()
                )
            )
            return list(data.get("items") or [])

        items = await self._call(list_)
        pods = [p for p in (self._pod(item, service) for item in items) if p is not None]
        return sorted(pods, key=lambda p: (p.service, p.name))

    async def rollout_status(self, deployment: str) -> RolloutStatus:
        return rollout_rules.rollout_status(await self._get_deployment(deployment))

    async def history(self, deployment: str) -> list[Revision]:
        """``kubectl rollout history``: the ReplicaSets the Deployment controls, by revision."""
        dep, replicasets = await asyncio.gather(
            self._get_deployment(deployment), self._list_replicasets()
        )
        owned = rollout_rules.owned_replicasets(dep, replicasets)
        current = _new_replicaset(dep, owned)
        revisions = [revision_from(rs, is_current=rs is current) for rs in owned]
        return sorted(revisions, key=lambda r: (r.revision, r.replicaset))

    async def events(self, kind: str, name: str, limit: int = 50) -> list[KubeEvent]:
        """The object's events, oldest first, keeping the newest ``limit``."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"

        def list_(kube: KubeClient) -> list[Json]:
            data = read_json(
                kube.core.list_namespaced_event(
                    self.namespace, field_selector=selector, **self._raw()
                )
            )
            return list(data.get("items") or [])

        events = [event_from(item) for item in await self._call(list_)]
        events.sort(key=lambda e: e.last_timestamp or 0.0)
        return events[-limit:] if limit > 0 else []

    # -- watches -------------------------------------------------------------------------

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

    def watch_workloads(
        self, *, resource_version: str | None = None
    ) -> AsyncGenerator[WatchEvent[Workload], None]:
        """Deployment changes; starts with a RESYNC holding the current list.

        With ``resource_version`` (a list's or a model's), it resumes from there instead of
        listing; a version the server has compacted away is answered by a RESYNC.
        """
        return self._watch(
            "deployments",
            lambda kube, kw: kube.apps.list_namespaced_deployment(self.namespace, **kw),
            self._workload,
            resource_version,
        )

    def watch_instances(
        self, service: str | None = None, *, resource_version: str | None = None
    ) -> AsyncGenerator[WatchEvent[Pod], None]:
        """Pod changes (of one service, or all platform services); as watch_workloads."""
        selector = self._pod_selector(service)
        return self._watch(
            f"pods-{service or 'all'}",
            lambda kube, kw: kube.core.list_namespaced_pod(
                self.namespace, label_selector=selector, **kw
            ),
            lambda pod: self._pod(pod, service),
            resource_version,
        )

    # -- mutations -----------------------------------------------------------------------

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

    async def set_image(
        self, deployment: str, container: str, image: str, change_cause: str | None = None
    ) -> Workload:
        """``kubectl set image`` (strategic merge patch), optionally recording a change-cause."""
        self._guard(f"set the image of deployment/{deployment}")
        current = await self._get_deployment(deployment)
        containers = (((current.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        if not any(c.get("name") == container for c in containers):
            # kubectl's wording; without this check the patch would add a container.
            raise BvaError(f'unable to find container named "{container}"')
        body: Json = {
            "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
        }
        if change_cause is not None:
            body["metadata"] = {
                "annotations": {rollout_rules.CHANGE_CAUSE_ANNOTATION: change_cause}
            }
        return self._any_workload(await self._patch(deployment, body, STRATEGIC_MERGE))

    async def pause(self, deployment: str) -> None:
        self._guard(f"pause deployment/{deployment}")
        await self._patch(deployment, {"spec": {"paused": True}}, STRATEGIC_MERGE)

    async def resume(self, deployment: str) -> None:
        self._guard(f"resume deployment/{deployment}")
        await self._patch(deployment, {"spec": {"paused": None}}, STRATEGIC_MERGE)

    async def scale(self, deployment: str, replicas: int) -> None:
        self._guard(f"scale deployment/{deployment}")
        if replicas < 0:
            raise BvaError(f"replicas must be 0 or more, not {replicas}")

        def patch(kube: KubeClient) -> None:
            read_json(
                kube.apps.patch_namespaced_deployment_scale(
                    deployment,
                    self.namespace,
                    {"spec": {"replicas": replicas}},
                    _content_type=MERGE,
                    **self._raw(),
                )
            )

        await self._call(patch)

    async def undo(self, deployment: str, to_revision: int | None = None) -> str:
        """``kubectl rollout undo``; returns kubectl's message (rolled back / skipped)."""
        self._guard(f"roll back deployment/{deployment}")
        dep, replicasets = await asyncio.gather(
            self._get_deployment(deployment), self._list_replicasets()
        )
        target, message = rollout_rules.undo_target(dep, replicasets, to_revision)
        if target is None:
            return message
        await self._patch(deployment, rollout_rules.undo_patch(dep, target), JSON_PATCH)
        return message

    async def current_revision(self, deployment: str) -> Revision | None:
        """The history entry running the Deployment's template, or one made from the
        Deployment itself (a paused Deployment whose new template has no ReplicaSet yet)."""
        try:
            dep = await self._get_deployment(deployment)
        except NotFound:
            return None
        current = next((r for r in await self.history(deployment) if r.is_current), None)
        if current is not None:
            return current
        meta = dep.get("metadata") or {}
        template = (dep.get("spec") or {}).get("template") or {}
        return Revision(
            revision=rollout_rules.revision_of(dep) or 0,
            replicaset="",
            images=container_images(template.get("spec")),
            change_cause=(meta.get("annotations") or {}).get(rollout_rules.CHANGE_CAUSE_ANNOTATION),
            created=None,
            is_current=True,
            template=dict(template),
        )

    # -- canaries: the release's state in their annotations --------------------------------

    async def canaries(self, services: Sequence[tuple[str, str]]) -> dict[str, Canary]:
        found = {}
        for service, deployment in services:
            try:
                dep = await self._get_deployment(deployment + CANARY_SUFFIX)
            except NotFound:
                continue
            found[service] = canary_from(dep, service)
        return found

    async def create_canary(
        self, service: str, stable: str, *, container: str, image: str, replicas: int,
        marks: dict[str, str],
    ) -> Canary:  # fmt: skip
        name = stable + CANARY_SUFFIX
        self._guard(f"create deployment/{name}")
        body = canary_manifest(
            await self._get_deployment(stable), name, service, container, image, replicas, marks
        )

        def create(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.apps.create_namespaced_deployment(self.namespace, body, **self._raw())
                )
            )

        return canary_from(await self._call(create), service)

    async def scale_canary(self, canary: str, replicas: int) -> None:
        await self.scale(canary, replicas)

    async def mark_canary(self, canary: str, marks: dict[str, str]) -> None:
        self._guard(f"annotate deployment/{canary}")
        await self._patch(canary, {"metadata": {"annotations": marks}}, MERGE)

    async def remove_canary(self, canary: str) -> None:
        self._guard(f"delete deployment/{canary}")

        def delete(kube: KubeClient) -> None:
            read_json(
                kube.apps.delete_namespaced_deployment(
                    canary, self.namespace, propagation_policy="Background", **self._raw()
                )
            )

        try:
            await self._call(delete)
        except NotFound:
            return

    # -- the release lock: a Lease -----------------------------------------------------------

    async def read_lock(self) -> LockRecord | None:
        def get(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.coordination.read_namespaced_lease(
                        LEASE_NAME, self.namespace, **self._raw()
                    )
                )
            )

        try:
            return lock_from(await self._call(get))
        except NotFound:
            return None

    async def create_lock(self, record: LockRecord) -> LockRecord:
        self._guard("take the release lock")
        body = lease_body(replace(record, version=""))

        def create(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.coordination.create_namespaced_lease(self.namespace, body, **self._raw())
                )
            )

        return lock_from(await self._call(create))

    async def replace_lock(self, record: LockRecord) -> LockRecord:
        """PUT with the record's resourceVersion: a Conflict means someone else got there."""
        self._guard("update the release lock")
        body = lease_body(record)

        def put(kube: KubeClient) -> Json:
            return dict(
                read_json(
                    kube.coordination.replace_namespaced_lease(
                        LEASE_NAME, self.namespace, body, **self._raw()
                    )
                )
            )

        return lock_from(await self._call(put))

    async def delete_lock(self) -> None:
        self._guard("release the release lock")

        def delete(kube: KubeClient) -> None:
            read_json(
                kube.coordination.delete_namespaced_lease(LEASE_NAME, self.namespace, **self._raw())
            )

        try:
            await self._call(delete)
        except NotFound:
            return

    # -- logs ------------------------------------------------------------------------------

    async def prepare_logs(self) -> None:
        await self._kube()

    def open_log_reader(
        self, sid: int, request: StreamRequest, inbox: Inbox, joiner: Joiner,
        parse_lock: threading.Lock, *, shed_after: float | None = None,
    ) -> LogReader:  # fmt: skip
        if self._client is None:
            raise BvaError("log readers need prepare_logs() first")
        return LogReader(
            sid,
            self._client,
            replace(request, namespace=self.namespace),
            inbox,
            joiner,
            parse_lock,
            shed_after=shed_after,
        )

    async def close(self) -> None:
        for stop in list(self._watch_stops):
            stop()
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)


def _new_replicaset(deployment: Json, owned: Sequence[Mapping[str, Any]]) -> object | None:
    """deploymentutil.FindNewReplicaSet: the oldest ReplicaSet with the Deployment's template."""
    template = (deployment.get("spec") or {}).get("template") or {}

    def age_key(rs: Mapping[str, Any]) -> tuple[str, str]:
        meta = rs.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    for rs in sorted(owned, key=age_key):
        if rollout_rules.equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None
