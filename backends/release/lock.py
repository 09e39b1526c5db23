"""The release lock: a coordination.k8s.io Lease in the platform's namespace, so a second
driver anywhere is refused with who holds it and since when, and a driver that died (its
lease no longer renewed) can be taken over from any terminal."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from backends.errors import BvaError, Conflict

LEASE_NAME = "bva-release"
LEASE_SECONDS = 15
RELEASE_ANNOTATION = "bva.io/release-id"


class LeaseApi(Protocol):
    async def get_lease(self, name: str) -> dict[str, Any] | None: ...
    async def create_lease(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def replace_lease(self, name: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def delete_lease(self, name: str) -> None: ...


class LockHeld(BvaError):
    """Another driver holds the release lock."""


def identity() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


def _micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class LockHolder:
    holder: str
    release_id: str
    acquired: float | None
    renewed: float | None
    duration: int

    def expired(self, now: float) -> bool:
        return self.renewed is None or now > self.renewed + self.duration

    def describe(self, now: float) -> str:
        since = _micro(self.acquired)[:19] + "Z" if self.acquired else "an unknown time"
        state = "driver lost" if self.expired(now) else "active"
        return f"{self.holder} since {since} (release {self.release_id}, {state})"


def holder_of(lease: dict[str, Any] | None) -> LockHolder | None:
    if not lease:
        return None
    spec = lease.get("spec") or {}
    ann = (lease.get("metadata") or {}).get("annotations") or {}
    return LockHolder(
        holder=str(spec.get("holderIdentity") or "unknown"),
        release_id=str(ann.get(RELEASE_ANNOTATION, "")),
        acquired=_parse(spec.get("acquireTime")),
        renewed=_parse(spec.get("renewTime")),
        duration=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS),
    )


class ReleaseLock:
    def __init__(self, api: LeaseApi, release_id: str, me: str | None = None) -> None:
        self._api = api
        self.release_id = release_id
        # One process may drive, then drive again: each driver is its own holder.
        self.me = me or f"{identity()} #{secrets.token_hex(3)}"
        self._lease: dict[str, Any] | None = None

    async def current(self) -> LockHolder | None:
        return holder_of(await self._api.get_lease(LEASE_NAME))

    async def acquire(self, *, take_over: bool = False) -> None:
        """Take the lock; an expired lock is taken only with ``take_over`` (a resume)."""
        now = time.time()
        body = self._body(now, acquired=now)
        lease = await self._api.get_lease(LEASE_NAME)
        if lease is None:
            try:
                self._lease = await self._api.create_lease(body)
                return
            except Conflict:
                lease = await self._api.get_lease(LEASE_NAME)
        held = holder_of(lease)
        if held is not None and lease is not None:
            mine = held.holder == self.me
            if not mine and not (take_over and held.expired(now)):
                raise LockHeld(f"release lock held by {held.describe(now)}")
            body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
            try:
                self._lease = await self._api.replace_lease(LEASE_NAME, body)
            except Conflict:
                raise LockHeld("release lock was taken by someone else just now") from None

    async def renew(self) -> None:
        if self._lease is None:
            raise BvaError("renewing a release lock that is not held")
        spec = self._lease.get("spec") or {}
        body = self._body(time.time(), acquired=_parse(spec.get("acquireTime")) or time.time())
        body["metadata"]["resourceVersion"] = self._lease["metadata"]["resourceVersion"]
        try:
            self._lease = await self._api.replace_lease(LEASE_NAME, body)
        except Conflict:
            self._lease = None
            raise LockHeld("lost the release lock to another driver") from None

    async def release(self) -> None:
        held = await self.current()
        if held is not None and held.holder == self.me:
            await self._api.delete_lease(LEASE_NAME)
        self._lease = None

    def _body(self, now: float, *, acquired: float) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "annotations": {RELEASE_ANNOTATION: self.release_id}},
            "spec": {
                "holderIdentity": self.me,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": _micro(acquired),
                "renewTime": _micro(now),
            },
        }
