"""The whole guarded restore as one coroutine that any front end drives: scale the connected
services to 0 (each scale journalled), wait for the sessions to drain, run the journalled
restore, and scale the services back in a ``finally`` — after a failure or a cancellation too.

It reports through typed events and returns an outcome; it prints nothing, so the CLI prints
the events as lines and a wizard step can show them as progress.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from backends.db.admin import DatabaseAdmin
from backends.db.restore import RestoreError, plan_restore, restore
from backends.db.restore_models import (
    EventLevel,
    RestoreEvent,
    RestoreOutcome,
    RestorePlan,
    RestoreResult,
    Step,
)
from backends.errors import BvaError, ReadOnlyError
from backends.journal.records import JournalError
from backends.journal.store import Journal
from backends.orchestrator import Orchestrator

DRAIN_TIMEOUT_S = 120.0


def connected_services(plan: RestorePlan, services: Mapping[str, str]) -> list[str]:
    """The platform's services among the sessions' application names, in the plan's order."""
    return [c.application for c in plan.connected if c.application in services]


async def run_restore(
    orchestrator: Orchestrator,
    services: Mapping[str, str],
    admin: DatabaseAdmin,
    plan: RestorePlan,
    dsn: str,
    journal: Journal,
    *,
    scale_down: bool,
    on_event: Callable[[RestoreEvent], None] = lambda _: None,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
    poll_s: float = 0.5,
    connect_timeout: float = 5.0,
) -> RestoreOutcome:
    """Drain (scaling the connected services to 0 with ``scale_down``), restore, scale back.

    ``services`` maps each service to its deployment. Failures come back in the outcome;
    only a cancellation propagates, after the services were scaled back."""
    env = admin.environment
    scaled: dict[str, int] = {}
    result: RestoreResult | None = None
    error = ""
    try:
        if scale_down:
            for service in connected_services(plan, services):
                dep = services[service]
                desired = (await orchestrator.get_workload(dep)).desired
                scaled[dep] = desired  # first: whatever happens next, the finally scales it back
                try:
                    async with journal.arecord("db.restore.scale", f"{dep}@{env}", {"to": 0}):
                        await orchestrator.scale(dep, 0)
                except ReadOnlyError:
                    del scaled[dep]  # refused before anything was sent: nothing to undo
                    raise
                on_event(RestoreEvent(Step.SCALE_DOWN, f"scaled {dep} {desired} -> 0"))
        await _drain(plan, dsn, drain_timeout_s, poll_s, connect_timeout, on_event)
        details = {"backup": plan.backup.name, "backup_taken_at": plan.backup.taken_at}
        async with journal.arecord("db.restore", plan.confirmation_text, details) as entry:
            result = await restore(
                plan,
                dsn,
                admin.backup_dir,
                pg_bin=admin.pg_bin,
                on_step=lambda s: on_event(RestoreEvent(Step.RESTORE, s)),
                connect_timeout=connect_timeout,
            )
            entry.details.update(
                safety_backup=result.safety.path, duration_s=round(result.duration_s, 2)
            )
    except (RestoreError, BvaError, JournalError) as exc:
        result, error = None, str(exc)
        on_event(RestoreEvent(Step.FAILED, f"restore failed: {exc}", EventLevel.ERROR))
    finally:
        # Shielded: a cancelled restore must still bring every service back.
        not_back = await asyncio.shield(_scale_back(orchestrator, journal, scaled, env, on_event))
    return RestoreOutcome(result, error, tuple(scaled.items()), tuple(not_back))


async def _scale_back(
    orchestrator: Orchestrator,
    journal: Journal,
    scaled: Mapping[str, int],
    env: str,
    on_event: Callable[[RestoreEvent], None],
) -> list[str]:
    """Every scaled deployment back to its replicas; the ones that would not go back."""
    not_back: list[str] = []
    for dep, replicas in scaled.items():
        try:
            async with journal.arecord("db.restore.scale", f"{dep}@{env}", {"to": replicas}):
                await orchestrator.scale(dep, replicas)
        except (BvaError, JournalError) as exc:
            not_back.append(dep)
            text = f"could not scale {dep} back to {replicas}: {exc}"
            on_event(RestoreEvent(Step.SCALE_UP, text, EventLevel.ERROR))
        else:
            on_event(RestoreEvent(Step.SCALE_UP, f"scaled {dep} back to {replicas}"))
    return not_back


async def _drain(
    plan: RestorePlan,
    dsn: str,
    timeout_s: float,
    poll_s: float,
    connect_timeout: float,
    on_event: Callable[[RestoreEvent], None],
) -> None:
    start = time.monotonic()
    deadline = start + timeout_s
    said: tuple[str, ...] = ()
    while True:
        now = await plan_restore(
            dsn, plan.backup, plan.environment, connect_timeout=connect_timeout
        )
        if now.drained:
            return
        if time.monotonic() > deadline:
            who = ", ".join(f"{c.application} ({c.sessions})" for c in now.connected)
            raise RestoreError(f"still connected after {timeout_s:g}s of draining: {who}")
        # Said again whenever who is left changes: the captain sees the drain progress.
        left = tuple(f"{c.application} ({c.sessions})" for c in now.connected)
        if left != said:
            said = left
            waited = time.monotonic() - start
            on_event(
                RestoreEvent(
                    Step.DRAIN,
                    f"waiting for {', '.join(left)} to disconnect "
                    f"({waited:.0f}s of {timeout_s:g}s)",
                )
            )
        await asyncio.sleep(poll_s)
