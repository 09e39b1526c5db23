"""A minimal OpenAPI v3 discovery, so that ``kubectl apply`` (which validates by default)
works against the sandbox.

kubectl asks /openapi/v3 for the group-versions, then the document of the one it writes to,
and looks for a PATCH operation of the kind that takes the ``fieldValidation`` query
parameter: when it finds one it leaves validation to the server and needs no schema. The
documents therefore carry only those operations (no schemas, no strategic-merge request
body, so kubectl computes apply patches from its built-in types, as it does without
OpenAPI). The sandbox accepts ``fieldValidation`` and, like an old server, ignores it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from backends.sandbox.resources import RESOURCES, SERVER_VERSION, ResourceType

Obj = dict[str, Any]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _patch_path(r: ResourceType) -> str:
    base = "/" + _gv_path(r.group, r.version)
    scope = "/namespaces/{namespace}" if r.namespaced else ""
    return f"{base}{scope}/{r.plural}/{{name}}"


def group_version_document(path: str) -> Obj | None:
    """The document for "apis/autoscaling/v2" (or "api/v1"); None for one not served."""
    types = [r for r in RESOURCES if _gv_path(r.group, r.version) == path]
    if not types:
        return None
    paths: Obj = {}
    for r in types:
        paths[_patch_path(r)] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": r.group,
                    "version": r.version,
                    "kind": r.kind,
                },
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
    }


def _hash(doc: Obj) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def root_document() -> Obj:
    paths: Obj = {}
    for group, version in sorted({(r.group, r.version) for r in RESOURCES}):
        path = _gv_path(group, version)
        doc = group_version_document(path)
        assert doc is not None
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(doc)}"}
    return {"paths": paths}
