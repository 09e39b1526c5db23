"""A container made like another, with another image: what `docker compose up` does when a
service's image changes, through the Engine API.

The copy keeps what the service was given (environment, command, mounts, ports, networks and
aliases, labels, healthcheck, restart policy, resources) and drops what came from the old
image, so the new image's own defaults (its ENV, CMD, HEALTHCHECK) apply as they would to a
fresh `up`. Pure functions over inspect JSON; the adapter sends the request.
"""

from __future__ import annotations

import copy
from typing import Any

from backends.compose import labels as L

Json = dict[str, Any]

# HostConfig keys the Engine fills in itself, or that do not survive into a create.
_HOST_DROP = ("ContainerIDFile", "Links", "VolumesFrom")


def _minus_image(values: list[Any] | None, image_values: list[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    from_image = set(map(str, image_values or []))
    return [v for v in values if str(v) not in from_image]


def create_spec(
    old: Json,
    old_image: Json,
    *,
    image: str,
    number: int,
    labels: dict[str, str],
) -> tuple[Json, dict[str, Json]]:
    """The body of ``POST /containers/create`` for a copy of ``old`` running ``image``, and
    the networks beyond the first to connect it to (with their aliases) before it starts."""
    config = old.get("Config") or {}
    image_config = old_image.get("Config") or {}
    env = _minus_image(config.get("Env"), image_config.get("Env"))
    cmd = config.get("Cmd")
    if cmd == image_config.get("Cmd"):
        cmd = None
    entrypoint = config.get("Entrypoint")
    if entrypoint == image_config.get("Entrypoint"):
        entrypoint = None
    health = config.get("Healthcheck")
    if health == image_config.get("Healthcheck"):
        health = None
    image_labels = image_config.get("Labels") or {}
    keep = {
        k: v
        for k, v in (config.get("Labels") or {}).items()
        if image_labels.get(k) != v and k not in (L.REVISION, L.HISTORY, L.CAUSE, L.MARKS)
    }
    keep.update(labels)
    keep[L.NUMBER] = str(number)
    host = copy.deepcopy(old.get("HostConfig") or {})
    for key in _HOST_DROP:
        host.pop(key, None)
    networks = ((old.get("NetworkSettings") or {}).get("Networks")) or {}
    # The Engine adds the container's short id and name as aliases itself.
    own = {str(old.get("Id") or "")[:12], str(old.get("Name") or "").lstrip("/")}
    endpoints: dict[str, Json] = {}
    for net, ep in networks.items():
        aliases = [a for a in (ep.get("Aliases") or []) if a not in own]
        endpoints[net] = {"Aliases": aliases} if aliases else {}
    first = dict(list(endpoints.items())[:1])
    body: Json = {
        "Image": image,
        "Env": env,
        "Cmd": cmd,
        "Entrypoint": entrypoint,
        "Labels": keep,
        "ExposedPorts": config.get("ExposedPorts"),
        "WorkingDir": config.get("WorkingDir") or None,
        "User": config.get("User") or None,
        "Tty": bool(config.get("Tty")),
        "OpenStdin": bool(config.get("OpenStdin")),
        "StopSignal": config.get("StopSignal"),
        "StopTimeout": config.get("StopTimeout"),  # compose's stop_grace_period
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": first},
    }
    if health is not None:
        body["Healthcheck"] = health
    more = {k: v for k, v in endpoints.items() if k not in first}
    return {k: v for k, v in body.items() if v is not None}, more


def fixed_host_ports(old: Json) -> bool:
    """The service publishes a fixed host port: a copy cannot run beside the old one (compose
    cannot scale such a service either), so it is recreated in place."""
    bindings = ((old.get("HostConfig") or {}).get("PortBindings")) or {}
    return any(b.get("HostPort") for ports in bindings.values() for b in (ports or []))
