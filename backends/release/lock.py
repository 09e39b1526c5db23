"""The release lock, over whatever store the orchestrator gives (a Lease on Kubernetes): a
second driver anywhere is refused with who holds it and since when, and a driver that died
(its lock no longer renewed) can be taken over from any terminal."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time

from backends.errors import BvaError, Conflict
from backends.models import LockRecord
from backends.orchestrator import LockStore

LOCK_SECONDS = 15


class LockHeld(BvaError):
    """Another driver holds the release lock."""


def identity() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


class ReleaseLock:
    def __init__(self, store: LockStore, release_id: str, me: str | None = None) -> None:
        self._store = store
        self.release_id = release_id
        # One process may drive, then drive again: each driver is its own holder.
        self.me = me or f"{identity()} #{secrets.token_hex(3)}"
        self._held: LockRecord | None = None

    async def current(self) -> LockRecord | None:
        return await self._store.read_lock()

    def _record(self, now: float, *, acquired: float, version: str = "") -> LockRecord:
        return LockRecord(self.me, self.release_id, acquired, now, LOCK_SECONDS, version)

    async def acquire(self, *, take_over: bool = False) -> None:
        """Take the lock; an expired lock is taken only with ``take_over`` (a resume)."""
        now = time.time()
        held = await self._store.read_lock()
        if held is None:
            try:
                self._held = await self._store.create_lock(self._record(now, acquired=now))
                return
            except Conflict:
                held = await self._store.read_lock()
        if held is not None:
            mine = held.holder == self.me
            if not mine and not (take_over and held.expired(now)):
                raise LockHeld(f"release lock held by {held.describe(now)}")
            try:
                self._held = await self._store.replace_lock(
                    self._record(now, acquired=now, version=held.version)
                )
            except Conflict:
                raise LockHeld("release lock was taken by someone else just now") from None

    async def renew(self) -> None:
        if self._held is None:
            raise BvaError("renewing a release lock that is not held")
        now = time.time()
        record = self._record(now, acquired=self._held.acquired or now, version=self._held.version)
        try:
            self._held = await self._store.replace_lock(record)
        except Conflict:
            self._held = None
            raise LockHeld("lost the release lock to another driver") from None

    async def release(self) -> None:
        held = await self.current()
        if held is not None and held.holder == self.me:
            await self._store.delete_lock()
        self._held = None
