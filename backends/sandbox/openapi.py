"""The OpenAPI documents of the served kinds, as kube-apiserver serves them: /openapi/v2
(Swagger 2.0, JSON or gnostic protobuf) and /openapi/v3 (the root listing each
group-version's document at ``?hash=<sha512 of it>``, and those OpenAPI 3.0 documents).

kubectl reads them for ``explain``, for the strategic merge patch ``apply`` computes (from the
schema's ``x-kubernetes-patch-*`` extensions, falling back to its built-in types), and to see
that the server validates fields: when a kind's PATCH operation takes ``fieldValidation`` it
sends ``fieldValidation=Strict`` and leaves validation to the server (openapi_fields.py).

The schemas come from the installed kubernetes client's models (openapi_schemas.py), which
takes about a second to import; the documents are built once per process on the first
request that needs them, in a worker thread so the event loop keeps serving, and the built
definitions are kept in the user's cache directory, keyed by the client's version and these
modules' source, so that later sandboxes load them in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiohttp import web

from backends.sandbox import openapi_fields, openapi_proto, openapi_schemas
from backends.sandbox.resources import RESOURCES, SERVER_VERSION, ResourceType

Obj = dict[str, Any]

PROTO_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# What kube-apiserver labels the protobuf answer with (a "." where the request has "@").
PROTO_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_V3_REF = "#/components/schemas/"
_V2_REF = "#/definitions/"


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _item_path(r: ResourceType) -> str:
    scope = "/namespaces/{namespace}" if r.namespaced else ""
    return f"/{gv_path(r.group, r.version)}{scope}/{r.plural}/{{name}}"


def _operation_id(r: ResourceType) -> str:
    group = "".join(p.capitalize() for p in r.group.split(".")[0].split("-")) or "Core"
    scope = "Namespaced" if r.namespaced else ""
    return f"patch{group}{r.version.capitalize()}{scope}{r.kind}"


def _path_parameters(r: ResourceType) -> list[Obj]:
    names = ["name", "namespace"] if r.namespaced else ["name"]
    return [{"name": n, "in": "path", "required": True, "type": "string"} for n in names]


def _patch_v2(r: ResourceType, definition: str) -> Obj:
    query = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
    return {
        "consumes": list(PATCH_TYPES),
        "produces": ["application/json"],
        "operationId": _operation_id(r),
        "parameters": [
            {"name": q, "in": "query", "type": "boolean" if q == "force" else "string"}
            for q in query
        ],
        "responses": {"200": {"description": "OK", "schema": {"$ref": _V2_REF + definition}}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": r.group, "kind": r.kind, "version": r.version},
    }


def _v3_operation(op: Obj) -> Obj:
    """A Swagger 2.0 operation as OpenAPI 3.0 (parameters' types move under "schema")."""
    out = {k: v for k, v in op.items() if k not in ("consumes", "produces", "responses")}
    out["parameters"] = [_v3_parameter(p) for p in op["parameters"]]
    schema = {"$ref": _V3_REF + op["responses"]["200"]["schema"]["$ref"].removeprefix(_V2_REF)}
    out["responses"] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}}
    }
    return out


def _v3_parameter(p: Obj) -> Obj:
    out = {k: v for k, v in p.items() if k != "type"}
    out["schema"] = {"type": p["type"]}
    return out


def to_v3(schema: Any, definitions: dict[str, Obj]) -> Any:
    """A Swagger 2.0 schema as OpenAPI 3.0: refs move to #/components/schemas, and a ref that
    carries a description or extensions is wrapped in allOf (3.0 ignores a $ref's siblings),
    as upstream does.

    Except a ref whose description is only its target's own (the client had none for the
    field): wrapped, `kubectl explain` would print it twice (the field's, then the allOf
    target's); a sibling of the $ref it prints once, and a reader ignoring siblings loses
    nothing."""
    if isinstance(schema, list):
        return [to_v3(s, definitions) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_v3(v, definitions) for k, v in schema.items()}
    ref = out.pop("$ref", None)
    if ref is None:
        return out
    target = ref.removeprefix(_V2_REF)
    v3_ref = {"$ref": _V3_REF + target}
    if not out:
        return v3_ref
    if out.get("description") == definitions.get(target, {}).get("description"):
        return {**v3_ref, **out}
    return {"allOf": [v3_ref], **out}


# Upstream's v3 forms of the two types that hold a number or a string.
_V3_FORMS: dict[str, Obj] = {
    openapi_schemas.INT_OR_STRING: {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    },
    openapi_schemas.QUANTITY: {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


def _v3_definition(name: str, definitions: dict[str, Obj]) -> Obj:
    form = _V3_FORMS.get(name)
    if form is not None:
        return {"description": definitions[name]["description"], **form}
    converted: Obj = to_v3(definitions[name], definitions)
    return converted


def _dumps(doc: Obj) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _etag(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


@dataclass
class Documents:
    definitions: dict[str, Obj]
    v2_json: bytes
    v3: dict[str, bytes]
    v3_hash: dict[str, str]
    root: bytes
    kinds: dict[tuple[str, str, str], str]
    fields: openapi_fields.Fields
    _proto: bytes | None = field(default=None, repr=False)
    _proto_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def v2_proto(self) -> bytes:
        with self._proto_lock:
            if self._proto is None:
                self._proto = openapi_proto.document(json.loads(self.v2_json))
            return self._proto


def build(definitions: dict[str, Obj], roots: dict[tuple[str, str], list[str]]) -> Documents:
    info = {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]}
    kinds: dict[tuple[str, str, str], str] = {}
    v2_paths: Obj = {}
    v3_paths: dict[tuple[str, str], Obj] = {}
    for r in RESOURCES:
        definition = next(
            d
            for d in roots[(r.group, r.version)]
            if definitions[d]["x-kubernetes-group-version-kind"][0]["kind"] == r.kind
        )
        kinds[(r.group, r.version, r.kind)] = definition
        op = _patch_v2(r, definition)
        params = _path_parameters(r)
        v2_paths[_item_path(r)] = {"patch": op, "parameters": params}
        v3_paths.setdefault((r.group, r.version), {})[_item_path(r)] = {
            "patch": _v3_operation(op),
            "parameters": [_v3_parameter(p) for p in params],
        }
    v3: dict[str, bytes] = {}
    hashes: dict[str, str] = {}
    for (group, version), paths in sorted(v3_paths.items()):
        names = openapi_schemas.reachable(definitions, roots[(group, version)])
        doc = {
            "openapi": "3.0.0",
            "info": info,
            "paths": paths,
            "components": {"schemas": {n: _v3_definition(n, definitions) for n in names}},
        }
        path = gv_path(group, version)
        v3[path] = _dumps(doc)
        hashes[path] = _etag(v3[path])
    root = {
        "paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"} for p, h in hashes.items()}
    }
    v2 = {
        "swagger": "2.0",
        "info": info,
        "paths": v2_paths,
        "definitions": definitions,
    }
    return Documents(
        definitions=definitions,
        v2_json=_dumps(v2),
        v3=v3,
        v3_hash=hashes,
        root=_dumps(root),
        kinds=kinds,
        fields=openapi_fields.Fields(definitions),
    )


# -- the per-process documents, and the definitions kept across processes --------------
_lock = threading.Lock()
_documents: Documents | None = None
_SOURCES = ("openapi_schemas.py", "openapi_tables.py", "resources.py")


def _cache_file() -> Path | None:
    """Where the definitions built from this client by this code are kept, or None."""
    try:
        import platformdirs

        spec = importlib.util.find_spec("kubernetes")  # found, not imported: that is slow
        key = hashlib.sha256(importlib.metadata.version("kubernetes").encode())
        key.update(str(spec.origin if spec else "").encode())
        here = Path(__file__).parent
        for name in _SOURCES:
            key.update((here / name).read_bytes())
    except (ImportError, ValueError, OSError):  # PackageNotFoundError is an ImportError
        return None
    return Path(platformdirs.user_cache_dir("bva")) / "sandbox-openapi" / f"{key.hexdigest()}.json"


def _forget_old(folder: Path, keep: int = 4) -> None:
    """Each client upgrade or change to these modules leaves a file; keep the newest few
    (a few, not one, so checkouts of different versions side by side do not evict each
    other)."""
    with contextlib.suppress(OSError):
        files = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink()


def _load_definitions() -> tuple[dict[str, Obj], dict[tuple[str, str], list[str]]]:
    path = _cache_file()
    if path is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            cached = json.loads(path.read_text())
            roots = {(g, v): names for g, v, names in cached["roots"]}
            return cached["definitions"], roots
    definitions, roots = openapi_schemas.build_definitions()
    if path is not None:
        body = {"definitions": definitions, "roots": [[g, v, n] for (g, v), n in roots.items()]}
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed, so that a sandbox starting beside never reads half.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(body, f)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            _forget_old(path.parent)
    return definitions, roots


def documents() -> Documents:
    """The documents, built on first use (blocking; see `documents_async`)."""
    global _documents
    with _lock:
        if _documents is None:
            _documents = build(*_load_definitions())
        return _documents


async def documents_async() -> Documents:
    if _documents is not None:
        return _documents
    return await asyncio.to_thread(documents)


# -- HTTP -------------------------------------------------------------------------------
def _accepts(request: web.Request) -> list[str]:
    """The media types of the Accept header, preferred first (q=0 ones dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(request.headers.get("Accept", "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                with contextlib.suppress(ValueError):
                    q = float(p[2:])
        if media and q > 0:
            ranked.append((-q, i, media.lower()))
    return [m for _, _, m in sorted(ranked)] or ["*/*"]


def _wants_json(media: str) -> bool:
    return media in ("application/json", "application/*", "*/*")


def _not_acceptable() -> web.Response:
    return web.Response(status=406, text="406 Not Acceptable")


def _answer(
    request: web.Request, body: bytes, content_type: str, etag: str, headers: dict[str, str]
) -> web.Response:
    headers = {**headers, "Etag": f'"{etag}"', "Vary": "Accept"}
    if request.headers.get("If-None-Match", "").strip() == f'"{etag}"':
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=body, headers=headers)


async def serve_v3_root(request: web.Request) -> web.Response:
    if not any(_wants_json(m) for m in _accepts(request)):
        return _not_acceptable()
    docs = await documents_async()
    return _answer(request, docs.root, "application/json", _etag(docs.root), {})


async def serve_v3(request: web.Request) -> web.Response:
    path = request.match_info["path"].strip("/")
    docs = await documents_async()
    if path not in docs.v3:
        raise web.HTTPNotFound()
    if not any(_wants_json(m) for m in _accepts(request)):
        return _not_acceptable()
    current = docs.v3_hash[path]
    headers: dict[str, str] = {}
    asked = request.query.get("hash")
    if asked is not None:
        if asked != current:
            # As kube-apiserver: an old link moves to the current document.
            raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={current}")
        # The hash names this content for good: clients may keep it.
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = formatdate(time.time() + 365 * 86400, usegmt=True)
    return _answer(request, docs.v3[path], "application/json", current, headers)


async def serve_v2(request: web.Request) -> web.Response:
    docs = await documents_async()
    for media in _accepts(request):
        if media in (PROTO_V2, PROTO_V2_CONTENT_TYPE):
            body = await asyncio.to_thread(lambda: docs.v2_proto)
            return _answer(request, body, PROTO_V2_CONTENT_TYPE, _etag(body), {})
        if _wants_json(media):
            return _answer(request, docs.v2_json, "application/json", _etag(docs.v2_json), {})
    return _not_acceptable()


# -- field validation -------------------------------------------------------------------
class StrictDecodingError(ValueError):
    """fieldValidation=Strict and the object has unknown fields (a 400 BadRequest)."""


async def check_fields(
    r: ResourceType, directive: str | None, obj: Any, current: Any = None
) -> tuple[Any, list[str]]:
    """``obj`` (an object of kind ``r``) as the API server would decode it under
    ``fieldValidation=directive``, and the warnings to send: Strict raises
    StrictDecodingError on unknown fields, Warn drops them and warns, Ignore drops them.

    ``current`` is the stored object a patch applied to: unknown fields it already has are
    not the request's doing, and stay. Without the parameter nothing is checked: the API
    server's default is Warn, whose answer differs only by warnings, kubectl always sends
    it, and the sandbox's other clients (the Python client) write typed objects."""
    if directive not in openapi_fields.DIRECTIVES:
        return obj, []
    docs = await documents_async()
    definition = docs.kinds.get((r.group, r.version, r.kind))
    if definition is None or not isinstance(obj, dict):
        return obj, []
    before: set[str] = set()
    if isinstance(current, dict):
        before = set(docs.fields.unknown(definition, current))
    if directive == "Strict":
        unknown = [u for u in docs.fields.unknown(definition, obj) if u not in before]
        if unknown:
            messages = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise StrictDecodingError(f"strict decoding error: {messages}")
        return obj, []
    pruned = copy.deepcopy(obj)
    unknown = [u for u in docs.fields.unknown(definition, pruned, prune=before) if u not in before]
    return pruned, [f'unknown field "{u}"' for u in unknown] if directive == "Warn" else []
