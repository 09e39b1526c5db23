"""The environment the sandbox gives a service's pod template, and the Secrets and ConfigMaps
it reads (seeded with dummy values), from the names the platform file lists in ``env``.

The platform file names variables only; where each comes from is decided here, by rule, the
way such platforms are usually wired (names group by their first word, ``DB_URL`` -> "db"):
- SPRING_PROFILES_ACTIVE and SERVER_PORT are literals (the profile, the service's port);
- a sensitive name (a word PASSWORD, SECRET, USERNAME, USER, TOKEN, KEY or URL: a URL can
  carry credentials) reads Secret ``<prefix>-<group>``, key ``db-password`` style;
- its group's other names read ConfigMap ``<prefix>-<group>`` (SMTP_HOST from the SMTP one);
- a group of two or more plain names is imported whole with ``envFrom`` from ConfigMap
  ``<prefix>-<group>`` (LOGGING_LEVEL_ROOT, LOGGING_LEVEL_COM_BHARATHVA);
- anything else is a literal.
Every pod also gets POD_NAME (a field reference) and MEMORY_LIMIT_MI (a resource reference),
as Spring Boot deployments commonly do.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SENSITIVE_WORDS = frozenset({"PASSWORD", "SECRET", "USERNAME", "USER", "TOKEN", "KEY", "URL"})
PROFILE = "prod"


def _group(name: str) -> str:
    return name.split("_", 1)[0].lower()


def _key(name: str) -> str:
    return name.lower().replace("_", "-")


def sensitive(name: str) -> bool:
    return any(word in SENSITIVE_WORDS for word in name.split("_"))


@dataclass
class EnvPlan:
    """A container's env and envFrom, and what the Secrets and ConfigMaps they name hold."""

    env: list[Obj] = field(default_factory=list)
    env_from: list[Obj] = field(default_factory=list)
    secrets: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    config_maps: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))


def plan_env(names: tuple[str, ...], port: int, prefix: str, container: str) -> EnvPlan:
    plan = EnvPlan()
    plan.env.append({"name": "SPRING_PROFILES_ACTIVE", "value": PROFILE})
    plan.env.append({"name": "SERVER_PORT", "value": str(port)})
    rest = [n for n in names if n not in ("SPRING_PROFILES_ACTIVE", "SERVER_PORT")]
    groups: dict[str, list[str]] = defaultdict(list)
    for name in rest:
        groups[_group(name)].append(name)
    for name in rest:
        group = groups[_group(name)]
        ref = f"{prefix}-{_group(name)}"
        if sensitive(name):
            plan.secrets[ref][_key(name)] = f"sandbox-{_key(name)}-not-a-real-secret"
            plan.env.append(_key_ref(name, "secretKeyRef", ref))
        elif any(sensitive(other) for other in group):
            plan.config_maps[ref][_key(name)] = f"sandbox-{_key(name)}"
            plan.env.append(_key_ref(name, "configMapKeyRef", ref))
        elif len(group) > 1:
            if ref not in plan.config_maps:
                plan.env_from.append({"configMapRef": {"name": ref}})
            plan.config_maps[ref][name] = "INFO" if "LEVEL" in name else f"sandbox-{_key(name)}"
        else:
            plan.env.append({"name": name, "value": f"sandbox-{_key(name)}"})
    plan.env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    plan.env.append(
        {
            "name": "MEMORY_LIMIT_MI",
            "valueFrom": {
                "resourceFieldRef": {
                    "containerName": container,
                    "resource": "limits.memory",
                    "divisor": "1Mi",
                }
            },
        }
    )
    return plan


def _key_ref(name: str, kind: str, ref: str) -> Obj:
    return {"name": name, "valueFrom": {kind: {"name": ref, "key": _key(name)}}}
