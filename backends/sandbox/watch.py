"""Watch streams as the API server writes them: newline-delimited events, bookmarks,
410 Gone for a resourceVersion older than the history, selector transitions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from backends.sandbox.resources import ResourceType
from backends.sandbox.store import Change, Expired, Store

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]
BOOKMARK_EVERY_S = 5.0


def expired_status(message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Expired",
        "code": 410,
    }


async def serve_watch(
    request: web.Request,
    store: Store,
    rtype: ResourceType,
    namespace: str | None,
    match: Predicate,
    render: Callable[[Obj], Obj],
    *,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    q = request.query
    rv_param = q.get("resourceVersion", "")
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    timeout = min(float(q.get("timeoutSeconds", "1800") or 1800), 1800.0)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    sub = store.subscribe(rtype.plural)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def in_scope(obj: Obj) -> bool:
        return namespace is None or obj["metadata"].get("namespace", "") == namespace

    async def send(etype: str, obj: Obj) -> None:
        line = json.dumps({"type": etype, "object": obj}, separators=(",", ":"))
        await resp.write(line.encode() + b"\n")

    last_rv = store.resource_version
    try:
        if rv_param in ("", "0"):
            for obj in store.list_objects(rtype.plural, namespace):
                if match(obj):
                    await send("ADDED", render(obj))
        else:
            try:
                backlog = store.changes_since(int(rv_param))
            except (Expired, ValueError) as exc:
                await send("ERROR", expired_status(str(exc)))
                return resp
            last_rv = int(rv_param)
            for change in backlog:
                if change.resource == rtype.plural:
                    await _emit(change, in_scope, match, render, send)
                last_rv = change.rv
        while not stopping.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(sub.get(), min(BOOKMARK_EVERY_S, remaining))
            except TimeoutError:
                if bookmarks:
                    await send(
                        "BOOKMARK",
                        {
                            "kind": rtype.kind,
                            "apiVersion": rtype.api_version,
                            "metadata": {"resourceVersion": str(store.resource_version)},
                        },
                    )
                continue
            if item is None:
                break
            if item.rv <= last_rv:
                continue
            last_rv = item.rv
            await _emit(item, in_scope, match, render, send)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        store.unsubscribe(rtype.plural, sub)
    return resp


async def _emit(
    change: Change,
    in_scope: Predicate,
    match: Predicate,
    render: Callable[[Obj], Obj],
    send: Callable[[str, Obj], Any],
) -> None:
    if not in_scope(change.obj):
        return
    now_match = match(change.obj)
    if change.type == "MODIFIED":
        was = change.old is not None and match(change.old)
        if was and now_match:
            await send("MODIFIED", render(change.obj))
        elif was:
            await send("DELETED", render(change.obj))
        elif now_match:
            await send("ADDED", render(change.obj))
    elif now_match or (change.type == "DELETED" and change.old is not None and match(change.old)):
        await send(change.type, render(change.obj))
