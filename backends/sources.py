"""The data-source contracts beside the orchestrator: HTTP health and the database. Screens
and engines receive these from the Platform, never a concrete prober or connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from backends.db.models import DatabasePicture
from backends.health.models import ProbeResult, ServiceHealth

__all__ = ["DatabaseSource", "HealthSource"]


class HealthSource(Protocol):
    """Health endpoints: every target of every service probed concurrently, never raising
    for an unreachable endpoint (that is a result, not an error)."""

    async def sweep(self, targets: Sequence[tuple[str, Sequence[str]]]) -> list[ServiceHealth]: ...

    async def probe(self, service: str, url: str) -> ProbeResult: ...

    async def aclose(self) -> None: ...


class DatabaseSource(Protocol):
    """The platform's database (PostgreSQL primary and replicas); the Platform holds one when
    the platform file names a database. ``refresh`` never raises for an unreachable server:
    that server is DOWN in the picture, with the age of its last good reading."""

    async def refresh(self) -> DatabasePicture: ...

    async def aclose(self) -> None: ...
