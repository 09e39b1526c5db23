"""The Kubernetes adapter: async methods over the blocking ``kubernetes`` client.

Every call runs the client in a worker thread and asks for raw JSON
(``_preload_content=False``), which we convert to models ourselves. The ``kubernetes``
package is imported on the first call, never at construction, so a TUI paints its first
frame without paying for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from backends.errors import BvaError, NotFound
from backends.kube import rollout_rules
from backends.kube.base import CANARY_SUFFIX, Json, KubeBase
from backends.kube.client import (
    JSON_PATCH,
    MERGE,
    STRATEGIC_MERGE,
    KubeClient,
    read_json,
)
from backends.kube.config_reads import ConfigReads
from backends.kube.convert import (
    container_images,
    event_from,
    revision_from,
)
from backends.kube.log_stream import LogReader
from backends.kube.release_objects import (
    LEASE_NAME,
    canary_from,
    canary_manifest,
    lease_body,
    lock_from,
)
from backends.kube.signoff_store import SignoffLease
from backends.logs.inbox import Inbox, StreamRequest
from backends.logs.join import Joiner
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


class KubeAdapter(SignoffLease, ConfigReads, KubeBase):
    """The platform's Deployments, Pods, ReplicaSets and Events in one namespace."""

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

    # -- reads ---------------------------------------------------------------------------

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
