"""Secrets, ConfigMaps and HorizontalPodAutoscalers as the API server takes them: defaults,
validation (its wording) and Secret encoding (``stringData`` folded into base64 ``data``),
plus the manifests the sandbox seeds."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

Obj = dict[str, Any]

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_RULE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


class Invalid(Exception):
    """The API server's refusal: HTTP ``code`` with ``reason`` and its message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret_manifest(name: str, namespace: str, values: dict[str, str]) -> Obj:
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: encode(v) for k, v in sorted(values.items())},
    }


def config_map_manifest(name: str, namespace: str, values: dict[str, str]) -> Obj:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(sorted(values.items())),
    }


def prepare(plural: str, obj: Obj) -> None:
    """Default and validate ``obj`` in place; raises ``Invalid``."""
    if plural == "secrets":
        _prepare_secret(obj)
    elif plural == "configmaps":
        _prepare_config_map(obj)
    elif plural == "horizontalpodautoscalers":
        _prepare_autoscaler(obj)


def _invalid(kind: str, obj: Obj, detail: str) -> Invalid:
    name = (obj.get("metadata") or {}).get("name", "")
    return Invalid(422, "Invalid", f'{kind} "{name}" is invalid: {detail}')


def _check_keys(kind: str, obj: Obj, field: str) -> None:
    data = obj.get(field)
    if data is None:
        return
    if not isinstance(data, dict):
        raise Invalid(400, "BadRequest", f"{kind}.{field} must be an object")
    for key in data:
        if len(key) > 253 or not _CONFIG_KEY.match(key):
            raise _invalid(kind, obj, f'{field}[{key}]: Invalid value: "{key}": {_KEY_RULE}')


def _prepare_secret(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    _check_keys("Secret", obj, "data")
    _check_keys("Secret", obj, "stringData")
    data = obj.get("data") or {}
    for key, value in data.items():
        # Decoded to check only; the server keeps what was sent.
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(
                400,
                "BadRequest",
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                f"in data[{key}]",
            ) from None
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = encode(str(value))
    if data:
        obj["data"] = data


def _prepare_config_map(obj: Obj) -> None:
    _check_keys("ConfigMap", obj, "data")
    _check_keys("ConfigMap", obj, "binaryData")
    for key, value in (obj.get("data") or {}).items():
        if not isinstance(value, str):
            raise Invalid(
                400,
                "BadRequest",
                f'ConfigMap in version "v1" cannot be handled as a ConfigMap: data[{key}] '
                "must be a string",
            )
    both = set(obj.get("data") or {}) & set(obj.get("binaryData") or {})
    if both:
        key = sorted(both)[0]
        raise _invalid(
            "ConfigMap", obj, f'data[{key}]: Invalid value: "{key}": duplicate of key present '
            "in binaryData",
        )  # fmt: skip


def _prepare_autoscaler(obj: Obj) -> None:
    kind = "HorizontalPodAutoscaler.autoscaling"
    spec = obj.setdefault("spec", {})
    ref = spec.get("scaleTargetRef") or {}
    if not ref.get("kind"):
        raise _invalid(kind, obj, "spec.scaleTargetRef.kind: Required value")
    if not ref.get("name"):
        raise _invalid(kind, obj, "spec.scaleTargetRef.name: Required value")
    spec.setdefault("minReplicas", 1)
    lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
    if not isinstance(lo, int) or lo < 1:
        raise _invalid(
            kind, obj, f"spec.minReplicas: Invalid value: {lo}: must be greater than or equal to 1"
        )
    if not isinstance(hi, int) or hi < lo:
        raise _invalid(
            kind,
            obj,
            f"spec.maxReplicas: Invalid value: {hi}: must be greater than or equal to "
            "`minReplicas`",
        )
    if not spec.get("metrics"):
        # autoscaling/v2 defaulting: no metric means 80% CPU utilization.
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    obj.setdefault("status", {})
