"""Plain, frozen values the screens render. No I/O here and no third-party imports.

Timestamps are float epoch seconds (UTC) so widgets can compute ages without parsing.
Mappings are plain dicts excluded from hashing: the objects are never mutated after
construction, but a dict keeps lookups by container name natural for callers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from backends.errors import (
    BvaError,
    Conflict,
    NotFound,
    ReadOnlyError,
    RolloutRefused,
    SourceUnavailable,
)

__all__ = [
    "Autoscaler",
    "BvaError",
    "Canary",
    "Condition",
    "Conflict",
    "EnvRef",
    "EnvSource",
    "KubeEvent",
    "LockRecord",
    "NotFound",
    "Pod",
    "ReadOnlyError",
    "Revision",
    "RolloutRefused",
    "RolloutState",
    "RolloutStatus",
    "SourceUnavailable",
    "Strategy",
    "Track",
    "WatchEvent",
    "WatchKind",
    "Workload",
    "image_tag",
]

Track = Literal["stable", "canary"]
EnvSource = Literal["literal", "configmap", "secret", "field", "resource"]
WatchKind = Literal["ADDED", "MODIFIED", "DELETED", "RESYNC", "ERROR"]

T = TypeVar("T")


def image_tag(image: str) -> str:
    """The tag of an image reference ("latest" when none, the digest when pinned by digest).

    A registry port ("host:5000/app") is not a tag, hence the look at the last path segment.
    """
    if "@" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_update: float | None = None


@dataclass(frozen=True, slots=True)
class Strategy:
    """Deployment update strategy; surge/unavailable kept as the API spells them ("25%", "1")."""

    type: str = "RollingUpdate"
    max_surge: str | None = None
    max_unavailable: str | None = None


@dataclass(frozen=True, slots=True)
class Workload:
    """One Deployment of a platform service (the stable one or its ``-canary`` companion)."""

    name: str
    service: str
    track: Track
    namespace: str = ""
    desired: int = 0
    replicas: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    unavailable: int = 0
    images: dict[str, str] = field(default_factory=dict, hash=False)
    revision: int = 0
    generation: int = 0
    observed_generation: int = 0
    paused: bool = False
    conditions: tuple[Condition, ...] = ()
    strategy: Strategy = field(default_factory=Strategy)
    progress_deadline_s: int | None = None
    created: float | None = None
    change_cause: str | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    uid: str = ""
    resource_version: str = ""

    @property
    def current(self) -> int:
        """kubectl's CURRENT column: pods the Deployment has, old and new."""
        return self.replicas

    @property
    def image(self) -> str:
        """The first container's image: the one that names the release."""
        return next(iter(self.images.values()), "")

    def image_tag(self, container: str | None = None) -> str:
        image = self.images.get(container, "") if container else self.image
        return image_tag(image) if image else ""

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    service: str
    track: Track
    namespace: str = ""
    phase: str = ""
    status: str = ""
    ready_containers: int = 0
    total_containers: int = 0
    restarts: int = 0
    created: float | None = None
    node: str | None = None
    pod_template_hash: str | None = None
    owner_replicaset: str | None = None
    started: float | None = None
    last_termination_reason: str | None = None
    last_exit_code: int | None = None
    images: dict[str, str] = field(default_factory=dict, hash=False)
    ip: str | None = None
    is_ready: bool = False
    deleting: bool = False
    uid: str = ""
    resource_version: str = ""

    @property
    def ready(self) -> str:
        """kubectl's READY column, e.g. "1/1"."""
        return f"{self.ready_containers}/{self.total_containers}"


class RolloutState(enum.StrEnum):
    COMPLETE = "complete"
    PROGRESSING = "progressing"
    FAILED = "failed"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """``kubectl rollout status`` for one Deployment; ``message`` is kubectl's wording."""

    deployment: str
    state: RolloutState
    done: bool
    message: str
    updated: int = 0
    desired: int = 0
    available: int = 0
    replicas: int = 0
    observed: bool = True


@dataclass(frozen=True, slots=True)
class Revision:
    """One entry of ``kubectl rollout history``: a ReplicaSet owned by the Deployment."""

    revision: int
    replicaset: str
    images: dict[str, str] = field(default_factory=dict, hash=False)
    change_cause: str | None = None
    created: float | None = None
    replicas: int = 0
    ready: int = 0
    is_current: bool = False
    template_hash: str | None = None
    # The raw pod template (JSON as the API returns it) for diffs; too big to print.
    template: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class KubeEvent:
    type: str
    reason: str
    message: str
    object_kind: str
    object_name: str
    count: int = 1
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[T]):
    """One step of a watch stream.

    ADDED/MODIFIED/DELETED carry ``obj``. RESYNC carries ``items``, the complete current list:
    consumers replace their state with it. It comes first (the initial list), after a relist
    on 410 Gone, and when the stream is back after an outage (which also ends the outage).
    ERROR carries ``message`` and ``last_good``, the epoch time of the last good data; it is
    sent once per outage while the watch keeps retrying.
    """

    kind: WatchKind
    obj: T | None = None
    items: tuple[T, ...] = ()
    message: str = ""
    last_good: float | None = None


@dataclass(frozen=True, slots=True)
class Canary:
    """The canary of one service: its instances' counts and the release state it carries.

    ``marks`` is the release's state as short key/value strings (the plan, the phase, the
    tallies): Kubernetes keeps them as the canary Deployment's annotations. Any bva that
    reads them sees the same release.
    """

    service: str
    name: str
    desired: int = 0
    ready: int = 0
    images: dict[str, str] = field(default_factory=dict, hash=False)
    marks: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class LockRecord:
    """The release lock as the orchestrator stores it. ``version`` is the store's own
    compare-and-swap token (a Lease's resourceVersion): a replace with a stale one fails."""

    holder: str
    release_id: str
    acquired: float | None
    renewed: float | None
    duration: int
    version: str = ""

    def expired(self, now: float) -> bool:
        return self.renewed is None or now > self.renewed + self.duration

    def describe(self, now: float) -> str:
        since = (
            datetime.fromtimestamp(self.acquired, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.acquired
            else "an unknown time"
        )
        state = "driver lost" if self.expired(now) else "active"
        return f"{self.holder} since {since} (release {self.release_id}, {state})"


@dataclass(frozen=True, slots=True)
class Autoscaler:
    """One HorizontalPodAutoscaler (autoscaling/v2): what it scales, its bounds, the replica
    counts of its status and its metric targets as short readable phrases
    ("cpu 70% utilization", "memory 512Mi average value")."""

    name: str
    target_kind: str
    target_name: str
    min_replicas: int = 1
    max_replicas: int = 1
    current_replicas: int = 0
    desired_replicas: int = 0
    metrics: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    last_scale: float | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True, slots=True)
class EnvRef:
    """One environment variable of a workload's pod template, by name and source only.

    A literal's value is never kept (it may be a secret pasted inline). ``ref_name`` is the
    ConfigMap or Secret it reads (the field path for "field", the resource such as
    "limits.memory" for "resource"); ``ref_key`` is the key in it. A whole ConfigMap or Secret
    imported with ``envFrom`` has ``name`` "*" (its prefix before the star when it has one,
    "SMTP_*") and no ``ref_key``.
    """

    container: str
    name: str
    source: EnvSource
    ref_name: str = ""
    ref_key: str = ""
    optional: bool = False

    @property
    def whole(self) -> bool:
        """An ``envFrom`` import of every key of ``ref_name``."""
        return self.name.endswith("*")
