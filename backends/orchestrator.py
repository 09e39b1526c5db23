"""The orchestrator contract: what bva needs from whatever runs the platform's services.

Kubernetes implements it (``backends.kube.adapter.KubeAdapter``); a Docker Compose adapter is
the second. The release driver, release control, the rollback engine, the health monitor and
the log source use only this contract, and only bva's own models cross it (backends/models.py,
backends/logs/inbox.py): no SDK type, no API JSON. A screen never knows which one it has.

Vocabulary: a *workload* is a service's set of instances (a Deployment, or a compose
service's containers) on the stable or canary track; an *instance* is one pod or container
(the ``Pod`` model); a *revision* is one entry of the workload's history. Names are the
workload's own (the Deployment's name on Kubernetes).

Every method that changes something refuses on a read-only platform before a request leaves
the process (``ReadOnlyError``); failures are ``BvaError``s with one line a human can act on.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Protocol

from backends.checklist.models import SignoffRecord
from backends.errors import BvaError
from backends.logs.inbox import Inbox, LogReaderHandle, StreamRequest
from backends.logs.join import Joiner
from backends.models import (
    Autoscaler,
    Canary,
    EnvRef,
    KubeEvent,
    LockRecord,
    Pod,
    Revision,
    RolloutStatus,
    WatchEvent,
    Workload,
)

__all__ = ["LockStore", "Orchestrator", "reconnect"]


class LockStore(Protocol):
    """Where the release lock lives, with compare-and-swap: a second driver anywhere is
    refused, and a driver that stopped renewing can be taken over."""

    async def read_lock(self) -> LockRecord | None: ...

    async def create_lock(self, record: LockRecord) -> LockRecord:
        """Raises ``Conflict`` when a lock exists already."""
        ...

    async def replace_lock(self, record: LockRecord) -> LockRecord:
        """Replace the lock whose version is ``record.version``; ``Conflict`` if it moved."""
        ...

    async def delete_lock(self) -> None: ...

    # The checklist's sign-offs live beside the lock, with the same compare-and-swap.
    async def read_signoffs(self) -> SignoffRecord | None: ...

    async def write_signoffs(self, record: SignoffRecord) -> SignoffRecord:
        """Create (``record.version == ""``) or replace; ``Conflict`` if it moved."""
        ...


class Orchestrator(LockStore, Protocol):
    @property
    def kind(self) -> str:
        """ "kubernetes" or "compose": for headers and messages, never for branching."""
        ...

    @property
    def target(self) -> str:
        """Where it is connected, in the words its users know (context/namespace, host)."""
        ...

    @property
    def read_only(self) -> bool: ...

    def connection(self) -> dict[str, Any]:
        """How to connect again from another process (plain JSON, no credential in it):
        ``reconnect(connection)`` builds the same orchestrator there."""
        ...

    # -- reading ----------------------------------------------------------------------------
    async def list_workloads(self) -> list[Workload]: ...

    async def get_workload(self, name: str) -> Workload:
        """Raises ``NotFound`` when it does not exist."""
        ...

    def watch_workloads(self) -> AsyncGenerator[WatchEvent[Workload], None]:
        """RESYNC first, then changes; reconnects with backoff, relists after a gap."""
        ...

    async def list_instances(self, service: str | None = None) -> list[Pod]: ...

    def watch_instances(
        self, service: str | None = None
    ) -> AsyncGenerator[WatchEvent[Pod], None]: ...

    async def events(self, kind: str, name: str, limit: int = 50) -> list[KubeEvent]:
        """Recent events of one object ("Deployment"/"Pod" and its name), newest last."""
        ...

    async def rollout_status(self, name: str) -> RolloutStatus: ...

    async def history(self, name: str) -> list[Revision]: ...

    async def current_revision(self, name: str) -> Revision | None:
        """What the workload runs now, as a revision (template included), even when no
        history entry carries it yet; None when the workload does not exist."""
        ...

    # -- configuration the pre-deploy checklist reads ------------------------------------------
    async def list_autoscalers(self) -> list[Autoscaler]:
        """The autoscalers of the namespace (HorizontalPodAutoscalers); [] where the
        orchestrator has none."""
        ...

    async def workload_env(self, name: str) -> list[EnvRef]:
        """The environment the workload's containers get, by name and source, never a value;
        raises ``NotFound`` when the workload does not exist."""
        ...

    async def secret_keys(self, name: str) -> frozenset[str] | None:
        """The keys of a Secret, never its values; None when it does not exist."""
        ...

    async def config_map_keys(self, name: str) -> frozenset[str] | None:
        """The keys of a ConfigMap; None when it does not exist."""
        ...

    # -- changing ---------------------------------------------------------------------------
    async def set_image(
        self, name: str, container: str, image: str, change_cause: str | None = None
    ) -> Workload: ...

    async def scale(self, name: str, replicas: int) -> None: ...

    async def pause(self, name: str) -> None: ...

    async def resume(self, name: str) -> None: ...

    async def undo(self, name: str, to_revision: int | None = None) -> str:
        """Back to the previous (or the named) revision; returns what happened, in kubectl's
        words (rolled back / skipped rollback)."""
        ...

    # -- canaries and the release state -----------------------------------------------------
    async def canaries(self, services: Sequence[tuple[str, str]]) -> dict[str, Canary]:
        """service -> its canary, for the (service, workload) pairs that have one."""
        ...

    async def create_canary(
        self,
        service: str,
        stable: str,
        *,
        container: str,
        image: str,
        replicas: int,
        marks: dict[str, str],
    ) -> Canary:
        """A canary beside ``stable``: the same template with ``image`` in ``container``,
        selected by the same service, carrying ``marks``."""
        ...

    async def scale_canary(self, canary: str, replicas: int) -> None: ...

    async def mark_canary(self, canary: str, marks: dict[str, str]) -> None:
        """Merge ``marks`` into the canary's release state."""
        ...

    async def remove_canary(self, canary: str) -> None:
        """Gone at once (traffic back on stable); a canary already gone is not an error."""
        ...

    # -- logs and lifetime ------------------------------------------------------------------
    def open_log_reader(
        self,
        sid: int,
        request: StreamRequest,
        inbox: Inbox,
        joiner: Joiner,
        parse_lock: threading.Lock,
        *,
        shed_after: float | None = None,
    ) -> LogReaderHandle:
        """A reader (not started) of one instance's container log into ``inbox``. Called on
        the event loop after ``prepare_logs``; the reader runs on its own thread."""
        ...

    async def prepare_logs(self) -> None:
        """Connect what log readers need, off the event loop, before the first reader."""
        ...

    async def close(self) -> None: ...


# What an orchestrator's users call a workload, plain and as its API names the kind
# (kubectl says "deployment.apps/x skipped rollback"): messages use their words.
NOUNS = {"kubernetes": ("deployment", "deployment.apps"), "compose": ("service", "service")}


def workload_noun(kind: str) -> str:
    return NOUNS.get(kind, ("workload", "workload"))[0]


def workload_ref(kind: str, name: str, *, api: bool = False) -> str:
    """``deployment/x`` on Kubernetes, ``service/x`` on compose (``api``: kubectl's
    ``deployment.apps/x``)."""
    return f"{NOUNS.get(kind, ('workload', 'workload'))[api]}/{name}"


def preload(kind: str) -> None:
    """Blocking: import what an orchestrator of ``kind`` needs to talk to its API (a client
    library can take a second), so a spare process pays for it before it is asked."""
    if kind == "kubernetes":
        from backends.kube.client import preload as preload_kube

        preload_kube()
    elif kind == "compose":
        import docker  # noqa: F401 - the import is the point


def reconnect(connection: dict[str, Any]) -> Orchestrator:
    """The orchestrator an ``Orchestrator.connection()`` describes, built in this process
    (the log reader's child process does this)."""
    spec = dict(connection)
    kind = spec.pop("kind", "kubernetes")
    if kind == "kubernetes":
        from backends.kube.adapter import KubeAdapter

        return KubeAdapter(**spec)
    if kind == "compose":
        from backends.compose.adapter import ComposeAdapter

        return ComposeAdapter(**spec)
    raise BvaError(f"unknown orchestrator {kind!r}")
