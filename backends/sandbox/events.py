"""Core/v1 Events written the way controllers and the kubelet write them (aggregated by
object, reason and message, capped so a long-running sandbox does not grow without bound)."""

from __future__ import annotations

import copy
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from backends.sandbox.store import Store, rfc3339

Obj = dict[str, Any]
MAX_EVENTS = 2000


class EventRecorder:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._keys: dict[tuple[str, str, str, str, str], str] = {}
        self._key_of: dict[str, tuple[str, str, str, str, str]] = {}
        self._order: deque[tuple[str, str]] = deque()

    def record(
        self, obj: Obj, etype: str, reason: str, message: str, component: str, host: str = ""
    ) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        key = (ns, obj["kind"], meta["name"], reason, message)
        now = rfc3339(self._clock())
        existing_name = self._keys.get(key)
        if existing_name is not None:
            existing = self._store.get("events", ns, existing_name)
            if existing is not None:
                updated = copy.deepcopy(existing)
                updated["count"] = existing.get("count", 1) + 1
                updated["lastTimestamp"] = now
                self._store.update("events", updated, "events")
                return
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        event: Obj = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "kind": obj["kind"],
                "namespace": ns,
                "name": meta["name"],
                "uid": meta.get("uid", ""),
                "apiVersion": obj.get("apiVersion", "v1"),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        self._store.create("events", event, "events")
        self._keys[key] = name
        self._key_of[name] = key
        self._order.append((ns, name))
        while len(self._order) > MAX_EVENTS:
            old_ns, old_name = self._order.popleft()
            if self._store.get("events", old_ns, old_name) is not None:
                self._store.delete("events", old_ns, old_name, "events")
            old_key = self._key_of.pop(old_name, None)
            if old_key is not None and self._keys.get(old_key) == old_name:
                del self._keys[old_key]
