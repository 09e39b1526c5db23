"""The compose adapter's changes: rolling recreates to a new image (a release, a rollback),
scaling, and canary containers beside the stable ones with their release state (the lock and
sign-offs are in release_state.py). Read-only refuses each before a request leaves the process.

A rolling recreate runs as a task of this process, one container at a time: a copy with the
new image is created and started, waited on until it is ready (its HEALTHCHECK healthy, or
running for a second without one), then the old one is stopped and removed. A copy that
crash-loops or never gets ready stops the rollout there, old containers kept, as a
Deployment's stuck rollout: ``rollout_status`` says it failed. A service that publishes a
fixed host port cannot run two copies at once; it is recreated in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from backends.compose import labels as L
from backends.compose.convert import Json, newest, pod_from
from backends.compose.reads import SCALE_PREFIX
from backends.compose.recreate import create_spec, fixed_host_ports
from backends.compose.release_state import ReleaseRecords
from backends.errors import BvaError, Conflict, NotFound, RolloutRefused
from backends.models import Canary, Workload

READY_FOR_S = 1.0  # a container without a HEALTHCHECK counts as ready after this long up
POLL_S = 0.2
CAS_RETRIES = 8


class ComposeChanges(ReleaseRecords):
    def __init__(self, *, progress_deadline: float = 120.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.progress_deadline = progress_deadline
        self._rollouts: dict[str, asyncio.Task[None]] = {}
        self._paused: dict[str, asyncio.Event] = {}
        self.problems: dict[str, str] = {}  # workload -> why its last rollout stopped

    def _run(self, what: str, fn: Any) -> Any:
        return asyncio.to_thread(self.engine.call, what, fn)

    # -- one container ------------------------------------------------------------------------
    def _numbers(self, containers: Sequence[Json]) -> int:
        nums = [
            int(n)
            for c in containers
            if (n := ((c.get("Config") or {}).get("Labels") or {}).get(L.NUMBER, "")).isdigit()
        ]
        return max(nums, default=0)

    async def _copy(
        self, old: Json, *, image: str, compose: str, number: int, labels: dict[str, str]
    ) -> str:
        """Create and start a copy of ``old`` with ``image``; returns its id."""
        old_image = await self._run(
            f"inspecting image {old['Image'][:19]}", lambda api: api.inspect_image(old["Image"])
        )
        name = f"{self.project}-{compose}-{number}"
        body, more = create_spec(
            old, old_image, image=image, number=number, labels={L.SERVICE: compose, **labels}
        )

        def create(api: Any) -> str:
            made = api.create_container_from_config(body, name)
            cid = str(made["Id"])
            for net, ep in more.items():
                api.connect_container_to_network(cid, net, aliases=ep.get("Aliases"))
            start_container(api, cid)
            return cid

        cid: str = await self._run(f"creating {name}", create)
        return cid

    async def _wait_ready(self, cid: str, deadline: float) -> str:
        """ "" once ready; else why not (it crash-loops, exited, or the deadline passed)."""
        while time.monotonic() < deadline:
            c = await self._run("inspecting", lambda api: api.inspect_container(cid))
            pod = pod_from(c)
            if pod.restarts >= 2 or pod.status.startswith("Exited") or pod.status == "OOMKilled":
                return f"container {pod.name} {pod.status}, {pod.restarts} restarts"
            state = c.get("State") or {}
            has_check = bool(state.get("Health"))
            up_for = time.time() - (pod.started or time.time())
            if pod.is_ready and (has_check or up_for >= READY_FOR_S):
                return ""
            await asyncio.sleep(POLL_S)
        return f"not ready within {self.progress_deadline:g}s"

    async def _remove(self, cid: str, timeout: int | None = None) -> None:
        """Stop (within the container's own stop timeout, compose's stop_grace_period, unless
        told), then remove."""

        def gone(api: Any) -> None:
            with contextlib.suppress(Exception):
                api.stop(cid, timeout=timeout)
            api.remove_container(cid, force=True)

        with contextlib.suppress(NotFound):
            await self._run("removing a container", gone)

    # -- rolling recreate ---------------------------------------------------------------------
    async def _roll(self, name: str, old: list[Json], image: str, labels: dict[str, str]) -> None:
        """Replace each of ``old`` with a copy on ``image``, one at a time."""
        number = self._numbers(await self._of(name))
        deadline = time.monotonic() + self.progress_deadline
        for c in old:
            pause = self._paused.get(name)
            if pause is not None:
                await pause.wait()
            number += 1
            in_place = fixed_host_ports(c)
            if in_place:
                await self._run("stopping", lambda api, cid=c["Id"]: api.stop(cid))
            try:
                cid = await self._copy(c, image=image, compose=name, number=number, labels=labels)
            except BvaError as exc:
                self.problems[name] = str(exc)
                if in_place:
                    await self._run("starting", lambda api, cid=c["Id"]: api.start(cid))
                return
            why = await self._wait_ready(cid, deadline)
            if why:
                self.problems[name] = why
                if in_place:  # the service must not stay down: the old one comes back
                    await self._remove(cid, timeout=0)
                    await self._run("starting", lambda api, cid=c["Id"]: api.start(cid))
                return
            await self._remove(str(c["Id"]))
            deadline = time.monotonic() + self.progress_deadline

    def _start_roll(self, name: str, old: list[Json], image: str, labels: dict[str, str]) -> None:
        running = self._rollouts.get(name)
        if running is not None and not running.done():
            running.cancel()
        self.problems.pop(name, None)
        self._rollouts[name] = asyncio.ensure_future(self._roll(name, old, image, labels))

    def _history_labels(self, latest: Json, image: str, cause: str | None) -> dict[str, str]:
        labels = (latest.get("Config") or {}).get("Labels") or {}
        history = L.history_of(labels)
        current = labels.get(L.REVISION, "")
        current_rev = int(current) if current.isdigit() else 1
        if not any(rev == current_rev for rev, *_ in history):
            created = pod_from(latest).created
            old_image = str((latest.get("Config") or {}).get("Image") or "")
            history.append((current_rev, old_image, created, labels.get(L.CAUSE, "")))
        rev = max(r for r, *_ in history) + 1
        history.append((rev, image, time.time(), cause or ""))
        out = {L.REVISION: str(rev), L.HISTORY: L.history_json(history)}
        if cause:
            out[L.CAUSE] = cause
        return out

    async def _image_exists(self, image: str) -> None:
        try:
            await self._run(f"image {image}", lambda api: api.inspect_image(image))
        except NotFound:
            raise RolloutRefused(
                f"image {image} is not on the Docker Engine at {self.engine.host} "
                "(pull or build it first)"
            ) from None

    async def set_image(
        self, name: str, container: str, image: str, change_cause: str | None = None
    ) -> Workload:
        self._writable(f"setting the image of {name}")
        stable = [c for c in await self._of(name) if L.track_of(_labels(c)) == "stable"]
        if not stable:
            raise NotFound(f'service "{name}" not found in project {self.project}')
        await self._image_exists(image)
        latest = newest(stable) or {}
        labels = self._history_labels(latest, image, change_cause)
        old = sorted(stable, key=lambda c: _labels(c).get(L.NUMBER, ""))
        if not fixed_host_ports(old[0]):
            # The first copy before returning: from now on the service's newest container
            # carries the new image, so a rollout status read next sees the rollout.
            number = self._numbers(stable) + 1
            cid = await self._copy(old[0], image=image, compose=name, number=number, labels=labels)
            first = await self._run("inspecting", lambda api: api.inspect_container(cid))
            old = [first, *old]  # waited on like the others, then the rest replaced

            async def roll_rest() -> None:
                why = await self._wait_ready(cid, time.monotonic() + self.progress_deadline)
                if why:
                    self.problems[name] = why
                    return
                await self._remove(str(old[1]["Id"]))
                await self._roll(name, old[2:], image, labels)

            running = self._rollouts.get(name)
            if running is not None and not running.done():
                running.cancel()
            self.problems.pop(name, None)
            self._rollouts[name] = asyncio.ensure_future(roll_rest())
        else:
            self._start_roll(name, old, image, labels)
        return await self.get_workload(name)

    async def scale(self, name: str, replicas: int) -> None:
        """Like `docker compose up --scale`; scaled to 0 the containers are stopped, not
        removed (compose would recreate them from its file; here they are the template)."""
        self._writable(f"scaling {name}")
        containers = sorted(await self._of(name), key=_number)
        if not containers:
            raise NotFound(f'service "{name}" not found in project {self.project}')
        key = SCALE_PREFIX + name.lower()
        if replicas == 0:
            _, seq = await asyncio.to_thread(self.state.read, key)
            await asyncio.to_thread(self.state.write, key, "0", seq)
            for c in containers:
                await self._run("stopping", lambda api, cid=c["Id"]: api.stop(cid))
            return
        stopped = [c for c in containers if (c.get("State") or {}).get("Status") != "running"]
        for c in stopped[:replicas]:
            await self._run("starting", lambda api, cid=c["Id"]: start_container(api, cid))
        await asyncio.to_thread(self.state.delete, key)
        containers = sorted(await self._of(name), key=_number)
        latest = newest(containers) or containers[-1]
        image = str((latest.get("Config") or {}).get("Image") or "")
        number = self._numbers(containers)
        for _ in range(replicas - len(containers)):
            number += 1
            keep = {k: v for k, v in _labels(latest).items() if k.startswith(L.P)}
            await self._copy(latest, image=image, compose=name, number=number, labels=keep)
        for c in reversed(containers[replicas:] if replicas < len(containers) else []):
            await self._remove(str(c["Id"]))

    async def pause(self, name: str) -> None:
        """Hold a rolling recreate between two containers (compose itself cannot pause)."""
        self._writable(f"pausing {name}")
        self._paused.setdefault(name, asyncio.Event())

    async def resume(self, name: str) -> None:
        self._writable(f"resuming {name}")
        event = self._paused.pop(name, None)
        if event is not None:
            event.set()

    async def undo(self, name: str, to_revision: int | None = None) -> str:
        self._writable(f"rolling back {name}")
        revisions = await self.history(name)
        current = next((r for r in revisions if r.is_current), None)
        if current is None:
            raise NotFound(f'service "{name}" not found in project {self.project}')
        if to_revision:
            target = next((r for r in revisions if r.revision == to_revision), None)
            if target is None:
                raise RolloutRefused(f"unable to find the specified revision {to_revision}")
        else:
            older = [r for r in revisions if r.revision < current.revision]
            if not older:
                raise RolloutRefused(f'no rollout history found for service "{name}"')
            target = older[-1]
        image = next(iter(target.images.values()), "")
        if image == next(iter(current.images.values()), ""):
            return (
                f"service/{name} skipped rollback "
                f"(current image already matches revision {target.revision})"
            )
        await self.set_image(
            name, name, image, change_cause=f"rollback to revision {target.revision}"
        )
        return f"service/{name} rolled back"

    # -- canaries ---------------------------------------------------------------------------
    async def canaries(self, services: Sequence[tuple[str, str]]) -> dict[str, Canary]:
        groups = self._groups(await self._containers())
        out: dict[str, Canary] = {}
        for service, stable in services:
            name = stable + L.CANARY_SUFFIX
            cs = [
                c
                for (w, _, t), group in groups.items()
                if w == name and t == "canary"
                for c in group
            ]
            if not cs:
                continue
            pods = [pod_from(c) for c in cs]
            latest = newest(cs) or {}
            marks, _ = await asyncio.to_thread(self.state.read, _marks_key(name))
            out[service] = Canary(
                service=service,
                name=name,
                desired=len(cs),
                ready=sum(1 for p in pods if p.is_ready),
                images={stable: str((latest.get("Config") or {}).get("Image") or "")},
                marks=_marks(marks),
            )
        return out

    async def create_canary(
        self,
        service: str,
        stable: str,
        *,
        container: str,
        image: str,
        replicas: int,
        marks: dict[str, str],
    ) -> Canary:
        self._writable(f"creating the canary of {service}")
        base = [c for c in await self._of(stable) if L.track_of(_labels(c)) == "stable"]
        if not base:
            raise NotFound(f'service "{stable}" not found in project {self.project}')
        await self._image_exists(image)
        name = stable + L.CANARY_SUFFIX
        await asyncio.to_thread(self.state.write, _marks_key(name), json.dumps(marks), 0)
        template = newest(base) or base[0]
        labels = {L.TRACK: "canary", L.OF: service}
        for n in range(1, replicas + 1):
            await self._copy(template, image=image, compose=name, number=n, labels=labels)
        return (await self.canaries([(service, stable)]))[service]

    async def scale_canary(self, canary: str, replicas: int) -> None:
        self._writable(f"scaling {canary}")
        cs = sorted(await self._of(canary), key=_number)
        if not cs:
            raise NotFound(f"canary {canary} not found in project {self.project}")
        template = newest(cs) or cs[-1]
        image = str((template.get("Config") or {}).get("Image") or "")
        labels = {
            L.TRACK: "canary",
            L.OF: _labels(template).get(L.OF, canary.removesuffix(L.CANARY_SUFFIX)),
        }
        number = self._numbers(cs)
        for _ in range(replicas - len(cs)):
            number += 1
            await self._copy(template, image=image, compose=canary, number=number, labels=labels)
        for c in reversed(cs[replicas:] if replicas < len(cs) else []):
            await self._remove(str(c["Id"]), timeout=5)

    async def mark_canary(self, canary: str, marks: dict[str, str]) -> None:
        self._writable(f"marking {canary}")
        key = _marks_key(canary)
        for _ in range(CAS_RETRIES):
            text, seq = await asyncio.to_thread(self.state.read, key)
            merged = {**_marks(text), **marks}
            try:
                await asyncio.to_thread(self.state.write, key, json.dumps(merged), seq)
                return
            except Conflict:
                await asyncio.sleep(0.05)
        raise Conflict(f"the release state of {canary} kept changing: not written")

    async def remove_canary(self, canary: str) -> None:
        self._writable(f"removing {canary}")
        for c in await self._of(canary):
            await self._remove(str(c["Id"]), timeout=2)
        await asyncio.to_thread(self.state.delete, _marks_key(canary))

    async def close(self) -> None:
        for task in self._rollouts.values():
            task.cancel()
        await super().close()


def start_container(api: Any, cid: str, tries: int = 5) -> None:
    """Start, again when the Engine picked a host port another process holds: its port
    allocator does not ask the kernel, and moves on to the next port on the next try."""
    for attempt in range(tries):
        try:
            api.start(cid)
            return
        except Exception as exc:
            if "address already in use" not in str(exc) or attempt == tries - 1:
                raise


def _number(c: Json) -> int:
    n = _labels(c).get(L.NUMBER, "")
    return int(n) if n.isdigit() else 0


def _labels(c: Json) -> dict[str, str]:
    labels: dict[str, str] = (c.get("Config") or {}).get("Labels") or {}
    return labels


def _marks_key(canary: str) -> str:
    return f"marks.{canary}".lower()


def _marks(text: str | None) -> dict[str, str]:
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
