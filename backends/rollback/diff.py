"""What a rollback changes in a pod template, as lines a human reads at 3 a.m.

Pure functions over API JSON (pod templates as the server returns them). Every value is
masked and sanitised here, so whatever renders a ``TemplateChange`` can print it as it is:
an env var read from a Secret shows as ``secret <name>/<key>`` (never a value), a literal env
var whose name looks secret shows as ``•••``, URL credentials are masked, and no control
character from the cluster survives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.journal.scrub import scrub_text
from backends.kube.rollout_rules import POD_TEMPLATE_HASH, semantic
from backends.sanitize import sanitize_text

__all__ = [
    "ABSENT",
    "MASK",
    "POD",
    "TemplateChange",
    "env_value",
    "looks_secret",
    "referenced_objects",
    "template_diff",
]

ABSENT = "(absent)"
MASK = "•••"
POD = "(pod)"
VALUE_LIMIT = 160

# Names that say "this value is a secret"; deliberately broad (a masked harmless value costs
# nothing, a shown password costs a rotation).
_SECRET_NAME = re.compile(
    r"PASS(?:WORD|WD|PHRASE)|PWD|TOKEN|SECRET|KEY|CREDENTIAL|DSN|PRIVATE|COOKIE|SESSION|AUTH$",
    re.IGNORECASE,
)

# Container fields shown with their own wording; every other field is compared as JSON.
_CONTAINER_HANDLED = frozenset({"name", "image", "env", "envFrom", "resources", "ports"})
_PROBES = ("readinessProbe", "livenessProbe", "startupProbe")


@dataclass(frozen=True, slots=True)
class TemplateChange:
    """One difference between the running template and the one a rollback restores."""

    container: str  # the container's name, "init:<name>" for an init container, "(pod)"
    field: str  # "image", "env SERVER_PORT", "resources.limits.cpu", "readinessProbe", ...
    current: str
    target: str


def looks_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def _clean(text: str) -> str:
    return sanitize_text(scrub_text(text), VALUE_LIMIT)


def _compact(value: Any) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, str):
        return _clean(value)
    return _clean(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


def env_value(var: Mapping[str, Any]) -> str:
    """An env var's value as it may be shown: references named, secret values masked."""
    source = var.get("valueFrom")
    if isinstance(source, Mapping):
        secret = source.get("secretKeyRef")
        if isinstance(secret, Mapping):
            return _clean(f"secret {secret.get('name', '')}/{secret.get('key', '')}")
        config = source.get("configMapKeyRef")
        if isinstance(config, Mapping):
            return _clean(f"configmap {config.get('name', '')}/{config.get('key', '')}")
        field_ref = source.get("fieldRef")
        if isinstance(field_ref, Mapping):
            return _clean(f"field {field_ref.get('fieldPath', '')}")
        resource = source.get("resourceFieldRef")
        if isinstance(resource, Mapping):
            return _clean(f"resource {resource.get('resource', '')}")
        return "(from another source)"
    if looks_secret(str(var.get("name", ""))):
        return MASK
    value = var.get("value")
    return _clean(str(value)) if value is not None else '""'


def _env_map(container: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(v.get("name", "")): v for v in container.get("env") or () if isinstance(v, Mapping)}


def _env_from(container: Mapping[str, Any]) -> str:
    parts = []
    for src in container.get("envFrom") or ():
        if not isinstance(src, Mapping):
            continue
        prefix = str(src.get("prefix") or "")
        for key, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
            ref = src.get(key)
            if isinstance(ref, Mapping):
                parts.append(
                    f"{kind} {ref.get('name', '')}" + (f" (prefix {prefix})" if prefix else "")
                )
    return _clean(", ".join(parts)) if parts else ABSENT


def _flatten(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}"))
        return out
    return {prefix: _compact(value)}


def _ports(container: Mapping[str, Any]) -> str:
    parts = []
    for port in container.get("ports") or ():
        if not isinstance(port, Mapping):
            continue
        name = f"{port.get('name')} " if port.get("name") else ""
        parts.append(f"{name}{port.get('containerPort', '?')}/{port.get('protocol') or 'TCP'}")
    return _clean(", ".join(parts)) if parts else ABSENT


def _probe(probe: Any) -> str:
    """``httpGet /actuator/health :8081, delay 30s, period 10s, timeout 1s, failures 3``."""
    if not isinstance(probe, Mapping):
        return ABSENT
    parts: list[str] = []
    http = probe.get("httpGet")
    if isinstance(http, Mapping):
        scheme = str(http.get("scheme") or "HTTP")
        shown = "httpGet" if scheme == "HTTP" else f"httpGet {scheme}"
        parts.append(f"{shown} {http.get('path', '/')} :{http.get('port', '?')}")
    elif isinstance(probe.get("tcpSocket"), Mapping):
        parts.append(f"tcpSocket :{probe['tcpSocket'].get('port', '?')}")
    elif isinstance(probe.get("grpc"), Mapping):
        parts.append(f"grpc :{probe['grpc'].get('port', '?')}")
    elif isinstance(probe.get("exec"), Mapping):
        command = probe["exec"].get("command") or []
        parts.append("exec " + " ".join(str(c) for c in command))
    for key, word, unit in (
        ("initialDelaySeconds", "delay", "s"),
        ("periodSeconds", "period", "s"),
        ("timeoutSeconds", "timeout", "s"),
        ("successThreshold", "successes", ""),
        ("failureThreshold", "failures", ""),
    ):
        if probe.get(key) is not None:
            parts.append(f"{word} {probe[key]}{unit}")
    return _clean(", ".join(parts)) if parts else _compact(dict(probe))


def _containers(pod_spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for key, prefix in (("initContainers", "init:"), ("containers", "")):
        for c in pod_spec.get(key) or ():
            if isinstance(c, Mapping):
                found[prefix + str(c.get("name", ""))] = c
    return found


def _container_diff(
    name: str, current: Mapping[str, Any], target: Mapping[str, Any]
) -> list[TemplateChange]:
    changes: list[TemplateChange] = []

    def add(field: str, now: str, then: str) -> None:
        if now != then:
            changes.append(TemplateChange(name, field, now, then))

    add("image", _compact(current.get("image")), _compact(target.get("image")))
    cur_env, tgt_env = _env_map(current), _env_map(target)
    for var in [*cur_env, *(v for v in tgt_env if v not in cur_env)]:
        a, b = cur_env.get(var), tgt_env.get(var)
        if a is not None and b is not None and semantic(a) == semantic(b):
            continue
        now = env_value(a) if a is not None else ABSENT
        then = env_value(b) if b is not None else ABSENT
        if now == then:  # both masked, or the same reference written differently
            then = f"{then} (changed)"
        changes.append(TemplateChange(name, f"env {_clean(var)}", now, then))
    add("envFrom", _env_from(current), _env_from(target))
    cur_res = _flatten(current.get("resources") or {}, "resources")
    tgt_res = _flatten(target.get("resources") or {}, "resources")
    for key in [*cur_res, *(k for k in tgt_res if k not in cur_res)]:
        add(key, cur_res.get(key, ABSENT), tgt_res.get(key, ABSENT))
    add("ports", _ports(current), _ports(target))
    for probe in _PROBES:
        a, b = current.get(probe), target.get(probe)
        if semantic(a) != semantic(b):
            now, then = _probe(a), _probe(b)
            if now == then:
                then = f"{_compact(b)}"
                now = f"{_compact(a)}"
            changes.append(TemplateChange(name, probe, now, then))
    handled = _CONTAINER_HANDLED | set(_PROBES)
    others = sorted((set(current) | set(target)) - handled)
    for key in others:
        if semantic(current.get(key)) != semantic(target.get(key)):
            changes.append(
                TemplateChange(name, key, _compact(current.get(key)), _compact(target.get(key)))
            )
    return changes


def _metadata_diff(current: Mapping[str, Any], target: Mapping[str, Any]) -> list[TemplateChange]:
    changes = []
    for key in ("labels", "annotations"):
        a = dict((current.get("metadata") or {}).get(key) or {})
        b = dict((target.get("metadata") or {}).get(key) or {})
        a.pop(POD_TEMPLATE_HASH, None)
        b.pop(POD_TEMPLATE_HASH, None)
        for name in [*a, *(n for n in b if n not in a)]:
            if a.get(name) != b.get(name):
                secret = looks_secret(name)
                now = ABSENT if name not in a else MASK if secret else _compact(a[name])
                then = ABSENT if name not in b else MASK if secret else _compact(b[name])
                if now == then:
                    then = f"{then} (changed)"
                changes.append(TemplateChange(POD, f"{key[:-1]} {_clean(name)}", now, then))
    return changes


def template_diff(
    current: Mapping[str, Any], target: Mapping[str, Any]
) -> tuple[TemplateChange, ...]:
    """The differences a rollback from ``current`` to ``target`` makes, container by container
    (in the current template's order, then containers only the target has), then the pod."""
    cur_spec = current.get("spec") or {}
    tgt_spec = target.get("spec") or {}
    cur_c, tgt_c = _containers(cur_spec), _containers(tgt_spec)
    changes: list[TemplateChange] = []
    for name in [*cur_c, *(n for n in tgt_c if n not in cur_c)]:
        a, b = cur_c.get(name), tgt_c.get(name)
        shown = _clean(name)
        if a is None and b is not None:
            changes.append(TemplateChange(shown, "container", ABSENT, _compact(b.get("image"))))
        elif b is None and a is not None:
            changes.append(TemplateChange(shown, "container", _compact(a.get("image")), ABSENT))
        elif a is not None and b is not None:
            changes.extend(_container_diff(shown, a, b))
    for key in sorted((set(cur_spec) | set(tgt_spec)) - {"containers", "initContainers"}):
        a, b = cur_spec.get(key), tgt_spec.get(key)
        if semantic(a) != semantic(b):
            changes.append(TemplateChange(POD, key, _compact(a), _compact(b)))
    changes.extend(_metadata_diff(current, target))
    return tuple(changes)


def referenced_objects(template: Mapping[str, Any]) -> list[str]:
    """The ConfigMaps and Secrets a pod template reads ("Secret auth-service-secrets"), which
    a rollback does not restore."""
    spec = template.get("spec") or {}
    found: dict[str, None] = {}

    def add(kind: str, name: Any) -> None:
        if name:
            found[f"{kind} {_clean(str(name))}"] = None

    containers: Iterable[Any] = [
        *(spec.get("initContainers") or ()),
        *(spec.get("containers") or ()),
    ]
    for c in containers:
        if not isinstance(c, Mapping):
            continue
        for var in c.get("env") or ():
            source = (var or {}).get("valueFrom") or {}
            add("Secret", (source.get("secretKeyRef") or {}).get("name"))
            add("ConfigMap", (source.get("configMapKeyRef") or {}).get("name"))
        for src in c.get("envFrom") or ():
            add("Secret", ((src or {}).get("secretRef") or {}).get("name"))
            add("ConfigMap", ((src or {}).get("configMapRef") or {}).get("name"))
    for vol in spec.get("volumes") or ():
        if not isinstance(vol, Mapping):
            continue
        add("Secret", (vol.get("secret") or {}).get("secretName"))
        add("ConfigMap", (vol.get("configMap") or {}).get("name"))
        for proj in (vol.get("projected") or {}).get("sources") or ():
            add("Secret", ((proj or {}).get("secret") or {}).get("name"))
            add("ConfigMap", ((proj or {}).get("configMap") or {}).get("name"))
    return list(found)
