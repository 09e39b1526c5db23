"""One process's part in an environment's releases: the driver it runs (started here or taken
over from a driver that died) and the controls it sends. The console and `bva release` both
use this, so a release is started, taken over, steered and journalled one way."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from backends.checklist.models import ChecklistReport, ReleaseGate
from backends.errors import BvaError
from backends.journal.store import Journal
from backends.models import LockRecord
from backends.platform import Platform
from backends.release.control import NoRelease, read_release, release_plan, send_control
from backends.release.dbstep import plan_database
from backends.release.driver import ReleaseDriver
from backends.release.lock import identity
from backends.release.models import DatabasePlan, ReleaseView
from backends.release.plan import ReleasePlan, make_plan, release_target
from backends.release.record import RecordError, ReleaseRecorder, read_record, records_dir

__all__ = ["ReleaseSession"]

ACTIONS = ("pause", "resume", "promote", "promote-full", "abort")


class ReleaseSession:
    def __init__(
        self,
        platform: Platform,
        journal: Journal,
        *,
        on_change: Callable[[ReleaseView], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.platform = platform
        self.journal = journal
        self.driver: ReleaseDriver | None = None
        self._on_change = on_change
        self._clock = clock

    @property
    def environment(self) -> str:
        return self.platform.env_name

    def plan(self, services: Sequence[str], version: str, **overrides: Any) -> ReleasePlan:
        """The platform file's plan for this environment, with the caller's overrides."""
        return make_plan(self.platform.config, self.environment, services, version, **overrides)

    async def database_plan(self, *, no_backup_reason: str | None = None) -> DatabasePlan | None:
        """The database step the release needs first (None: it brings no migrations)."""
        return await plan_database(
            self.platform.database, self.platform.database_admin, no_backup_reason=no_backup_reason
        )

    def _driver(
        self,
        plan: ReleasePlan,
        database: DatabasePlan | None = None,
        recorder: ReleaseRecorder | None = None,
    ) -> ReleaseDriver:
        cfg = self.platform.config
        self.driver = ReleaseDriver(
            self.platform.orchestrator,
            plan,
            deployments=dict(self.platform.services()),
            containers={s.name: s.container_name for s in cfg.services},
            metrics=self.platform.metrics,
            journal=self.journal,
            database=self.platform.database,
            database_plan=database,
            database_admin=self.platform.database_admin,
            environment=self.environment,
            owner=identity().rsplit(" pid ", 1)[0],
            recorder=recorder,
            on_change=self._on_change,
            clock=self._clock,
        )
        return self.driver

    def recorder(
        self,
        plan: ReleasePlan,
        database: DatabasePlan | None = None,
        *,
        checklist: ChecklistReport | None = None,
        gate: ReleaseGate | None = None,
        override_reason: str = "",
    ) -> ReleaseRecorder:
        cfg = self.platform.config
        return ReleaseRecorder(
            records_dir(self.journal.path),
            plan,
            environment=self.environment,
            actor=self.journal.actor,
            deployments=dict(self.platform.services()),
            containers={s.name: s.container_name for s in cfg.services},
            checklist=checklist,
            gate=gate,
            override_reason=override_reason,
            database=database,
            clock=self._clock,
        )

    async def override(self, plan: ReleasePlan, gate: ReleaseGate, reason: str) -> None:
        """Going ahead on a No-Go: who, why and on what verdict, journalled before anything
        of the release runs."""
        await asyncio.to_thread(
            self.journal.append,
            "checklist.override",
            f"{plan.version}@{self.environment}",
            stage="after",
            result="overridden",
            details={"reason": reason, "verdict": gate.words, "release": plan.release_id},
        )

    async def start(
        self,
        plan: ReleasePlan,
        database: DatabasePlan | None = None,
        *,
        checklist: ChecklistReport | None = None,
        gate: ReleaseGate | None = None,
        override_reason: str = "",
    ) -> ReleaseDriver:
        """Take the lock, run the database step when ``database`` names one, create the
        canaries (journalled): ``run()`` on the result drives. A failed database step leaves
        the driver FAILED with the reason, and no service touched. The release record (in the
        journal dir) gets the checklist as it stood and the gate's words at the start."""
        recorder = self.recorder(
            plan, database, checklist=checklist, gate=gate, override_reason=override_reason
        )
        await recorder.capture_before(self.platform.orchestrator)
        driver = self._driver(plan, database, recorder)
        await driver.start()
        return driver

    async def take_over(self) -> ReleaseDriver:
        """Drive the release in progress from its canaries' state (its driver is gone)."""
        canaries = await self.platform.orchestrator.canaries(self.platform.services())
        if not canaries:
            raise NoRelease("no release to take over: no canary is left")
        plan = release_plan(next(iter(canaries.values())))
        recorder = self.recorder(plan)
        with contextlib.suppress(RecordError, ValueError):
            recorder.adopt(read_record(recorder.directory, plan.release_id))
        await recorder.capture_before(self.platform.orchestrator)
        driver = self._driver(plan, None, recorder)
        await driver.resume()
        return driver

    async def status(self) -> tuple[ReleaseView | None, LockRecord | None]:
        orchestrator = self.platform.orchestrator
        view = await read_release(orchestrator, self.platform.services())
        return view, await orchestrator.read_lock()

    async def control(self, action: str, reason: str) -> str:
        """pause | resume | promote | promote-full | abort, journalled before and after;
        returns which services it reached. An abort of the release this process drives goes
        through its driver; one whose driver is gone also clears the expired lock."""
        if action not in ACTIONS:
            raise BvaError(f"unknown release action {action!r}")
        view = await read_release(self.platform.orchestrator, self.platform.services())
        if view is None:
            raise NoRelease("no release is in progress")
        target = release_target(view.release_id, self.environment)
        driver = self.driver
        async with self.journal.arecord(f"release.{action}", target, {"reason": reason}):
            if action == "abort" and driver is not None and not driver.state.over:
                await driver.abort(reason)
                return ", ".join(view.services)
            done = await send_control(
                self.platform.orchestrator, self.platform.services(), action, reason=reason
            )
            if action == "abort":
                held = await self.platform.orchestrator.read_lock()
                if held is not None and held.expired(time.time()):
                    await self.platform.orchestrator.delete_lock()
            return done
