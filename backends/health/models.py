"""Values the HTTP health prober returns. Self-contained (stdlib only) so they can move into
backends/models.py unchanged. Every str that came from the network is already sanitised."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "HealthComponent",
    "ProbeResult",
    "ProbeStatus",
    "ServiceHealth",
    "Unreachable",
    "worst_status",
]


class ProbeStatus(enum.StrEnum):
    UP = "UP"
    DOWN = "DOWN"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"
    UNKNOWN = "UNKNOWN"
    UNREACHABLE = "UNREACHABLE"

    @property
    def severity(self) -> int:
        """0 is the worst; aggregates keep the lowest."""
        return _SEVERITY[self]


_SEVERITY: dict[ProbeStatus, int] = {
    ProbeStatus.UNREACHABLE: 0,
    ProbeStatus.DOWN: 1,
    ProbeStatus.OUT_OF_SERVICE: 2,
    ProbeStatus.UNKNOWN: 3,
    ProbeStatus.UP: 4,
}


def worst_status(statuses: Iterable[ProbeStatus]) -> ProbeStatus:
    """The worst of ``statuses``; UNKNOWN when there are none (nothing says it is up)."""
    return min(statuses, key=_SEVERITY.__getitem__, default=ProbeStatus.UNKNOWN)


class Unreachable(enum.StrEnum):
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS = "TLS error"
    BAD_STATUS = "bad status"
    NOT_JSON = "body not JSON"
    RESET = "connection reset"
    DNS = "name not resolved"
    TOO_LARGE = "body too large"
    OTHER = "error"


@dataclass(frozen=True, slots=True)
class HealthComponent:
    """One actuator component; nested ones are named by path ("db/primary")."""

    name: str
    status: str
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    service: str
    url: str
    status: ProbeStatus
    reason: Unreachable | None  # set only when status is UNREACHABLE
    detail: str  # one short line: "HTTP 500", "timed out after 2.0s", "connection refused"
    http_status: int | None
    latency_ms: float | None  # None when no HTTP response arrived
    components: tuple[HealthComponent, ...]
    cert_days_left: int | None  # https only; negative once expired
    checked_at: float  # epoch seconds
    answered_by: str | None  # the X-Sandbox-Pod response header

    @property
    def answered(self) -> bool:
        """An HTTP response arrived (even an error status or a body we could not use)."""
        return self.http_status is not None


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """A service's health URLs taken together: its status is the worst of them."""

    service: str
    status: ProbeStatus
    probes: tuple[ProbeResult, ...]
    latency_ms: float | None  # max over the probes that were answered

    @classmethod
    def of(cls, service: str, probes: Iterable[ProbeResult]) -> ServiceHealth:
        kept = tuple(probes)
        latencies = [p.latency_ms for p in kept if p.latency_ms is not None]
        return cls(
            service=service,
            status=worst_status(p.status for p in kept),
            probes=kept,
            latency_ms=max(latencies) if latencies else None,
        )
