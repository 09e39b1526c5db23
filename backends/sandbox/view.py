"""What the simulated workloads (endpoints, traffic, logs) may know about the cluster.

The cluster core implements ``ClusterView``; the simulators only read through it, so they
never reach into the object store and the store never imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Behaviour = Literal["ok", "unhealthy", "crash", "hang"]
LogFormat = Literal["plain", "json"]


def behaviour_for_image(image: str) -> Behaviour:
    """Failure is injected through the image tag, as the sandbox's contract says."""
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    if "crash" in tag:
        return "crash"
    if "unhealthy" in tag:
        return "unhealthy"
    if "hang" in tag:
        return "hang"
    return "ok"


@dataclass(frozen=True)
class SandboxService:
    """A platform service as the sandbox serves it."""

    name: str
    container: str
    port: int
    health_paths: tuple[str, ...]
    metrics_path: str
    log_format: LogFormat
    deployment: str = ""  # defaults to the service name
    autoscaling: tuple[int, int, int] | None = None  # its HPA's min, max, CPU target %
    env: tuple[str, ...] = ()  # the variables its containers must get (names only)


@dataclass(frozen=True)
class PodView:
    name: str
    service: str
    container: str
    track: str
    image: str
    behaviour: Behaviour
    ready: bool
    running: bool
    started_at: float


class ClusterView(Protocol):
    def pods_for_service(self, service: str) -> list[PodView]: ...
