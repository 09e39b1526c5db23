"""The release driver: phased canary behind metric gates (or a plain rolling update), run by
one process at a time under the release lock, leaving its state in the cluster at every step
so that a second bva can watch, steer, resume or abort it.

Over 500 lines on purpose: it is one state machine (start, tick, sample the gates, advance,
promote, abort) whose steps all read and write the same release state and journal; the plan,
the lock, the control verbs and the session that builds it already live in their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.db.admin import DatabaseAdmin
from backends.errors import BvaError, SourceUnavailable
from backends.journal.store import Journal
from backends.metrics.source import MetricsSource
from backends.models import Canary, RolloutState
from backends.orchestrator import Orchestrator
from backends.release.control import abort_canaries, mark_all
from backends.release.dbstep import DatabaseRun
from backends.release.lock import ReleaseLock
from backends.release.models import (
    DatabasePlan,
    GateReading,
    GateResult,
    GateTally,
    ReleaseState,
    ReleaseView,
    ServiceProgress,
    TimelineEntry,
)
from backends.release.plan import (
    A_COMMAND,
    A_DB,
    A_FAILED,
    A_GATES,
    A_PASSED,
    A_PHASE,
    A_PHASE_START,
    A_REASON,
    A_STATE,
    ReleasePlan,
    actual_weight,
    canary_replicas,
    database_gates,
    evaluate_gates,
    image_with_tag,
    release_marks,
    release_target,
    round_result,
    steps_json,
    tallies_json,
    too_few_requests,
)
from backends.release.record import ReleaseRecorder
from backends.sanitize import sanitize_text
from backends.sources import DatabaseSource

TICK_S = 0.5
RENEW_S = 5.0
HISTORY = 30


# The gates a sample's size decides: below the minimum they wait for traffic.
TRAFFIC_GATES = frozenset({"error rate", "p95 latency"})


@dataclass
class _Tally:
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    last: GateReading | None = None
    history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))


class ReleaseDriver:
    def __init__(
        self,
        orchestrator: Orchestrator,
        plan: ReleasePlan,
        *,
        deployments: dict[str, str],
        containers: dict[str, str],
        metrics: MetricsSource,
        journal: Journal | None,
        database: DatabaseSource | None = None,
        database_plan: DatabasePlan | None = None,
        database_admin: DatabaseAdmin | None = None,
        environment: str,
        owner: str,
        lock: ReleaseLock | None = None,
        recorder: ReleaseRecorder | None = None,
        on_change: Callable[[ReleaseView], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.orchestrator = orchestrator
        self.plan = plan
        self._deployments = deployments
        self._containers = containers
        self._metrics = metrics
        self._database = database
        self._db_hold = ""  # why the database holds the phase back, "" when it does not
        self._db_hold_said = False
        self._journal_file = journal
        self._env = environment
        self.owner = owner
        self.lock = lock or ReleaseLock(orchestrator, plan.release_id)
        self._on_change = on_change
        self.recorder = recorder
        self._record_failed = False
        self._clock = clock
        self.state = ReleaseState.RUNNING
        self.reason = ""
        self.phase = 0
        self.phase_start = clock()
        self.passed = 0
        self.failed = 0
        self._passed_in_phase = 0
        self._next_sample = self.phase_start + plan.gate_interval
        self._last_command = ""
        self._paused_at: float | None = None
        self._restart_base: dict[str, int] = {}
        self._tallies: dict[str, dict[str, _Tally]] = {s: {} for s in plan.services}
        self._progress: dict[str, ServiceProgress] = {}
        self.timeline: list[TimelineEntry] = []
        self._last_renew = 0.0
        self.database_run: DatabaseRun | None = None
        if database_plan is not None and database_admin is not None and database is not None:
            self.database_run = DatabaseRun(
                database_plan,
                database_admin,
                database,
                release_id=plan.release_id,
                journal=journal,
                target=self._target,
                log=lambda text, level: self._log(text, level=level),
                changed=self._publish,
                clock=clock,
            )

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def record(self) -> Path | None:
        return self.recorder.md_path if self.recorder is not None else None

    @property
    def _target(self) -> str:
        return release_target(self.plan.release_id, self._env)

    def _details(self, details: dict[str, Any]) -> dict[str, Any]:
        return {"version": self.plan.version, "services": list(self.plan.services), **details}

    def _log(self, text: str, service: str = "", level: str = "info") -> None:
        self.timeline.append(TimelineEntry(self._clock(), sanitize_text(text, 300), service, level))

    async def _journal(self, action: str, result: str, **details: Any) -> None:
        """A record of something the driver saw happen (a gate failed, a pause arrived)."""
        if self._journal_file is not None:
            await asyncio.to_thread(
                self._journal_file.append,
                action,
                self._target,
                stage="after",
                result=result,
                details=self._details(details),
            )

    async def _journaled(self, action: str, work: Callable[[], Any], **details: Any) -> Any:
        """Before and after records around a mutating step, as the safety rules require."""
        if self._journal_file is None:
            return await work()
        async with self._journal_file.arecord(action, self._target, self._details(details)):
            return await work()

    def view(self) -> ReleaseView:
        return ReleaseView(
            release_id=self.plan.release_id,
            version=self.plan.version,
            owner=self.owner,
            strategy=self.plan.strategy,
            services=self.plan.services,
            phases=self.plan.phases,
            holds=self.plan.holds,
            phase_index=self.phase,
            phase_started=self.phase_start,
            state=self.state,
            reason=self.reason,
            samples_passed=self.passed,
            samples_failed=self.failed,
            failure_limit=self.plan.failure_limit,
            gate_interval=self.plan.gate_interval,
            next_sample_at=None if self.state.over else self._next_sample,
            progress=tuple(
                self._with_tallies(s) for s in self.plan.services if s in self._progress
            ),
            timeline=tuple(self.timeline[-200:]),
            database=tuple(self.database_run.steps) if self.database_run is not None else (),
        )

    def _with_tallies(self, service: str) -> ServiceProgress:
        p = self._progress[service]
        tallies = tuple(
            GateTally(g, t.passed, t.failed, t.inconclusive, t.last, tuple(t.history))
            for g, t in self._tallies[service].items()
        )
        return ServiceProgress(
            p.service,
            p.deployment,
            p.stable_ready,
            p.stable_desired,
            p.canary_ready,
            p.canary_desired,
            p.canary_restarts,
            p.set_weight,
            p.actual_weight,
            tallies,
        )

    def _publish(self) -> None:
        if self._on_change is not None:
            self._on_change(self.view())

    async def _record(self) -> None:
        """Bring the release record up to date (at start, each phase, the end). A record that
        cannot be written is said once on the timeline; it never stops the release."""
        recorder = self.recorder
        if recorder is None:
            return
        try:
            if self.state.over:
                await recorder.capture_after(self.orchestrator)
            await asyncio.to_thread(recorder.write, self.view())
        except (OSError, BvaError) as exc:
            if not self._record_failed:
                self._record_failed = True
                self._log(f"the release record was not written: {exc}", level="warning")

    # -- start / resume ---------------------------------------------------------------------
    async def start(self) -> None:
        await self.lock.acquire()
        services = [(s, self._deployments[s]) for s in self.plan.services]
        existing = await self.orchestrator.canaries(services)
        if existing:
            await self.lock.release()
            raise BvaError(
                f"a canary already exists for {', '.join(sorted(existing))}: "
                "resume or abort that release first"
            )
        self._log(
            f"release {self.plan.release_id}: {self.plan.version} to "
            f"{', '.join(self.plan.services)} ({self.plan.strategy})"
        )
        if self.database_run is not None:
            self._publish()
            why = await self._renewing(self.database_run.run())
            if why:
                # Before any service changed: nothing to abort, the lock goes at once.
                self.state, self.reason = ReleaseState.FAILED, why
                with contextlib.suppress(BvaError):
                    await self.lock.release()
                await self._record()
                self._publish()
                return
        if self.plan.strategy == "canary":
            await self._journaled(
                "release.start", self._create_canaries, services=list(self.plan.services)
            )
            self._log(f"phase 1/{len(self.plan.phases)}: weight {self.plan.phases[0]}%")
        else:
            await self._journaled("release.start", _nothing)
        await self._record()
        self._publish()

    async def _renewing(self, work: Coroutine[Any, Any, str]) -> str:
        """Await a long step (a dump, a migration) while keeping the release lock renewed."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=RENEW_S)
                if done:
                    return task.result()
                await self.lock.renew()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _create_canaries(self) -> None:
        now = self._clock()
        self.phase_start = now
        self._next_sample = now + self.plan.gate_interval
        for service in self.plan.services:
            stable = await self.orchestrator.get_workload(self._deployments[service])
            container = self._containers[service]
            marks = release_marks(self.plan, self.owner, phase=0, phase_start=now)
            if self.database_run is not None:
                marks[A_DB] = steps_json(tuple(self.database_run.steps))
            await self.orchestrator.create_canary(
                service,
                stable.name,
                container=container,
                image=image_with_tag(stable.images.get(container, stable.image), self.plan.version),
                replicas=canary_replicas(self.plan.phases[0], stable.desired),
                marks=marks,
            )
            self._restart_base[service] = 0

    async def resume(self) -> None:
        """Take over a release whose driver is gone, from the state in its canaries."""
        await self.lock.acquire(take_over=True)
        services = [(s, self._deployments[s]) for s in self.plan.services]
        canaries = await self.orchestrator.canaries(services)
        if not canaries:
            await self.lock.release()
            raise BvaError("nothing to resume: no canary is left")
        ann = next(iter(canaries.values())).marks
        self.phase = int(ann.get(A_PHASE, "0"))
        self.phase_start = float(ann.get(A_PHASE_START, "0") or self._clock())
        self.passed = int(ann.get(A_PASSED, "0"))
        self.failed = int(ann.get(A_FAILED, "0"))
        self._last_command = ann.get(A_COMMAND, "")
        self._next_sample = self._clock() + self.plan.gate_interval
        if ann.get(A_STATE) == "paused":
            self.state, self.reason, self._paused_at = (
                ReleaseState.PAUSED,
                ann.get(A_REASON, ""),
                self._clock(),
            )
        for service in self.plan.services:
            pods = await self.orchestrator.list_instances(service)
            self._restart_base[service] = sum(p.restarts for p in pods if p.track == "canary")
        await self._journal("release.resume", "ok", phase=self.phase + 1, taken_over=True)
        self._log(f"resumed by {self.owner} at phase {self.phase + 1}/{len(self.plan.phases)}")
        self._publish()

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> ReleaseState:
        try:
            if self.plan.strategy == "rolling" and not self.state.over:
                await self._rolling()
            while not self.state.over:
                await self._tick()
                self._publish()
                if not self.state.over:
                    await asyncio.sleep(TICK_S)
        finally:
            # Over, or this process stops driving (quit, signal): either way the lock goes,
            # and an unfinished release is left in its canaries for anyone to resume.
            with contextlib.suppress(BvaError, asyncio.CancelledError):
                await asyncio.shield(self.lock.release())
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._record())
            self._publish()
        return self.state

    async def _renew(self) -> None:
        now = self._clock()
        if now - self._last_renew >= RENEW_S:
            await self.lock.renew()
            self._last_renew = now

    async def _tick(self) -> None:
        await self._renew()
        services = [(s, self._deployments[s]) for s in self.plan.services]
        canaries = await self.orchestrator.canaries(services)
        if len(canaries) < len(services):
            await abort_canaries(self.orchestrator, canaries)
            self.state = ReleaseState.ABORTED
            self.reason = self.reason or "aborted from another terminal (canary removed)"
            self._log(self.reason, level="warning")
            return
        ann = next(iter(canaries.values())).marks
        await self._observe(canaries)
        # Show what was just observed before anything slow (a metrics sample waits for its
        # window), so the screen follows the cluster, not the gate interval.
        self._publish()
        command = ann.get(A_COMMAND, "")
        if command and command != self._last_command:
            self._last_command = command
            self.state, self.reason, self._paused_at = ReleaseState.RUNNING, "", None
            last = len(self.plan.phases) - 1
            target = last if command.startswith("promote-full") else self.phase + 1
            self._log("promoted fully" if target == last else "promoted to the next phase")
            await self._advance(min(target, last), canaries)
            return
        wanted = ann.get(A_STATE, "running")
        now = self._clock()
        if wanted == "paused" and self.state is not ReleaseState.PAUSED:
            self.state, self.reason, self._paused_at = (
                ReleaseState.PAUSED,
                ann.get(A_REASON, "paused"),
                now,
            )
            await self._journal("release.pause", "ok", reason=self.reason)
            self._log(f"paused: {self.reason}", level="warning")
        elif wanted == "running" and self.state is ReleaseState.PAUSED:
            # The hold does not run while paused: a pause must not shorten the monitoring.
            if self._paused_at is not None:
                self.phase_start += now - self._paused_at
                self._next_sample = now + self.plan.gate_interval
            self.state, self.reason, self._paused_at = ReleaseState.RUNNING, "", None
            await mark_all(self.orchestrator, canaries, {A_PHASE_START: f"{self.phase_start:.3f}"})
            await self._journal("release.resume", "ok")
            self._log("resumed")
        if self.state in (ReleaseState.PAUSED, ReleaseState.AWAITING_APPROVAL):
            return
        await self._scale_canaries(canaries)
        if now >= self._next_sample:
            await self._sample(canaries)
            if self.state is not ReleaseState.RUNNING:
                return
        if self.failed >= self.plan.failure_limit:
            await self.abort(
                f"gates failed {self.failed} times (limit "
                f"{self.plan.failure_limit}): {self.reason}",
                automatic=True,
            )
            return
        hold = self.plan.holds[self.phase] if self.phase < len(self.plan.holds) else 0.0
        if now - self.phase_start >= hold and self._passed_in_phase > 0 and self._db_hold:
            # No traffic increase onto a database that is lagging or out of connections.
            if not self._db_hold_said:
                self._db_hold_said = True
                self._log(f"hold done, not promoting: {self._db_hold}", level="warning")
            return
        self._db_hold_said = False
        if now - self.phase_start >= hold and self._passed_in_phase > 0:
            if self.plan.manual_approval:
                self.state = ReleaseState.AWAITING_APPROVAL
                self.reason = f"approve the increase to {self.plan.phases[self.phase + 1]}%"
                await mark_all(
                    self.orchestrator,
                    canaries,
                    {A_STATE: "awaiting approval", A_REASON: self.reason},
                )
                self._log(
                    f"hold done: waiting for approval to go to {self.plan.phases[self.phase + 1]}%"
                )
            else:
                await self._advance(self.phase + 1, canaries)

    async def _observe(self, canaries: dict[str, Canary]) -> None:
        for service in self.plan.services:
            dep = self._deployments[service]
            stable = await self.orchestrator.get_workload(dep)
            canary = canaries[service]
            ready = canary.ready
            pods = await self.orchestrator.list_instances(service)
            restarts = sum(p.restarts for p in pods if p.track == "canary")
            self._progress[service] = ServiceProgress(
                service,
                dep,
                stable.ready,
                stable.desired,
                ready,
                canary.desired,
                restarts - self._restart_base.get(service, 0),
                self.plan.phases[self.phase],
                actual_weight(ready, stable.ready),
            )

    async def _scale_canaries(self, canaries: dict[str, Canary]) -> None:
        weight = self.plan.phases[self.phase]
        for service, canary in canaries.items():
            progress = self._progress.get(service)
            if progress is None:
                continue
            want = canary_replicas(weight, progress.stable_desired)
            if canary.desired != want:
                await self.orchestrator.scale_canary(canary.name, want)

    async def _pause(self, canaries: dict[str, Canary], reason: str) -> None:
        self.state, self.reason, self._paused_at = ReleaseState.PAUSED, reason, self._clock()
        await mark_all(self.orchestrator, canaries, {A_STATE: "paused", A_REASON: self.reason})
        await self._journal("release.pause", "ok", reason=self.reason)
        self._log(f"paused for a human: {self.reason}", level="warning")

    async def _database_gates(self) -> tuple[GateReading, ...]:
        if self._database is None:
            return ()
        readings = database_gates(self.plan, await self._database.refresh())
        failed = [r for r in readings if r.result is GateResult.FAILED]
        self._db_hold = "; ".join(_describe(r) for r in failed)
        return readings

    async def _sample(self, canaries: dict[str, Canary]) -> None:
        self._next_sample = self._clock() + self.plan.gate_interval
        readings_by_service: dict[str, tuple[GateReading, ...]] = {}
        # One database reading a round: the database is shared, every service's gates see it.
        db_readings = await self._database_gates()
        thin: dict[str, str] = {}  # services whose window has too few requests for a verdict
        for service in self.plan.services:
            p = self._progress[service]
            try:
                sample = await self._metrics.sample(
                    service, "canary", min_requests=self.plan.min_requests
                )
            except SourceUnavailable as exc:
                self._log(f"metrics unavailable: {exc}", service, "warning")
                sample = None
            if sample is not None and too_few_requests(self.plan, sample):
                thin[service] = f"{service} {sample.requests:.0f} of {self.plan.min_requests}"
            readings = (
                evaluate_gates(
                    self.plan,
                    sample,
                    canary_ready=p.canary_ready,
                    canary_desired=p.canary_desired,
                    new_restarts=p.canary_restarts,
                )
                + db_readings
            )
            readings_by_service[service] = readings
            for r in readings:
                t = self._tallies[service].setdefault(r.gate, _Tally())
                t.last = r
                if r.value is not None:
                    t.history.append(r.value)
                if r.result is GateResult.PASSED:
                    t.passed += 1
                elif r.result is GateResult.FAILED:
                    t.failed += 1
                else:
                    t.inconclusive += 1
            self._progress[service] = self._with_tallies(service)
            await self.orchestrator.mark_canary(
                canaries[service].name, {A_GATES: tallies_json(self._progress[service].gates)}
            )
        outcome = round_result([r for rs in readings_by_service.values() for r in rs])
        if outcome is GateResult.FAILED:
            self.failed += 1
            bad = [
                (s, r)
                for s, rs in readings_by_service.items()
                for r in rs
                if r.result is GateResult.FAILED
            ]
            self.reason = "; ".join(f"{s} {_describe(r)}" for s, r in bad[:3])
            await self._journal(
                "release.gate_failed",
                f"failed: {sanitize_text(self.reason, 200)}",
                count=self.failed,
            )
            self._log(
                f"gate failed ({self.failed}/{self.plan.failure_limit}): {self.reason}",
                level="error",
            )
        elif outcome is GateResult.INCONCLUSIVE:
            unsure = [
                (s, r)
                for s, rs in readings_by_service.items()
                for r in rs
                if r.result is GateResult.INCONCLUSIVE
            ]
            hold = self.plan.holds[self.phase] if self.phase < len(self.plan.holds) else 0.0
            if all(s in thin and r.gate in TRAFFIC_GATES for s, r in unsure):
                # Too few requests is not a verdict: the source widens its window and the
                # rounds wait for traffic while the hold runs; after it, a human decides.
                counts = ", ".join(thin[s] for s, _ in dict.fromkeys(unsure))
                if self._clock() - self.phase_start < hold:
                    self._log(f"waiting for traffic: {counts} requests so far")
                else:
                    await self._pause(canaries, f"inconclusive: too few requests ({counts})")
            else:
                why = "; ".join(f"{s} {r.gate}: no data" for s, r in unsure[:3])
                await self._pause(canaries, f"inconclusive: {why}")
        else:
            self.passed += 1
            self._passed_in_phase += 1
        await mark_all(
            self.orchestrator, canaries, {A_PASSED: str(self.passed), A_FAILED: str(self.failed)}
        )

    async def _advance(self, phase: int, canaries: dict[str, Canary]) -> None:
        if self.plan.phases[phase] >= 100:
            await self._promote_stable()
            return
        now = self._clock()

        async def step() -> None:
            await mark_all(
                self.orchestrator,
                canaries,
                {
                    A_PHASE: str(phase),
                    A_PHASE_START: f"{now:.3f}",
                    A_STATE: "running",
                    A_REASON: "",
                },
            )

        await self._journaled(
            "release.phase", step, phase=phase + 1, weight=self.plan.phases[phase]
        )
        self.phase, self.phase_start = phase, now
        self.state, self.reason = ReleaseState.RUNNING, ""
        self._passed_in_phase = 0
        self._next_sample = now + self.plan.gate_interval
        for service in self.plan.services:
            p = self._progress.get(service)
            if p is not None:
                self._restart_base[service] += p.canary_restarts
        self._log(f"phase {phase + 1}/{len(self.plan.phases)}: weight {self.plan.phases[phase]}%")
        await self._scale_canaries(canaries)
        await self._record()

    async def _promote_stable(self) -> None:
        self.state = ReleaseState.PROMOTING
        self.phase = len(self.plan.phases) - 1
        self._log(f"promoting: stable deployments to {self.plan.version}")
        self._publish()
        services = [(s, self._deployments[s]) for s in self.plan.services]
        canaries = await self.orchestrator.canaries(services)
        await mark_all(
            self.orchestrator, canaries, {A_STATE: "promoting", A_PHASE: str(self.phase)}
        )
        failed = await self._journaled("release.promote", self._roll_stable)
        await self._journaled(
            "release.cleanup", lambda: abort_canaries(self.orchestrator, canaries)
        )
        if failed:
            self.state, self.reason = ReleaseState.FAILED, failed
            self._log(failed, level="error")
        else:
            self.state = ReleaseState.FINISHED
            self._log(f"finished: {', '.join(self.plan.services)} on {self.plan.version}")
        await self._journal("release.finish", "ok" if not failed else f"failed: {failed}")
        await self._observe_after_promotion()

    async def _observe_after_promotion(self) -> None:
        """No canary is left: all traffic is on the (now promoted) stable pods."""
        for service in self.plan.services:
            dep = self._deployments[service]
            stable = await self.orchestrator.get_workload(dep)
            self._progress[service] = ServiceProgress(
                service, dep, stable.ready, stable.desired, 0, 0, 0, 100, 100.0
            )

    async def _roll_stable(self) -> str:
        """Set the image on each stable Deployment and watch it with kubectl's rules."""
        for service in self.plan.services:
            dep = self._deployments[service]
            stable = await self.orchestrator.get_workload(dep)
            current = stable.images.get(self._containers[service], "")
            await self.orchestrator.set_image(
                dep,
                self._containers[service],
                image_with_tag(str(current), self.plan.version),
                change_cause=f"bva release {self.plan.release_id}: {self.plan.version}",
            )
            problem = await self._wait_rolled_out(dep)
            if problem:
                return f"stable rollout of {service} failed: {problem}"
        return ""

    async def _wait_rolled_out(self, deployment: str) -> str:
        deadline = self._clock() + self.plan.progress_deadline + 30
        service = next((s for s, d in self._deployments.items() if d == deployment), "")
        while self._clock() < deadline:
            await self._renew()
            status = await self.orchestrator.rollout_status(deployment)
            if service in self._progress:
                # The promotion is watched step by step on screen, not only its end.
                p = self._progress[service]
                self._progress[service] = ServiceProgress(
                    p.service,
                    p.deployment,
                    status.available,
                    status.desired,
                    p.canary_ready,
                    p.canary_desired,
                    p.canary_restarts,
                    p.set_weight,
                    p.actual_weight,
                )
                self._publish()
            if status.state is RolloutState.COMPLETE:
                return ""
            if status.state is RolloutState.FAILED:
                return str(status.message)
            await asyncio.sleep(TICK_S)
        return "timed out waiting for the rollout"

    async def _rolling(self) -> None:
        self._log("rolling update: setting the image on the stable deployments")
        failed = await self._journaled("release.rolling", self._roll_stable)
        if failed:
            self.state, self.reason = ReleaseState.FAILED, failed
            self._log(failed, level="error")
        else:
            self.state = ReleaseState.FINISHED
            self._log(f"finished: {', '.join(self.plan.services)} on {self.plan.version}")
        await self._journal("release.finish", "ok" if not failed else f"failed: {failed}")

    # -- human controls for the driving process ----------------------------------------------
    async def abort(self, reason: str, *, automatic: bool = False) -> None:
        services = [(s, self._deployments[s]) for s in self.plan.services]
        canaries = await self.orchestrator.canaries(services)
        await self._journaled(
            "release.abort",
            lambda: abort_canaries(self.orchestrator, canaries),
            reason=reason,
            automatic=automatic,
        )
        self.state, self.reason = ReleaseState.ABORTED, reason
        self._log(
            f"aborted{' automatically' if automatic else ''}: {reason}; traffic is back on stable",
            level="error",
        )


async def _nothing() -> None:
    return None


def _describe(r: GateReading) -> str:
    if r.value is None:
        return f"{r.gate}: no data"
    if r.unit == "%":
        return f"{r.gate} {r.value:.1f}% ≥ {r.threshold:g}%"
    if r.unit == "ms":
        return f"{r.gate} {r.value:.0f} ms ≥ {r.threshold:g} ms"
    if r.unit == "s":
        return f"{r.gate} {r.value:.2f}s ≥ {r.threshold:g}s"
    return f"{r.gate}: {r.detail}" if r.detail else r.gate


def release_services(plan: ReleasePlan, services: Sequence[tuple[str, str]]) -> dict[str, str]:
    deployments = dict(services)
    missing = [s for s in plan.services if s not in deployments]
    if missing:
        raise BvaError(f"unknown service(s): {', '.join(missing)}")
    return {s: deployments[s] for s in plan.services}
