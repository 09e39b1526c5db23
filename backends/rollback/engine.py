"""The rollback engine: execute a rollback service by service under the release lock, with
kubectl's ``rollout undo`` semantics, watching each rollout to the end and the service's health
until it is UP. Planning (what it changes and what it does not) is ``planner``'s; the engine
is a planner that also executes, so callers have one object.

The Rollback screen and ``bva rollback`` both drive this; neither decides anything itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from backends.errors import BvaError, ReadOnlyError, RolloutRefused
from backends.health.models import ProbeStatus
from backends.journal.records import JournalError
from backends.journal.store import Journal
from backends.models import Canary, RolloutState, RolloutStatus
from backends.platform import Platform
from backends.release.control import abort_canaries
from backends.release.lock import LOCK_SECONDS, LockHeld, ReleaseLock
from backends.release.plan import A_OWNER, A_RELEASE, A_VERSION
from backends.rollback.models import (
    PAUSED_WARNING,
    Level,
    RollbackEvent,
    RollbackPlan,
    RollbackResult,
    ServiceOutcome,
    ServicePlan,
)
from backends.rollback.planner import DEFAULT_DEADLINE_S, RollbackPlanner, health_detail
from backends.sanitize import sanitize_text

__all__ = ["RollbackEngine"]

ACTION = "rollback.execute"
ABORT_ACTION = "rollback.abort_release"
RENEW_S = 5.0
# Health must answer UP this many sweeps in a row: one lucky answer from a pod that is about
# to go is not "healthy".
UP_STREAK = 2
WATCH_SLACK_S = 30.0


def _clean(text: str, limit: int = 300) -> str:
    return sanitize_text(text, limit)


def _images_text(images: Mapping[str, str]) -> str:
    return ", ".join(images.values()) or "no image"


class RollbackEngine(RollbackPlanner):
    """A planner that also carries its plans out."""

    def __init__(
        self,
        platform: Platform,
        journal: Journal | None,
        *,
        clock: Callable[[], float] = time.time,
        health_wait: float = 20.0,
        poll: float = 0.5,
    ) -> None:
        super().__init__(platform, clock=clock)
        self._journal = journal
        self._health_wait = health_wait
        self._poll = poll

    @property
    def environment(self) -> str:
        return self._platform.env_name

    # -- execute -----------------------------------------------------------------------------

    async def execute(
        self,
        plan: RollbackPlan,
        *,
        resume_paused: bool = False,
        abort_release: bool = False,
        on_event: Callable[[RollbackEvent], None] | None = None,
    ) -> RollbackResult:
        """Carry out ``plan``: one service after another in the plan's order. Never raises for
        a refusal or a failure: every service gets an outcome."""
        run = _Run(self, plan, on_event)
        try:
            await self._execute(run, resume_paused=resume_paused, abort_release=abort_release)
        finally:
            run.finished = self._clock()
        return run.result()

    async def _execute(self, run: _Run, *, resume_paused: bool, abort_release: bool) -> None:
        plan = run.plan
        todo = [sp for sp in plan.services if sp.action == "rollback"]
        for sp in plan.services:
            if sp.action == "nothing":
                run.done(sp.service, "nothing to do", True, 0.0)
            elif sp.action == "refused":
                run.done(sp.service, f"refused: {sp.message}", False, 0.0)
        if not todo:
            run.emit("", "nothing to roll back")
            return
        if self._platform.read_only or self._orch.read_only:
            for sp in todo:
                run.refuse(
                    sp.service,
                    f"read-only: refusing to roll back {sp.workload} in {self._orch.target}",
                )
            return
        try:
            blocked = await self._check_release(run, abort_release)
        except (BvaError, JournalError) as exc:
            blocked = f"could not check for a release in progress: {exc}"
        if blocked:
            for sp in todo:
                run.refuse(sp.service, blocked)
            return
        lock = ReleaseLock(self._orch, f"rollback-{int(run.started)}")
        refusal = await self._take_lock(run, lock, wait=run.aborted)
        if refusal:
            for sp in todo:
                run.refuse(sp.service, refusal)
            return
        lost: list[str] = []
        renewer = asyncio.create_task(self._renew(run, lock, lost))
        try:
            for sp in todo:
                if lost:
                    run.refuse(sp.service, lost[0])
                    continue
                await self._roll_back(run, sp, resume_paused)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            try:
                await asyncio.shield(lock.release())
                run.emit("", "release lock released")
            except BvaError as exc:
                run.emit("", _clean(f"could not release the release lock: {exc}"), "warning")

    async def _check_release(self, run: _Run, abort_release: bool) -> str:
        """ "" when the rollback may go on (aborting the release first if asked), else why not."""
        mine = [(sp.service, sp.deployment) for sp in run.plan.services]
        canaries = await self._orch.canaries(mine)
        lease = await self._orch.read_lock()
        now = time.time()
        live = lease if lease is not None and not lease.expired(now) else None
        if not canaries and live is None:
            return ""
        everywhere = await self._orch.canaries(self._platform.services())
        release_id, text = _describe_release(everywhere or canaries)
        if not abort_release:
            if live is not None:
                return (
                    f"release lock held by {_clean(live.describe(now))}: abort that release first"
                )
            return f"{text} is in progress for {', '.join(sorted(canaries))}: abort it first"
        if not everywhere:
            assert live is not None
            return (
                f"release lock held by {_clean(live.describe(now))}; "
                "it drives no canary release that could be aborted"
            )
        target = f"{release_id or 'canaries'}@{self._platform.env_name}"
        details = {"release": release_id, "canaries": sorted(everywhere)}
        run.emit("", f"aborting {text}: removing its canaries", "warning")
        await self._journal_append(ABORT_ACTION, target, "before", details=details)
        try:
            await abort_canaries(self._orch, everywhere)
        except BaseException as exc:
            await self._journal_append(
                ABORT_ACTION, target, "after", _failure(exc), details=details
            )
            raise
        await self._journal_append(ABORT_ACTION, target, "after", "ok", details=details)
        run.aborted = True
        run.emit("", f"{text} aborted: canaries removed, traffic back on stable", "warning")
        return ""

    async def _take_lock(self, run: _Run, lock: ReleaseLock, *, wait: bool) -> str:
        """Take the release lock ("" on success); after aborting a release, wait for its
        driver to notice and let go."""
        deadline = time.monotonic() + (LOCK_SECONDS + 10 if wait else 0)
        told = False
        while True:
            try:
                await lock.acquire(take_over=True)
            except LockHeld as exc:
                if time.monotonic() >= deadline:
                    return _clean(str(exc))
                if not told:
                    run.emit("", "waiting for the release driver to let go of the release lock")
                    told = True
                await asyncio.sleep(self._poll)
                continue
            except BvaError as exc:
                return _clean(f"could not take the release lock: {exc}")
            run.emit("", f"release lock taken ({lock.release_id})")
            return ""

    async def _renew(self, run: _Run, lock: ReleaseLock, lost: list[str]) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await lock.renew()
            except LockHeld as exc:
                lost.append(_clean(str(exc)))
                run.emit("", lost[0], "error")
                return
            except BvaError as exc:
                run.emit("", _clean(f"could not renew the release lock: {exc}"), "warning")

    async def _roll_back(self, run: _Run, sp: ServicePlan, resume_paused: bool) -> None:
        assert sp.target is not None
        started = self._clock()
        target = f"{sp.service}@{self._platform.env_name}"
        details: dict[str, Any] = {
            "deployment": sp.deployment,
            "from_revision": sp.current.revision,
            "to_revision": sp.target.revision,
            "from_images": dict(sp.current.images),
            "to_images": dict(sp.target.images),
            "resume_paused": resume_paused,
        }
        try:
            await self._journal_append(ACTION, target, "before", details=details)
        except JournalError as exc:
            run.done(sp.service, _clean(f"failed: {exc}"), False, self._clock() - started)
            run.emit(sp.service, f"not started: {exc}", "error")
            return
        extra: dict[str, Any] = {}
        try:
            ok, text = await self._do(run, sp, resume_paused, extra)
        except (ReadOnlyError, RolloutRefused) as exc:
            ok, text = False, f"refused: {exc}"
        except BvaError as exc:
            ok, text = False, f"failed: {exc}"
        except BaseException as exc:
            with contextlib.suppress(JournalError):
                await asyncio.shield(
                    self._journal_append(ACTION, target, "after", _failure(exc), details=details)
                )
            run.done(sp.service, _failure(exc), False, self._clock() - started)
            raise
        text = _clean(text)
        try:
            await self._journal_append(
                ACTION,
                target,
                "after",
                "ok" if ok else text,
                details={**details, **extra, "outcome": text},
            )
        except JournalError as exc:
            run.emit(sp.service, _clean(f"the journal could not record the result: {exc}"), "error")
        run.done(sp.service, text, ok, self._clock() - started)
        run.emit(sp.service, text, "info" if ok else "error")

    async def _do(
        self, run: _Run, sp: ServicePlan, resume_paused: bool, extra: dict[str, Any]
    ) -> tuple[bool, str]:
        assert sp.target is not None
        name = sp.deployment
        workload = await self._orch.get_workload(name)
        if workload.revision != sp.current.revision:
            return False, (
                f"refused: {sp.workload} changed since the plan (now revision "
                f"{workload.revision}, planned from revision {sp.current.revision}): plan again"
            )
        if workload.paused:
            if not resume_paused:
                return False, f"refused: {PAUSED_WARNING}"
            run.emit(sp.service, f"resuming {sp.workload}")
            await self._orch.resume(name)
            extra["resumed"] = True
        run.emit(
            sp.service,
            f"rolling back {sp.workload} to revision {sp.target.revision} "
            f"({_images_text(sp.target.images)})",
        )
        message = await self._orch.undo(name, to_revision=sp.target.revision or None)
        run.emit(sp.service, message)
        if "skipped rollback" in message:
            return True, "nothing to do"
        deadline = float(workload.progress_deadline_s or DEFAULT_DEADLINE_S) + WATCH_SLACK_S
        status = await self._watch(run, sp.service, name, deadline)
        now = await self._orch.get_workload(name)
        extra["now_revision"] = now.revision
        done = f"rolled back to revision {sp.target.revision} (now revision {now.revision})"
        if status.state is RolloutState.FAILED:
            return False, f"failed: {done} but the rollout failed: {status.message}"
        if status.state is not RolloutState.COMPLETE:
            return False, (
                f"failed: {done} but the rollout did not finish in {deadline:.0f}s: "
                f"{status.message}"
            )
        health = await self._health(run, sp.service)
        extra["health"] = health.value
        if health is ProbeStatus.UP:
            return True, done
        return False, f"failed: {done} but health is {health.value} after {self._health_wait:g}s"

    async def _watch(
        self, run: _Run, service: str, deployment: str, timeout: float
    ) -> RolloutStatus:
        """kubectl rollout status until complete or failed (or ``timeout`` seconds)."""
        end = time.monotonic() + timeout
        last = ""
        while True:
            status = await self._orch.rollout_status(deployment)
            if status.message != last:
                level: Level = "error" if status.state is RolloutState.FAILED else "info"
                run.emit(service, status.message, level)
                last = status.message
            if status.state in (RolloutState.COMPLETE, RolloutState.FAILED, RolloutState.PAUSED):
                return status
            if time.monotonic() >= end:
                return status
            await asyncio.sleep(self._poll)

    async def _health(self, run: _Run, service: str) -> ProbeStatus:
        targets = [(s, urls) for s, urls in self._platform.health_targets() if s == service]
        if not targets or not targets[0][1]:
            run.emit(service, "no health URL configured: the rollout status decides", "warning")
            return ProbeStatus.UP
        end = time.monotonic() + self._health_wait
        streak = 0
        last: ProbeStatus | None = None
        while True:
            (health,) = await self._platform.health.sweep(targets)
            if health.status is not last:
                detail = health_detail(health)
                level: Level = "info" if health.status is ProbeStatus.UP else "warning"
                run.emit(
                    service,
                    f"health {health.status.value}" + (f": {detail}" if detail else ""),
                    level,
                )
                last = health.status
            streak = streak + 1 if health.status is ProbeStatus.UP else 0
            if streak >= UP_STREAK:
                return ProbeStatus.UP
            if time.monotonic() >= end:
                return health.status
            await asyncio.sleep(self._poll)

    async def _journal_append(
        self,
        action: str,
        target: str,
        stage: str,
        result: str = "",
        *,
        details: Mapping[str, Any],
    ) -> None:
        if self._journal is None:
            return
        await asyncio.to_thread(
            self._journal.append, action, target, stage=stage, result=result, details=details
        )

    @property
    def journal_path(self) -> str:
        return str(self._journal.path) if self._journal is not None else ""


class _Run:
    """One execution's bookkeeping: outcomes in plan order, and the event callback."""

    def __init__(
        self,
        engine: RollbackEngine,
        plan: RollbackPlan,
        on_event: Callable[[RollbackEvent], None] | None,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.on_event = on_event
        self.started = engine._clock()
        self.finished = self.started
        self.aborted = False
        self.outcomes: dict[str, ServiceOutcome] = {}

    def emit(self, service: str, text: str, level: str = "info") -> None:
        if self.on_event is None:
            return
        event = RollbackEvent(self.engine._clock(), service, _clean(text), level)
        # A broken listener must not stop a rollback half way.
        with contextlib.suppress(Exception):
            self.on_event(event)

    def done(self, service: str, outcome: str, ok: bool, duration: float) -> None:
        self.outcomes[service] = ServiceOutcome(service, outcome, ok, max(duration, 0.0))

    def refuse(self, service: str, reason: str) -> None:
        text = _clean(f"refused: {reason}")
        self.done(service, text, False, 0.0)
        self.emit(service, text, "error")

    def result(self) -> RollbackResult:
        outcomes = []
        for sp in self.plan.services:
            outcomes.append(
                self.outcomes.get(sp.service)
                or ServiceOutcome(sp.service, "failed: not attempted", False, 0.0)
            )
        return RollbackResult(
            ok=bool(outcomes) and all(o.ok for o in outcomes),
            outcomes=tuple(outcomes),
            started=self.started,
            finished=self.finished,
            journal=self.engine.journal_path,
        )


def _describe_release(canaries: Mapping[str, Canary]) -> tuple[str, str]:
    """(release id, "release r-… (1.2.0 by alice)") from the canaries' marks."""
    for canary in canaries.values():
        ann = canary.marks
        release_id = ann.get(A_RELEASE, "")
        if release_id:
            version, owner = ann.get(A_VERSION, ""), ann.get(A_OWNER, "")
            extra = " ".join(p for p in (version, f"by {owner}" if owner else "") if p)
            text = f"release {release_id}" + (f" ({extra})" if extra else "")
            return _clean(release_id, 100), _clean(text)
    return "", "a canary release"


def _failure(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "failed: cancelled"
    if isinstance(exc, KeyboardInterrupt):
        return "failed: interrupted"
    kind = "refused" if isinstance(exc, ReadOnlyError | RolloutRefused) else "failed"
    return _clean(f"{kind}: {exc or type(exc).__name__}")
