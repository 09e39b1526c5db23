"""The three patch types kubectl and client libraries send (apply-patch is not served)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# patchMergeKey of the list fields our resources carry (k8s.io/api struct tags).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
# Primitive lists with patchStrategy=merge: union instead of replace.
MERGED_PRIMITIVE_LISTS = {"finalizers"}


class PatchError(ValueError):
    pass


def json_patch(target: Obj, ops: Any) -> Obj:
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    try:
        result = jsonpatch.JsonPatch(ops).apply(copy.deepcopy(target))
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError) as exc:
        raise PatchError(str(exc)) from exc
    if not isinstance(result, dict):
        raise PatchError("json patch must produce an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Obj, patch: Any) -> Obj:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be an object")
    result = _smp_map(target, patch)
    if not isinstance(result, dict):
        raise PatchError("strategic merge patch must produce an object")
    return result


def _smp_map(target: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = set(value or [])
            result[field] = [v for v in result.get(field) or [] if v not in drop]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(field, result[field], order)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(field: str, target: Any, patch: list[Any]) -> list[Any]:
    current = copy.deepcopy(target) if isinstance(target, list) else []
    key = MERGE_KEYS.get(field)
    if key is None:
        if field in MERGED_PRIMITIVE_LISTS:
            return current + [v for v in patch if v not in current]
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [copy.deepcopy(p) for p in patch if not isinstance(p, dict) or "$patch" not in p]
        return copy.deepcopy(patch)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"list {field} items must be objects")
        ident = item.get(key)
        idx = next(
            (i for i, cur in enumerate(current) if isinstance(cur, dict) and cur.get(key) == ident),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                current.pop(idx)
            continue
        if idx is None:
            current.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            current[idx] = _smp_map(current[idx], item)
    return current


def _apply_order(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = MERGE_KEYS.get(field)
    if key is None:
        return items

    def rank(item: Any) -> int:
        for i, o in enumerate(order):
            if isinstance(o, dict) and isinstance(item, dict) and o.get(key) == item.get(key):
                return i
        return len(order)

    return sorted(items, key=rank)


def apply_patch(content_type: str, target: Obj, body: Any) -> Obj:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == JSON_PATCH:
        return json_patch(target, body)
    if ctype == MERGE_PATCH:
        result = merge_patch(target, body)
        if not isinstance(result, dict):
            raise PatchError("merge patch must produce an object")
        return result
    if ctype == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(target, body)
    raise PatchError(f"unsupported patch type {ctype!r}")
