"""The object store behind the simulated API: resourceVersions, history for watches, owners.

Stored objects are never mutated in place: every write stores a new dict. That lets watch
history and list responses share references safely without copying on every read.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped

GENERATION_RESOURCES = {"deployments", "replicasets"}
WATCH_QUEUE_LIMIT = 20_000


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StoreError(Exception):
    reason = "InternalError"
    code = 500


class NotFound(StoreError):
    reason, code = "NotFound", 404


class AlreadyExists(StoreError):
    reason, code = "AlreadyExists", 409


class Conflict(StoreError):
    reason, code = "Conflict", 409


class Expired(StoreError):
    reason, code = "Expired", 410


@dataclass(frozen=True)
class Change:
    rv: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None


class Store:
    def __init__(self, clock: Callable[[], float], history: int = 5000) -> None:
        self._clock = clock
        self._rv = 1000
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._history: deque[Change] = deque(maxlen=history)
        self._compacted = self._rv
        self._watchers: dict[str, set[asyncio.Queue[Change | None]]] = {}
        self._listeners: list[Callable[[Change], None]] = []
        self._owned: dict[str, set[tuple[str, str, str]]] = {}

    @property
    def resource_version(self) -> int:
        return self._rv

    def add_listener(self, fn: Callable[[Change], None]) -> None:
        self._listeners.append(fn)

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(resource, {}).get((namespace, name))

    def require(self, resource: str, namespace: str, name: str, what: str) -> Obj:
        obj = self.get(resource, namespace, name)
        if obj is None:
            raise NotFound(f'{what} "{name}" not found')
        return obj

    def list_objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        items = self._objects.get(resource, {})
        if namespace is None:
            return list(items.values())
        return [o for (ns, _n), o in items.items() if ns == namespace]

    def owned(self, uid: str, resource: str | None = None) -> list[Obj]:
        out = []
        for res, ns, name in self._owned.get(uid, ()):
            if resource is None or res == resource:
                obj = self.get(res, ns, name)
                if obj is not None:
                    out.append(obj)
        return out

    def create(self, resource: str, obj: Obj, what: str) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._objects.setdefault(resource, {}):
            raise AlreadyExists(f'{what} "{meta["name"]}" already exists')
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self._clock())
        meta.pop("resourceVersion", None)
        if resource in GENERATION_RESOURCES:
            meta["generation"] = 1
        return self._write(resource, key, obj, None, "ADDED")

    def update(self, resource: str, obj: Obj, what: str, *, check_rv: bool = True) -> Obj:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        old = self._objects.get(resource, {}).get(key)
        if old is None:
            raise NotFound(f'{what} "{meta["name"]}" not found')
        want = meta.get("resourceVersion")
        if check_rv and want and want != old["metadata"]["resourceVersion"]:
            raise Conflict(
                f'Operation cannot be fulfilled on {what} "{meta["name"]}": the object has '
                "been modified; please apply your changes to the latest version and try again"
            )
        for fixed in ("uid", "creationTimestamp", "namespace", "name"):
            if fixed in old["metadata"]:
                meta[fixed] = old["metadata"][fixed]
        if resource in GENERATION_RESOURCES:
            gen = old["metadata"].get("generation", 1)
            meta["generation"] = gen + 1 if obj.get("spec") != old.get("spec") else gen
        if _same_content(old, obj):
            return old
        return self._write(resource, key, obj, old, "MODIFIED")

    def delete(self, resource: str, namespace: str, name: str, what: str) -> Obj:
        items = self._objects.get(resource, {})
        old = items.pop((namespace, name), None)
        if old is None:
            raise NotFound(f'{what} "{name}" not found')
        self._unindex(resource, old)
        self._rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._publish(Change(self._rv, resource, "DELETED", gone, old))
        return gone

    def changes_since(self, rv: int) -> list[Change]:
        if rv < self._compacted:
            raise Expired(f"too old resource version: {rv} ({self._compacted})")
        return [c for c in self._history if c.rv > rv]

    def subscribe(self, resource: str) -> asyncio.Queue[Change | None]:
        q: asyncio.Queue[Change | None] = asyncio.Queue()
        self._watchers.setdefault(resource, set()).add(q)
        return q

    def unsubscribe(self, resource: str, q: asyncio.Queue[Change | None]) -> None:
        self._watchers.get(resource, set()).discard(q)

    def close_watchers(self) -> None:
        for qs in self._watchers.values():
            for q in qs:
                q.put_nowait(None)
        self._watchers.clear()

    def _write(self, resource: str, key: Key, obj: Obj, old: Obj | None, etype: str) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects.setdefault(resource, {})[key] = obj
        if old is not None:
            self._unindex(resource, old)
        self._index(resource, obj)
        self._publish(Change(self._rv, resource, etype, obj, old))
        return obj

    def _publish(self, change: Change) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].rv
        self._history.append(change)
        for q in list(self._watchers.get(change.resource, ())):
            if q.qsize() >= WATCH_QUEUE_LIMIT:
                # A watcher this far behind is dropped, as the API server drops slow watchers.
                self._watchers[change.resource].discard(q)
                q.put_nowait(None)
            else:
                q.put_nowait(change)
        for fn in self._listeners:
            fn(change)

    def _index(self, resource: str, obj: Obj) -> None:
        meta = obj["metadata"]
        for ref in meta.get("ownerReferences") or []:
            self._owned.setdefault(ref["uid"], set()).add(
                (resource, meta.get("namespace", ""), meta["name"])
            )

    def _unindex(self, resource: str, obj: Obj) -> None:
        meta = obj["metadata"]
        for ref in meta.get("ownerReferences") or []:
            self._owned.get(ref["uid"], set()).discard(
                (resource, meta.get("namespace", ""), meta["name"])
            )


def _same_content(a: Obj, b: Obj) -> bool:
    ma = {k: v for k, v in a["metadata"].items() if k != "resourceVersion"}
    mb = {k: v for k, v in b["metadata"].items() if k != "resourceVersion"}
    if ma != mb:
        return False
    keys = (set(a) | set(b)) - {"metadata"}
    return all(a.get(k) == b.get(k) for k in keys)
