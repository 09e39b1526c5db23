"""Planning a rollback, reading only: which services are degraded and why (the candidates), and
what ``rollout undo`` would do to each one — the target revision by kubectl's rules, the
template diff, the warnings, and what blocks it (a canary release, the release lock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from backends.db.backup import list_backups
from backends.errors import BvaError, NotFound, RolloutRefused
from backends.health.models import ProbeStatus, ServiceHealth
from backends.kube.rollout_rules import equal_ignore_hash
from backends.models import Revision, RolloutState, Workload, image_tag
from backends.orchestrator import workload_noun, workload_ref
from backends.platform import Platform
from backends.release.control import read_release
from backends.release.models import ReleaseView
from backends.rollback.diff import referenced_objects, template_diff
from backends.rollback.models import (
    NOT_ROLLED_BACK,
    PAUSED_WARNING,
    RollbackPlan,
    ServiceCandidate,
    ServicePlan,
    UnknownService,
)
from backends.sanitize import sanitize_text
from backends.status.monitor import rollout_text, workload_rollout

DEFAULT_DEADLINE_S = 600


def _clean(text: str, limit: int = 300) -> str:
    return sanitize_text(text, limit)


def _pick_target(
    history: Sequence[Revision], to_revision: int | None, name: str, noun: str
) -> Revision:
    """rollback.go deploymentRevision over the owned ReplicaSets (kubectl's loop)."""
    wanted = to_revision or 0
    if wanted < 0:
        raise RolloutRefused(f"unable to find specified revision {wanted} in history")
    if wanted > 0:
        for rev in history:
            if rev.revision == wanted:
                return rev
        raise RolloutRefused(f"unable to find specified revision {wanted} in history")
    latest_n, previous_n = -1, -1
    latest: Revision | None = None
    previous: Revision | None = None
    for rev in history:
        if latest_n < rev.revision:
            previous_n, previous = latest_n, latest
            latest_n, latest = rev.revision, rev
        elif previous_n < rev.revision:
            previous_n, previous = rev.revision, rev
    if previous is None:
        raise RolloutRefused(f'no rollout history found for {noun} "{name}"')
    return previous


def _tags(images: Mapping[str, str]) -> str:
    return ", ".join(image_tag(i) for i in images.values()) or "?"


class RollbackPlanner:
    def __init__(self, platform: Platform, *, clock: Callable[[], float] = time.time) -> None:
        self._platform = platform
        self._orch = platform.orchestrator
        self._noun = workload_noun(self._orch.kind)
        self._clock = clock

    # -- candidates --------------------------------------------------------------------------

    async def candidates(self) -> list[ServiceCandidate]:
        """Every platform service with its rollout and health; degraded ones first."""
        services = self._platform.services()
        workloads, health = await asyncio.gather(
            asyncio.gather(*(self._workload_or_none(d) for _, d in services)),
            self._platform.health.sweep(self._platform.health_targets()),
        )
        by_service = {h.service: h for h in health}
        now = self._clock()
        found = [
            self._candidate(service, deployment, w, by_service.get(service), now)
            for (service, deployment), w in zip(services, workloads, strict=True)
        ]
        return sorted(found, key=lambda c: not c.degraded)

    async def _workload_or_none(self, deployment: str) -> Workload | None:
        try:
            return await self._orch.get_workload(deployment)
        except NotFound:
            return None

    def _candidate(
        self,
        service: str,
        deployment: str,
        w: Workload | None,
        health: ServiceHealth | None,
        now: float,
    ) -> ServiceCandidate:
        status = health.status if health is not None else ProbeStatus.UNKNOWN
        if w is None:
            return ServiceCandidate(
                service, deployment, 0, "", "—", status.value, True, "deployment not found"
            )
        rollout = workload_rollout(w, self._noun)
        reasons = []
        if rollout.state is RolloutState.FAILED:
            reasons.append("rollout failed: " + rollout_text(rollout, w).removeprefix("Failed: "))
        elif rollout.state is RolloutState.PAUSED:
            reasons.append("rollout paused")
        elif rollout.state is RolloutState.PROGRESSING:
            cond = w.condition("Progressing")
            deadline = w.progress_deadline_s or DEFAULT_DEADLINE_S
            if (
                cond is not None
                and cond.last_update
                and now - cond.last_update > max(60.0, deadline / 2)
            ):
                reasons.append(f"rollout stuck for {now - cond.last_update:.0f}s")
        if status is not ProbeStatus.UP:
            detail = health_detail(health)
            reasons.append(f"health {status.value}" + (f" ({detail})" if detail else ""))
        return ServiceCandidate(
            service=service,
            deployment=deployment,
            revision=w.revision,
            image_tag=_clean(w.image_tag(), 80),
            rollout_text=_clean(rollout_text(rollout, w), 80),
            health=status.value,
            degraded=bool(reasons),
            reason=_clean("; ".join(reasons)),
        )

    # -- plan --------------------------------------------------------------------------------

    def _ordered(self, services: Sequence[str], order: Sequence[str] | None) -> list[str]:
        known = dict(self._platform.services())
        selected: list[str] = []
        for service in services:
            if service not in known:
                raise UnknownService(
                    f"unknown service {_clean(service, 80)!r} (known: {', '.join(known)})"
                )
            if service not in selected:
                selected.append(service)
        if not selected:
            raise BvaError("no service to roll back")
        start = [s.name for s in self._platform.config.services_in_start_order()]
        rank = {name: i for i, name in enumerate(start)}
        if order is not None:
            given = {name: i for i, name in enumerate(dict.fromkeys(order))}
            return sorted(selected, key=lambda s: (s not in given, given.get(s, 0), rank[s]))
        return sorted(selected, key=lambda s: rank[s])

    async def plan(
        self,
        services: Sequence[str],
        to_revision: int | None = None,
        *,
        order: Sequence[str] | None = None,
    ) -> RollbackPlan:
        """What a rollback of ``services`` would do; reads only. ``to_revision`` None is
        kubectl's default (the previous revision)."""
        ordered = self._ordered(services, order)
        deployments = dict(self._platform.services())
        plans = list(
            await asyncio.gather(*(self._plan_one(s, deployments[s], to_revision) for s in ordered))
        )
        release, lock_holder = await self._blockers(ordered)
        if release is not None:
            touched = set(release.services)
            note = (
                f"release {release.release_id} ({release.version}, {release.state.value}) has a "
                "canary of this service: it must be aborted first (traffic back on stable)"
            )
            plans = [
                _with_warning(sp, _clean(note)) if sp.service in touched else sp for sp in plans
            ]
        return RollbackPlan(
            environment=self._platform.env_name,
            services=tuple(plans),
            release=release,
            lock_holder=lock_holder,
            not_rolled_back=NOT_ROLLED_BACK,
            database=await self._database_since(plans),
        )

    async def _database_since(self, plans: Sequence[ServicePlan]) -> tuple[str, ...]:
        """The database's changes since the oldest target revision was made: migrations
        applied after it and the backups taken before them (restoring one is a separate,
        guarded step: `bva db restore`)."""
        database = self._platform.database
        since = min(
            (sp.target.created for sp in plans if sp.target is not None and sp.target.created),
            default=None,
        )
        if database is None or since is None:
            return ()
        picture = await database.refresh()
        flyway = picture.flyway
        if flyway is None:
            return ("migrations since the target revision: unknown (the history is not readable)",)
        after = [m for m in flyway.applied if m.installed_on is not None and m.installed_on > since]
        if not after:
            return ("no migration was applied since the target revision",)
        names = ", ".join(f"{m.version or m.description}" for m in after[:5])
        lines = [f"{len(after)} migration(s) applied since the target revision: {names}"]
        admin = self._platform.database_admin
        first = min(m.installed_on or since for m in after)
        backups = list_backups(admin.backup_dir) if admin is not None else []
        before = [b for b in backups if b.verified and b.taken_at < first]
        if before:
            age = f"{int((self._clock() - before[0].taken_at) // 60)} min"
            lines.append(
                f"newest backup before them: {before[0].name} ({age} old): `bva db restore`"
            )
        else:
            lines.append("no verified backup predates them")
        return tuple(lines)

    async def _plan_one(
        self, service: str, deployment: str, to_revision: int | None
    ) -> ServicePlan:
        ref = workload_ref(self._orch.kind, deployment)
        current = await self._orch.current_revision(deployment)
        if current is None:
            missing = Revision(revision=0, replicaset="")
            return ServicePlan(
                service, deployment, "refused", missing, None, (), (), (),
                f"{ref} not found", False, ref,
            )  # fmt: skip
        history = tuple(await self._orch.history(deployment))
        template = current.template
        workload = await self._orch.get_workload(deployment)
        paused = workload.paused
        warnings: list[str] = [PAUSED_WARNING] if paused else []
        try:
            target = _pick_target(history, to_revision, deployment, self._noun)
        except RolloutRefused as exc:
            return ServicePlan(
                service, deployment, "refused", current, None, history, (), tuple(warnings),
                _clean(str(exc)), paused, ref,
            )  # fmt: skip
        changes = template_diff(template, target.template)
        if equal_ignore_hash(target.template, template):
            shown = target.revision or (to_revision or 0)
            message = (
                f"{workload_ref(self._orch.kind, deployment, api=True)} skipped rollback "
                f"(current template already matches revision {shown})"
            )
            return ServicePlan(
                service, deployment, "nothing", current, target, history, changes,
                tuple(warnings), message, paused, ref,
            )  # fmt: skip
        status = workload_rollout(workload, self._noun)
        if status.state is RolloutState.PROGRESSING:
            warnings.append(
                _clean(f"a rollout is in progress ({status.message}): the rollback replaces it")
            )
        if not any(c.field == "image" for c in changes):
            warnings.append("the image does not change: only the settings listed are restored")
        refs = referenced_objects(target.template)
        if refs:
            warnings.append(
                f"reads {', '.join(refs)}: not rolled back, the pods get their current contents"
            )
        message = (
            f"roll back {ref} from revision {current.revision} "
            f"({_tags(current.images)}) to revision {target.revision} ({_tags(target.images)})"
        )
        return ServicePlan(
            service, deployment, "rollback", current, target, history, changes,
            tuple(warnings), _clean(message), paused, ref,
        )  # fmt: skip

    async def _blockers(self, services: Sequence[str]) -> tuple[ReleaseView | None, str | None]:
        lease = await self._orch.read_lock()
        now = time.time()
        live = lease if lease is not None and not lease.expired(now) else None
        try:
            view = await read_release(self._orch, self._platform.services())
        except BvaError:
            view = None  # an unreadable canary: execute still finds it and refuses
        release = None
        if view is not None and (
            set(view.services) & set(services)
            or (live is not None and live.release_id == view.release_id)
        ):
            release = view
        return release, (_clean(live.describe(now)) if live is not None else None)


def _with_warning(sp: ServicePlan, warning: str) -> ServicePlan:
    return replace(sp, warnings=(*sp.warnings, warning))


def health_detail(health: ServiceHealth | None) -> str:
    if health is None:
        return ""
    bad = next((p for p in health.probes if p.status is not ProbeStatus.UP), None)
    return _clean(bad.detail, 120) if bad is not None else ""
