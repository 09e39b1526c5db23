"""The Kubernetes REST API over HTTP (aiohttp): discovery, CRUD, patch, subresources,
watch and pod logs, answering the way kube-apiserver does for what bva and kubectl use.

Over 500 lines on purpose: it is the route table and one short handler per verb; the store,
patching, selectors, tables and watch each live in their own module.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

from aiohttp import web

from backends.sandbox import hpa_v1, openapi
from backends.sandbox import resources as res
from backends.sandbox.cluster import Cluster
from backends.sandbox.config_objects import Invalid as ConfigInvalid
from backends.sandbox.config_objects import prepare as prepare_config_object
from backends.sandbox.patch import PatchError, apply_patch
from backends.sandbox.podutil import parse_time
from backends.sandbox.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    selector_to_string,
)
from backends.sandbox.store import StoreError
from backends.sandbox.tables import to_table, wants_table
from backends.sandbox.watch import serve_watch

Obj = dict[str, Any]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(obj, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _static(body: Obj | dict[str, str]) -> Any:
    async def handler(_request: web.Request) -> web.Response:
        return _json(body)

    return handler


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


class Api:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.requests = 0
        self.mutations = 0
        self.stopping = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        r = app.router
        for path, body in (
            ("/version", res.SERVER_VERSION),
            ("/api", res.api_versions()),
            ("/apis", res.api_group_list()),
            ("/api/v1", res.api_resource_list("", "v1")),
        ):
            r.add_get(path, _static(body))
        for probe in ("/healthz", "/livez", "/readyz"):
            r.add_get(probe, _ok)
        r.add_get("/sandbox/v1/stats", self._stats)
        r.add_get("/openapi/v2", openapi.serve_v2)
        r.add_get("/openapi/v3", openapi.serve_v3_root)
        r.add_get("/openapi/v3/{path:.+}", openapi.serve_v3)
        r.add_route("*", "/api/v1/{path:.+}", self._core)
        r.add_get("/apis/{group}", self._group)
        r.add_get("/apis/{group}/{version}", self._group_version)
        r.add_route("*", "/apis/{group}/{version}/{path:.+}", self._grouped)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/sandbox/"):
            self.requests += 1
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                self.mutations += 1
        try:
            resp: web.StreamResponse = await handler(request)
            for warning in request.get("warnings", ()):
                resp.headers.add("Warning", f"299 - {json.dumps(warning)}")
            return resp
        except ApiError as exc:
            return _json(status_body(exc.code, exc.reason, exc.message), exc.code)
        except StoreError as exc:
            return _json(status_body(exc.code, exc.reason, str(exc)), exc.code)
        except web.HTTPNotFound:
            return _json(
                status_body(404, "NotFound", "the server could not find the requested resource"),
                404,
            )

    async def _stats(self, request: web.Request) -> web.Response:
        # ?window=SECONDS: the tick percentiles of just the last SECONDS (a benchmark's window).
        try:
            window: float | None = float(request.query["window"])
        except (KeyError, ValueError):
            window = None
        return _json(
            {
                "requests": self.requests,
                "mutations": self.mutations,
                "resourceVersion": self.store.resource_version,
                "pods": len(self.store.list_objects("pods")),
                "ticks": self.cluster.ticks.summary(window),
            }
        )

    async def _check_fields(
        self, request: web.Request, rtype: res.ResourceType, obj: Any, current: Obj | None = None
    ) -> Any:
        """``obj`` as decoded under fieldValidation (openapi.check_fields): Strict fails on
        unknown fields, Warn drops them with a warning, Ignore drops them."""
        try:
            obj, request["warnings"] = await openapi.check_fields(
                rtype, request.query.get("fieldValidation"), obj, current
            )
        except openapi.StrictDecodingError as exc:
            if current is not None:  # a patch: the patched object failed to decode
                raise ApiError(400, "BadRequest", str(exc)) from None
            version = "v1" if request.get("hpa_v1") else rtype.version
            raise ApiError(
                400,
                "BadRequest",
                f'{rtype.kind} in version "{version}" cannot be handled as a {rtype.kind}: {exc}',
            ) from None
        return obj

    async def _group(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        if group not in res.GROUPS:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json(res.api_group(group))

    async def _group_version(self, request: web.Request) -> web.Response:
        group, version = request.match_info["group"], request.match_info["version"]
        if version not in res.GROUPS.get(group, ()):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json(res.api_resource_list(group, version))

    async def _core(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, "", "v1", request.match_info["path"])

    async def _grouped(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        return await self._dispatch(request, m["group"], m["version"], m["path"])

    # -- routing ----------------------------------------------------------------------
    async def _dispatch(
        self, request: web.Request, group: str, version: str, path: str
    ) -> web.StreamResponse:
        resp = await self._route(request, group, version, path)
        return hpa_v1.v1_response(resp) if request.get("hpa_v1") else resp

    async def _route(
        self, request: web.Request, group: str, version: str, path: str
    ) -> web.StreamResponse:
        parts = [p for p in path.split("/") if p]
        namespace: str | None = None
        if (
            len(parts) >= 3
            and parts[0] == "namespaces"
            and not (group == "" and len(parts) == 3 and parts[2] in ("status",))
        ):
            namespace, parts = parts[1], parts[2:]
        plural, name, sub = (
            parts[0],
            (parts[1] if len(parts) > 1 else None),
            (parts[2] if len(parts) > 2 else None),
        )
        rtype = res.BY_PATH.get((group, version, plural))
        if rtype is None or len(parts) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rtype.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub is not None and sub not in rtype.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if (group, version, plural) == hpa_v1.V1:
            # Served from the stored v2 objects: bodies in, answers out are converted.
            request["hpa_v1"] = True
            rtype = res.BY_PATH[hpa_v1.V2]
            if request.method in ("POST", "PUT"):
                request["body"] = hpa_v1.from_v1(await self._body(request))
        ns = namespace if rtype.namespaced else ""
        if (
            namespace is not None
            and self.store.get("namespaces", "", namespace) is None
            and request.method == "POST"
        ):
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        method = request.method
        if name is None:
            if method == "GET":
                return await self._list(request, rtype, ns if rtype.namespaced else None)
            if method == "POST":
                return await self._create(request, rtype, ns or "")
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")
        assert ns is not None
        if sub == "log":
            return await self._log(request, ns, name)
        if sub == "scale":
            return await self._scale(request, rtype, ns, name)
        if method == "GET":
            obj = self.store.require(rtype.plural, ns, name, rtype.what)
            if wants_table(request.headers.get("Accept", "")):
                return _json(
                    to_table(
                        rtype.plural,
                        [obj],
                        time.time(),
                        obj["metadata"]["resourceVersion"],
                        request.query.get("includeObject", "Metadata"),
                    )
                )
            return _json(obj)
        if method == "PUT":
            return await self._update(request, rtype, ns, name, status_only=sub == "status")
        if method == "PATCH":
            return await self._patch(request, rtype, ns, name, status_only=sub == "status")
        if method == "DELETE":
            return await self._delete(request, rtype, ns, name)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    # -- verbs ------------------------------------------------------------------------
    async def _list(
        self, request: web.Request, rtype: res.ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        q = request.query
        try:
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(q.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc

        def match(o: Obj) -> bool:
            return labels(o) and fields(o)

        table = wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        if q.get("watch") in ("true", "1"):

            def render(o: Obj) -> Obj:
                if table:
                    return to_table(
                        rtype.plural,
                        [o],
                        time.time(),
                        o["metadata"].get("resourceVersion", ""),
                        include,
                    )
                return o

            return await serve_watch(
                request, self.store, rtype, namespace, match, render, stopping=self.stopping
            )
        items = [o for o in self.store.list_objects(rtype.plural, namespace) if match(o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        rv = str(self.store.resource_version)
        if table:
            return _json(to_table(rtype.plural, items, time.time(), rv, include))
        return _json(
            {
                "kind": f"{rtype.kind}List",
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": rv},
                "items": [_with_type(o, rtype) for o in items],
            }
        )

    async def _body(self, request: web.Request) -> Any:
        if "body" in request:
            return request["body"]
        try:
            return json.loads(await request.read() or b"null")
        except ValueError as exc:
            raise ApiError(
                400, "BadRequest", f"the body of the request was invalid: {exc}"
            ) from exc

    def _prepare(self, rtype: res.ResourceType, obj: Obj, name: str | None) -> Obj:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        obj = _drop_nulls(obj)
        obj["kind"], obj["apiVersion"] = rtype.kind, rtype.api_version
        if rtype.plural == "deployments":
            res.default_deployment(obj)
            problem = res.validate_deployment(obj)
            if problem:
                raise ApiError(422, "Invalid", problem)
        if rtype.plural == "pods":
            res.default_pod_spec(obj.setdefault("spec", {}))
            obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
        try:
            prepare_config_object(rtype.plural, obj)
        except ConfigInvalid as exc:
            raise ApiError(exc.code, exc.reason, exc.message) from None
        if name is not None and obj.get("metadata", {}).get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        return obj

    async def _create(self, request: web.Request, rtype: res.ResourceType, ns: str) -> web.Response:
        body = await self._body(request)
        body = await self._check_fields(request, rtype, body)
        obj = self._prepare(rtype, body, None)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + f"{int(time.time() * 1000) % 100000:05d}"
        if not meta.get("name"):
            raise ApiError(
                422,
                "Invalid",
                f"{rtype.kind}.{rtype.group or 'core'} is invalid: "
                "metadata.name: Required value: name or generateName is required",
            )
        if rtype.namespaced:
            meta["namespace"] = ns
        if rtype.plural in ("deployments", "horizontalpodautoscalers"):
            obj["status"] = {}
        if _dry_run(request):
            return _json(obj, 201)
        created = self.store.create(rtype.plural, obj, rtype.what)
        return _json(created, 201)

    async def _update(
        self,
        request: web.Request,
        rtype: res.ResourceType,
        ns: str,
        name: str,
        *,
        status_only: bool,
    ) -> web.Response:
        current = self.store.require(rtype.plural, ns, name, rtype.what)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        if not status_only:
            body = await self._check_fields(request, rtype, body)
        return self._store_update(request, rtype, current, body, status_only=status_only)

    def _store_update(
        self,
        request: web.Request,
        rtype: res.ResourceType,
        current: Obj,
        new: Obj,
        *,
        status_only: bool,
    ) -> web.Response:
        if status_only:
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", {})
            merged["metadata"]["resourceVersion"] = new.get("metadata", {}).get(
                "resourceVersion", current["metadata"]["resourceVersion"]
            )
            new = merged
        else:
            new = self._prepare(rtype, new, current["metadata"]["name"])
            new.setdefault("metadata", {})
            new["metadata"]["namespace"] = current["metadata"].get("namespace", "")
            new["metadata"]["name"] = current["metadata"]["name"]
            if "status" in current:
                new["status"] = current["status"]  # status changes only via /status
        if _dry_run(request):
            return _json(new)
        return _json(self.store.update(rtype.plural, new, rtype.what))

    async def _patch(
        self,
        request: web.Request,
        rtype: res.ResourceType,
        ns: str,
        name: str,
        *,
        status_only: bool,
    ) -> web.Response:
        current = self.store.require(rtype.plural, ns, name, rtype.what)
        body = await self._body(request)
        v1 = bool(request.get("hpa_v1"))
        try:
            base = hpa_v1.to_v1(current) if v1 else current
            patched = apply_patch(request.headers.get("Content-Type", ""), base, body)
            if v1:
                patched = hpa_v1.from_v1(patched)
        except PatchError as exc:
            ctype = request.headers.get("Content-Type", "")
            if "unsupported" in str(exc):
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted "
                    f"media types include: application/json-patch+json, "
                    f"application/merge-patch+json, "
                    f"application/strategic-merge-patch+json ({ctype})",
                ) from exc
            raise ApiError(422, "Invalid", f"the patch could not be applied: {exc}") from exc
        if not status_only:
            patched = await self._check_fields(request, rtype, patched, current)
        # A resourceVersion in the patch is a precondition; otherwise patches apply to latest.
        sent_rv = (
            body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
        )
        if not sent_rv:
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
                "resourceVersion"
            ]
        return self._store_update(request, rtype, current, patched, status_only=status_only)

    async def _delete(
        self, request: web.Request, rtype: res.ResourceType, ns: str, name: str
    ) -> web.Response:
        obj = self.store.require(rtype.plural, ns, name, rtype.what)
        grace = request.query.get("gracePeriodSeconds")
        try:
            body = json.loads(await request.read() or b"{}")
            if isinstance(body, dict) and body.get("gracePeriodSeconds") is not None:
                grace = str(body["gracePeriodSeconds"])
        except ValueError:
            pass
        if _dry_run(request):
            return _json(obj)
        if rtype.plural == "pods":
            self.cluster.kubelet.delete(obj, grace=grace != "0")
            return _json(self.store.get("pods", ns, name) or obj)
        self.store.delete(rtype.plural, ns, name, rtype.what)
        return _json(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": rtype.group,
                    "kind": rtype.plural,
                    "uid": obj["metadata"]["uid"],
                },
            }
        )

    async def _scale(
        self, request: web.Request, rtype: res.ResourceType, ns: str, name: str
    ) -> web.Response:
        obj = self.store.require(rtype.plural, ns, name, rtype.what)
        scale = _scale_of(obj)
        if request.method == "GET":
            return _json(scale)
        body = await self._body(request)
        if request.method == "PUT":
            new_scale = body
        elif request.method == "PATCH":
            try:
                new_scale = apply_patch(request.headers.get("Content-Type", ""), scale, body)
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from exc
        else:
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported")
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: '
                "spec.replicas: Invalid value: must be greater than or equal to 0",
            )
        want_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        updated = copy.deepcopy(obj)
        updated["spec"]["replicas"] = replicas
        if request.method == "PATCH" and want_rv == scale["metadata"]["resourceVersion"]:
            want_rv = None
        updated["metadata"]["resourceVersion"] = want_rv or obj["metadata"]["resourceVersion"]
        if _dry_run(request):
            return _json(_scale_of(updated))
        saved = self.store.update(rtype.plural, updated, rtype.what)
        return _json(_scale_of(saved))

    async def _log(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = self.store.require("pods", ns, name, "pods")
        q = request.query
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = q.get("container") or ""
        if not container:
            if len(names) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod "
                    f"{name}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        previous = q.get("previous") in ("true", "1")
        statuses = {cs["name"]: cs for cs in pod.get("status", {}).get("containerStatuses") or []}
        state = (statuses.get(container) or {}).get("state") or {}
        waiting = state.get("waiting", {}).get("reason")
        if not previous and (container not in statuses or waiting == "ContainerCreating"):
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is '
                f"waiting to start: {waiting or 'ContainerCreating'}",
            )
        opts: dict[str, Any] = {"timestamps": q.get("timestamps") in ("true", "1")}
        try:
            if q.get("tailLines"):
                opts["tail_lines"] = int(q["tailLines"])
            if q.get("sinceSeconds"):
                opts["since_seconds"] = float(q["sinceSeconds"])
            if q.get("sinceTime"):
                opts["since_time"] = parse_time(q["sinceTime"])
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid log options: {exc}") from exc
        logs = self.cluster.logs
        follow = q.get("follow") in ("true", "1") and not previous
        try:
            if not follow:
                lines = logs.read(name, container, previous=previous, limit_bytes=limit, **opts)
                text = "".join(line + "\n" for line in lines)
                return web.Response(text=text, content_type="text/plain")
            stream = logs.follow(name, container, **opts)
        except LookupError as exc:
            raise ApiError(400, "BadRequest", str(exc.args[0] if exc.args else exc)) from exc
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        try:
            async for batch in stream:
                if not batch:
                    continue
                data = ("\n".join(batch) + "\n").encode()
                if limit is not None and sent + len(data) > limit:
                    await resp.write(data[: limit - sent])
                    break
                sent += len(data)
                await resp.write(data)
                if self.stopping.is_set():
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp


def _drop_nulls(value: Any) -> Any:
    """Typed decoding on the real server turns null optional fields into "unset"; Go clients
    send e.g. template.metadata.creationTimestamp: null, which must not change the template."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _dry_run(request: web.Request) -> bool:
    return bool(request.query.getall("dryRun", []))


def _with_type(obj: Obj, rtype: res.ResourceType) -> Obj:
    if obj.get("kind") == rtype.kind:
        return obj
    return {"kind": rtype.kind, "apiVersion": rtype.api_version, **obj}


def _scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 0)},
        "status": {
            "replicas": obj.get("status", {}).get("replicas", 0),
            "selector": selector_to_string(obj["spec"].get("selector")),
        },
    }
