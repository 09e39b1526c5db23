"""What a compose project is now, read from the Engine: its containers (inspected, and kept
while the Engine's summary of them does not change), as instances, workloads, rollouts and
the revisions their labels remember."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from backends.compose import labels as L
from backends.compose.convert import Json, newest, pod_from, rollout_from, service_of, workload_from
from backends.compose.engine import Engine
from backends.compose.state_store import StateStore
from backends.compose.watch import Watcher
from backends.errors import NotFound
from backends.models import EnvRef, KubeEvent, Pod, Revision, RolloutStatus, WatchEvent, Workload
from backends.sanitize import sanitize_text

SCALE_PREFIX = "scale."  # state records: services bva scaled to 0
# Engine event actions shown as warnings on a container's events.
_WARNING_ACTIONS = frozenset({"die", "oom", "kill", "health_status: unhealthy"})


class ComposeReads:
    def __init__(
        self,
        *,
        project: str,
        host: str,
        read_only: bool = False,
        services: Sequence[tuple[str, str]] | Sequence[Sequence[str]] = (),
        request_timeout: float = 30.0,
    ) -> None:
        self.project = project
        self.engine = Engine(host, timeout=request_timeout)
        self._read_only = read_only
        self._services = [(str(s[0]), str(s[1])) for s in services]
        self.request_timeout = request_timeout
        # container id -> ((State, Status) of the summary it was inspected at, inspect JSON)
        self._inspected: dict[str, tuple[tuple[str, str], Json]] = {}
        self.state = StateStore(self.engine, self.project)

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- the containers ---------------------------------------------------------------------
    def _list_blocking(self) -> list[Json]:
        def summary(api: Any) -> list[Json]:
            flt = {"label": [f"{L.PROJECT}={self.project}"]}
            rows: list[Json] = api.containers(all=True, filters=flt)
            return rows

        rows = self.engine.call(f"listing project {self.project}", summary)
        out: list[Json] = []
        seen: set[str] = set()
        for row in rows:
            cid = str(row.get("Id") or "")
            labels = row.get("Labels") or {}
            if not cid or L.is_oneoff(labels):
                continue
            seen.add(cid)
            mark = (str(row.get("State") or ""), str(row.get("Status") or ""))
            cached = self._inspected.get(cid)
            if cached is None or cached[0] != mark:

                def inspect(api: Any, c: str = cid) -> Json:
                    data: Json = api.inspect_container(c)
                    return data

                try:
                    data = self.engine.call(f"inspecting {cid[:12]}", inspect)
                except NotFound:
                    continue  # removed between the list and the inspect
                self._inspected[cid] = (mark, data)
                cached = self._inspected[cid]
            out.append(cached[1])
        for gone in set(self._inspected) - seen:
            del self._inspected[gone]
        return out

    async def _containers(self) -> list[Json]:
        return await asyncio.to_thread(self._list_blocking)

    def _groups(self, containers: Sequence[Json]) -> dict[tuple[str, str, str], list[Json]]:
        """(workload name, platform service, track) -> its containers."""
        groups: dict[tuple[str, str, str], list[Json]] = defaultdict(list)
        for c in containers:
            labels = (c.get("Config") or {}).get("Labels") or {}
            service, compose = service_of(labels)
            if compose:
                groups[(compose, service, L.track_of(labels))].append(c)
        return groups

    async def _of(self, name: str) -> list[Json]:
        """The containers of one workload (a compose service's name, or its canary's)."""
        return [
            c
            for (workload, _, _), cs in self._groups(await self._containers()).items()
            if workload == name
            for c in cs
        ]

    # -- the contract's reads -----------------------------------------------------------------
    async def _zeroed(self) -> set[str]:
        """The services bva scaled to 0 (their containers stopped, kept as the template)."""
        records = await asyncio.to_thread(self.state.values, SCALE_PREFIX)
        return {k[len(SCALE_PREFIX) :] for k, v in records.items() if v == "0"}

    async def list_workloads(self) -> list[Workload]:
        containers, zeroed = await asyncio.gather(self._containers(), self._zeroed())
        groups = self._groups(containers)
        return [
            workload_from(w, s, t, cs, scaled_to=0 if w.lower() in zeroed else None)
            for (w, s, t), cs in sorted(groups.items())
        ]

    async def get_workload(self, name: str) -> Workload:
        containers = await self._of(name)
        if not containers:
            raise NotFound(f'service "{name}" not found in project {self.project}')
        return await self._workload(name, containers)

    async def _workload(self, name: str, containers: Sequence[Json]) -> Workload:
        labels = (newest(containers) or {}).get("Config", {}).get("Labels") or {}
        service, _ = service_of(labels)
        zeroed = name.lower() in await self._zeroed()
        return workload_from(
            name, service, L.track_of(labels), containers, scaled_to=0 if zeroed else None
        )

    def watch_workloads(self) -> AsyncGenerator[WatchEvent[Workload], None]:
        return Watcher(self.engine, self.project, self.list_workloads, lambda w: w.name).events()

    async def list_instances(self, service: str | None = None) -> list[Pod]:
        pods = [pod_from(c) for c in await self._containers()]
        pods = [p for p in pods if service is None or p.service == service]
        return sorted(pods, key=lambda p: (p.service, p.track, p.name))

    def watch_instances(self, service: str | None = None) -> AsyncGenerator[WatchEvent[Pod], None]:
        async def listing() -> list[Pod]:
            return await self.list_instances(service)

        return Watcher(self.engine, self.project, listing, lambda p: p.uid).events()

    async def rollout_status(self, name: str) -> RolloutStatus:
        containers = await self._of(name)
        if not containers:
            raise NotFound(f'service "{name}" not found in project {self.project}')
        return rollout_from(await self._workload(name, containers), containers)

    async def history(self, name: str) -> list[Revision]:
        """The revisions the newest container's labels remember (compose keeps no history:
        bva writes it on every container it creates), the current one marked."""
        containers = await self._of(name)
        if not containers:
            return []
        latest = newest(containers) or {}
        labels = (latest.get("Config") or {}).get("Labels") or {}
        current = self._revision(name, containers)
        entries = L.history_of(labels)
        template = template_of(latest)
        out = [
            Revision(
                revision=rev,
                replicaset=f"{name}@{rev}",
                images={name: image},
                change_cause=cause or None,
                created=created,
                is_current=current is not None and rev == current.revision,
                # bva's recreates change the image only: a revision is today's config with
                # its image (what a rollback to it will run).
                template=_with_image(template, image),
            )
            for rev, image, created, cause in entries
        ]
        if current is not None and not any(r.is_current for r in out):
            out.append(current)
        return out

    async def current_revision(self, name: str) -> Revision | None:
        return self._revision(name, await self._of(name))

    def _revision(self, name: str, containers: Sequence[Json]) -> Revision | None:
        latest = newest(containers)
        if latest is None:
            return None
        config = latest.get("Config") or {}
        labels = config.get("Labels") or {}
        rev = labels.get(L.REVISION, "")
        image = str(config.get("Image") or "")
        pods = [pod_from(c) for c in containers]
        return Revision(
            revision=int(rev) if rev.isdigit() else 1,
            replicaset=f"{name}@{rev or 1}",
            images={name.removesuffix(L.CANARY_SUFFIX): image},
            change_cause=labels.get(L.CAUSE) or None,
            created=pod_from(latest).created,
            replicas=len(pods),
            ready=sum(1 for p in pods if p.is_ready),
            is_current=True,
            template=template_of(latest),
        )

    async def events(self, kind: str, name: str, limit: int = 50) -> list[KubeEvent]:
        """The Engine's events of the last hour for one container (or a service's)."""
        now = time.time()
        key = "container" if kind == "Pod" else "label"
        value = name if key == "container" else f"{L.SERVICE}={name}"
        flt = {"type": ["container"], key: [value]}
        if key == "container":
            flt["label"] = [f"{L.PROJECT}={self.project}"]
        else:
            flt["label"] = [f"{L.PROJECT}={self.project}", value]
            flt.pop(key, None)

        def read(api: Any) -> list[Json]:
            stream = api.events(since=int(now - 3600), until=int(now) + 1, decode=True, filters=flt)
            return list(stream)

        raw = await asyncio.to_thread(self.engine.call, f"events of {name}", read)
        out: list[KubeEvent] = []
        for e in raw[-limit:]:
            action = str(e.get("Action") or e.get("status") or "")
            attrs = (e.get("Actor") or {}).get("Attributes") or {}
            who = str(attrs.get("name") or name)
            ts = float(e.get("timeNano") or 0) / 1e9 or float(e.get("time") or 0) or None
            detail = f" (exit code {attrs['exitCode']})" if "exitCode" in attrs else ""
            out.append(
                KubeEvent(
                    type="Warning" if action in _WARNING_ACTIONS else "Normal",
                    reason=sanitize_text(action, 60),
                    message=sanitize_text(f"container {who} {action}{detail}", 300),
                    object_kind="Pod" if kind == "Pod" else "Deployment",
                    object_name=sanitize_text(who, 253),
                    first_timestamp=ts,
                    last_timestamp=ts,
                    source="dockerd",
                )
            )
        return out

    async def workload_env(self, name: str) -> list[EnvRef]:
        """The variables the service's newest container gets, by name only (compose passes
        values literally; they are never kept)."""
        containers = await self._of(name)
        latest = newest(containers)
        if latest is None:
            raise NotFound(f'service "{name}" not found in project {self.project}')
        env = (latest.get("Config") or {}).get("Env") or []
        names = sorted({str(e).split("=", 1)[0] for e in env if str(e)})
        return [EnvRef(name, sanitize_text(n, 120), "literal") for n in names]

    async def list_autoscalers(self) -> list[Any]:
        return []  # compose scales by hand (`--scale`): there is no autoscaler to read

    async def secret_keys(self, name: str) -> frozenset[str] | None:
        """Compose secrets are files mounted at /run/secrets/<name>: the "keys" of one are the
        services' mounts of it (a value is never read)."""
        for c in await self._containers():
            for m in c.get("Mounts") or []:
                if str(m.get("Destination") or "") == f"/run/secrets/{name}":
                    return frozenset({name})
        return None

    async def config_map_keys(self, name: str) -> frozenset[str] | None:
        return None  # compose has no ConfigMaps

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.close)


def template_of(c: Json) -> dict[str, Any]:
    """A container's config in the shape of a pod template, so that the rollback diff (which
    masks secret-looking values) reads it: the image, env, ports, healthcheck and restart."""
    config = c.get("Config") or {}
    host = c.get("HostConfig") or {}
    labels = config.get("Labels") or {}
    _, compose = service_of(labels)
    env = []
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env.append({"name": key, "value": value})
    container: dict[str, Any] = {
        "name": compose.removesuffix(L.CANARY_SUFFIX),
        "image": config.get("Image"),
        "env": env,
    }
    if config.get("Healthcheck"):
        container["healthcheck"] = config["Healthcheck"]
    if config.get("Cmd"):
        container["command"] = config["Cmd"]
    spec: dict[str, Any] = {"containers": [container]}
    policy = (host.get("RestartPolicy") or {}).get("Name")
    if policy:
        spec["restartPolicy"] = policy
    # The labels of the service, not of one container (its number) nor bva's bookkeeping.
    keep = {k: v for k, v in labels.items() if not k.startswith(L.P) and k != L.NUMBER}
    return {"metadata": {"labels": keep}, "spec": spec}


def _with_image(template: dict[str, Any], image: str) -> dict[str, Any]:
    spec = dict(template.get("spec") or {})
    spec["containers"] = [{**c, "image": image} for c in spec.get("containers") or []]
    return {**template, "spec": spec}
