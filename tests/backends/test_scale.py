"""backends/scale.py against a stand-in orchestrator that really scales and keeps a lock: the
plan (read-only refused before any request, the release lock, a canary, the warnings), the
execution (lock held only while scaling, the canary looked for again under it, the journal
before and after) and the wait's three endings. The real clusters are tests/cli's."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from backends.errors import Conflict
from backends.journal.store import Journal
from backends.models import Autoscaler, Canary, LockRecord, RolloutState, RolloutStatus, Workload
from backends.platform import Platform
from backends.release.plan import A_OWNER, A_RELEASE, A_VERSION
from backends.scale import ScalePlan, execute_scale, plan_scale, plural, wait_ready
from tests.support.fake_platform import FakeOrchestrator, scenario

USER = "user-service"


class ScalingOrchestrator(FakeOrchestrator):
    """Scales for real (ready at once, or never with ``stuck``), keeps the lock in memory and
    counts every call it answers."""

    def __init__(self, base: FakeOrchestrator) -> None:
        super().__init__(base.workloads, pods=base.pods, kind=base.kind)
        self.calls: list[str] = []
        self.lock: LockRecord | None = None
        self.canary: dict[str, Canary] = {}
        self.canary_on_lock: Canary | None = None  # appears once the lock is taken
        self.stuck = False
        self.failed = False

    def _find(self, name: str) -> Workload:
        return next(w for w in self.workloads if w.name == name)

    async def get_workload(self, name: str) -> Workload:
        self.calls.append("get_workload")
        return await super().get_workload(name)

    async def rollout_status(self, name: str) -> RolloutStatus:
        self.calls.append("rollout_status")
        w = self._find(name)
        if self.failed:
            message = f'deployment "{name}" exceeded its progress deadline'
            return RolloutStatus(name, RolloutState.FAILED, False, message)
        if w.ready != w.desired:
            message = f"Waiting for deployment {name!r} rollout to finish"
            return RolloutStatus(name, RolloutState.PROGRESSING, False, message)
        return RolloutStatus(name, RolloutState.COMPLETE, True, "successfully rolled out")

    async def scale(self, name: str, replicas: int) -> None:
        self.calls.append(f"scale {name} {replicas}")
        w = self._find(name)
        ready = w.ready if self.stuck else replicas
        self.workloads[self.workloads.index(w)] = dataclasses.replace(
            w, desired=replicas, ready=ready
        )

    async def canaries(self, services: Sequence[tuple[str, str]]) -> dict[str, Canary]:
        self.calls.append("canaries")
        return {s: c for s, c in self.canary.items() if s in dict(services)}

    async def list_autoscalers(self) -> list[Autoscaler]:
        self.calls.append("list_autoscalers")
        return await super().list_autoscalers()

    async def read_lock(self) -> LockRecord | None:
        self.calls.append("read_lock")
        return self.lock

    async def create_lock(self, record: LockRecord) -> LockRecord:
        if self.lock is not None:
            raise Conflict("the lease exists")
        self.lock = dataclasses.replace(record, version="1")
        if self.canary_on_lock is not None:
            self.canary[self.canary_on_lock.service] = self.canary_on_lock
        return self.lock

    async def replace_lock(self, record: LockRecord) -> LockRecord:
        self.lock = dataclasses.replace(record, version="2")
        return self.lock

    async def delete_lock(self) -> None:
        self.calls.append("delete_lock")
        self.lock = None


def platform(name: str = "healthy") -> tuple[Platform, ScalingOrchestrator]:
    base = scenario(name)
    assert isinstance(base.orchestrator, FakeOrchestrator)
    orch = ScalingOrchestrator(base.orchestrator)
    return dataclasses.replace(base, orchestrator=orch), orch


def live_lock(holder: str = "alice@laptop pid 42 #abc123") -> LockRecord:
    now = time.time()
    return LockRecord(holder, "r-20990101-x", now, now, 300)


def canary() -> Canary:
    marks = {A_RELEASE: "r-canary-1", A_VERSION: "1.1.0", A_OWNER: "bob@desk"}
    return Canary(USER, f"{USER}-canary", 1, 1, marks=marks)


def test_plural() -> None:
    assert [plural(n) for n in (0, 1, 2)] == ["0 replicas", "1 replica", "2 replicas"]


async def test_a_plan_says_what_changes_and_warns() -> None:
    p, orch = platform()
    plan = await plan_scale(p, USER, 1)
    assert (plan.ref, plan.workload, plan.current, plan.wanted) == (
        f"deployment/{USER}",
        USER,
        2,
        1,
    )
    assert plan.changes and not plan.refusal and not plan.production
    assert plan.confirmation_text() == f"{USER}@sandbox"
    assert plan.warnings == (
        f"horizontalpodautoscaler/{USER}-hpa keeps deployment/{USER} between 2 and 10 "
        "replicas: it will scale it back",
    )
    zero = await plan_scale(p, USER, 0)
    assert zero.warnings[0].startswith(f"with 0 replicas {USER} will serve nothing")
    inside = await plan_scale(p, USER, 4)
    assert inside.warnings[-1].endswith("it may change the count again")
    assert not any(c.startswith("scale") for c in orch.calls)


async def test_the_same_count_changes_nothing_and_looks_no_further() -> None:
    p, orch = platform()
    plan = await plan_scale(p, USER, 2)
    assert not plan.changes and not plan.refusal and plan.warnings == ()
    assert "list_autoscalers" not in orch.calls


async def test_read_only_is_refused_before_any_request() -> None:
    p, orch = platform("read_only")
    plan = await plan_scale(p, USER, 5)
    assert plan.read_only and plan.current is None and not plan.changes
    assert plan.refusal == (
        f"read-only: refusing to scale deployment/{USER} in production; nothing was sent"
    )
    assert orch.calls == []


async def test_a_live_release_lock_blocks_an_expired_one_does_not() -> None:
    p, orch = platform()
    orch.lock = live_lock()
    held = await plan_scale(p, USER, 3)
    assert held.refusal.startswith("refused: release lock held by alice@laptop pid 42 #abc123")
    assert held.refusal.endswith(": wait for it or abort it; nothing was changed")
    assert not held.changes and held.warnings == ()
    orch.lock = dataclasses.replace(live_lock(), renewed=time.time() - 3600, duration=15)
    assert (await plan_scale(p, USER, 3)).changes


async def test_a_canary_of_the_service_blocks_it_only() -> None:
    p, orch = platform()
    orch.canary = {USER: canary()}
    plan = await plan_scale(p, USER, 3)
    assert plan.blocker == (
        f"{USER} has a canary ({USER}-canary) of release r-canary-1 (1.1.0, by bob@desk): "
        "promote or abort that release first (`bva release status`)"
    )
    assert (await plan_scale(p, "tweet-service", 3)).changes


async def test_execute_scales_under_the_lock_journals_and_waits(tmp_path: Path) -> None:
    p, orch = platform()
    journal = Journal(tmp_path / "sandbox.jsonl", "sandbox")
    plan = await plan_scale(p, USER, 3)
    said: list[str] = []
    result = await execute_scale(orch, journal, plan, wait=True, timeout=5, say=said.append)
    assert result.ok and result.ready == 3 and not result.refusal
    assert result.outcome.startswith("3 of 3 replicas ready in")
    assert result.journal == str(journal.path)
    assert said[0] == f"deployment/{USER} scaled from 2 to 3 replicas"
    assert said[1].endswith(" 3/3 ready: successfully rolled out")
    assert said[-1] == f"✔ deployment/{USER}: {result.outcome}"
    # The lock was let go as soon as the scale was sent, before the wait.
    assert orch.lock is None
    assert orch.calls.index("delete_lock") < orch.calls.index("rollout_status")
    before, after = journal.records()
    assert (before.stage, after.stage, after.action, after.target) == (
        "before",
        "after",
        "scale",
        f"{USER}@sandbox",
    )
    assert after.result == "ok"
    assert {k: after.details[k] for k in ("from", "to", "wait", "ready", "outcome")} == {
        "from": 2,
        "to": 3,
        "wait": True,
        "ready": 3,
        "outcome": result.outcome,
    }


async def test_without_wait_it_is_scaled_and_not_waited_for(tmp_path: Path) -> None:
    p, orch = platform()
    journal = Journal(tmp_path / "sandbox.jsonl", "sandbox")
    plan = await plan_scale(p, USER, 1)
    said: list[str] = []
    result = await execute_scale(orch, journal, plan, wait=False, timeout=5, say=said.append)
    assert (result.ok, result.outcome, result.ready) == (True, "scaled (not waited for)", None)
    assert said == [f"deployment/{USER} scaled from 2 to 1 replica"]
    assert "rollout_status" not in orch.calls
    assert journal.records()[-1].details["outcome"] == "scaled (not waited for)"


async def test_a_canary_that_appears_under_the_lock_refuses(tmp_path: Path) -> None:
    p, orch = platform()
    journal = Journal(tmp_path / "sandbox.jsonl", "sandbox")
    plan = await plan_scale(p, USER, 3)
    orch.canary_on_lock = canary()
    result = await execute_scale(orch, journal, plan, wait=True, timeout=5, say=print)
    assert not result.ok and result.refusal.startswith(f"refused: {USER} has a canary")
    assert result.refusal.endswith("; nothing was changed") and result.journal == ""
    assert orch.lock is None  # let go
    assert not any(c.startswith("scale") for c in orch.calls)
    assert journal.records() == []


async def test_a_lock_taken_after_the_plan_refuses(tmp_path: Path) -> None:
    p, orch = platform()
    journal = Journal(tmp_path / "sandbox.jsonl", "sandbox")
    plan = await plan_scale(p, USER, 3)
    orch.lock = live_lock("carol@box pid 7 #fff000")
    result = await execute_scale(orch, journal, plan, wait=True, timeout=5, say=print)
    assert result.refusal.startswith("refused: release lock held by carol@box pid 7 #fff000")
    assert orch.lock is not None and orch.lock.holder.startswith("carol@")  # left alone
    assert not any(c.startswith("scale") for c in orch.calls)
    assert journal.records() == []


async def test_a_refusing_plan_is_refused_again_at_execution(tmp_path: Path) -> None:
    p, orch = platform("read_only")
    plan = await plan_scale(p, USER, 3)
    journal = Journal(tmp_path / "production.jsonl", "production")
    result = await execute_scale(orch, journal, plan, wait=True, timeout=5, say=print)
    assert not result.ok and result.refusal == plan.refusal
    assert orch.calls == [] and journal.records() == []


@pytest.mark.parametrize("failed", [False, True])
async def test_not_ready_in_time_or_failed(tmp_path: Path, failed: bool) -> None:
    p, orch = platform()
    orch.stuck = True
    journal = Journal(tmp_path / "sandbox.jsonl", "sandbox")
    plan = await plan_scale(p, USER, 3)
    orch.failed = failed
    said: list[str] = []
    result = await execute_scale(
        orch, journal, plan, wait=True, timeout=0.2, say=said.append, poll=0.05
    )
    assert not result.ok and result.ready == 2
    if failed:
        assert result.outcome == (
            f'2 of 3 replicas ready, the rollout failed: deployment "{USER}" exceeded its '
            "progress deadline"
        )
    else:
        assert result.outcome.startswith("2 of 3 replicas ready after 0.2s: Waiting for")
    assert said[-1] == f"✖ deployment/{USER}: {result.outcome}"
    # One line per change of the message, not one per poll.
    assert len([line for line in said if "/3 ready: " in line]) == 1
    assert journal.records()[-1].result == f"not ready: {result.outcome}"


async def test_wait_ready_for_a_count_already_there() -> None:
    p, orch = platform()
    plan: ScalePlan = await plan_scale(p, USER, 2)
    said: list[str] = []
    result = await wait_ready(orch, plan, timeout=5, say=said.append)
    assert result.ok and result.ready == 2 and said[-1].startswith(f"✔ deployment/{USER}: 2 of")
