"""Scaling one service: the plan (what it changes, what warns, what refuses it) and its
execution under the release lock, journalled before and after, then watched until the
workload reports the count ready — like `kubectl scale deployment/x --replicas=N` or
`docker compose up --scale x=N`, on either orchestrator.

`bva scale` drives this; it decides nothing itself. Progress lines go to a ``say`` callback,
never to a terminal: the caller prints them (or shows them) as it likes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from backends.errors import BvaError
from backends.journal.store import Journal
from backends.models import RolloutState, Workload
from backends.orchestrator import Orchestrator, workload_ref
from backends.platform import Platform
from backends.release.lock import LockHeld, ReleaseLock
from backends.release.plan import A_OWNER, A_RELEASE, A_VERSION
from backends.sanitize import sanitize_text

__all__ = [
    "ACTION",
    "POLL_S",
    "RENEW_S",
    "Say",
    "ScalePlan",
    "ScaleResult",
    "execute_scale",
    "plan_scale",
    "plural",
    "wait_ready",
]

ACTION = "scale"
POLL_S = 0.5
RENEW_S = 5.0

Say = Callable[[str], None]


def _clean(text: str | None, limit: int = 300) -> str:
    return sanitize_text(text or "", limit)


def plural(n: int) -> str:
    """ "1 replica", "3 replicas"."""
    return f"{n} replica{'s' if n != 1 else ''}"


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """What `scale SERVICE N` would do in one environment.

    ``current`` is None when nothing was read (a read-only platform refuses before any
    request). ``blocker`` says why the service must not be scaled now ("" when it may);
    ``warnings`` are only looked for when it may and the count changes."""

    service: str
    workload: str  # the workload's name ("user-service")
    ref: str  # as the orchestrator's users write it ("deployment/user-service")
    environment: str
    production: bool
    current: int | None
    wanted: int
    warnings: tuple[str, ...] = ()
    blocker: str = ""
    read_only: bool = False

    @property
    def refusal(self) -> str:
        """Why nothing will be done, in one line ("" when the plan may be executed)."""
        if self.read_only:
            return (
                f"read-only: refusing to scale {self.ref} in {self.environment}; nothing was sent"
            )
        if self.blocker:
            return f"refused: {self.blocker}; nothing was changed"
        return ""

    @property
    def changes(self) -> bool:
        """True when executing the plan changes the replica count."""
        return not self.refusal and self.current != self.wanted

    def confirmation_text(self) -> str:
        """What the engineer types to confirm: ``<service>@<env>``."""
        return f"{self.service}@{self.environment}"


@dataclass(frozen=True, slots=True)
class ScaleResult:
    ok: bool
    outcome: str  # "3 of 3 replicas ready in 4.2s", "scaled (not waited for)", …
    ready: int | None = None  # the ready count last read (None when not waited for)
    refusal: str = ""  # set when refused at execution time (nothing was changed)
    journal: str = ""  # the journal file, when the change was journalled


async def plan_scale(platform: Platform, service: str, wanted: int) -> ScalePlan:
    """Read what scaling ``service`` to ``wanted`` would change, and what refuses or warns.
    A read-only platform is refused here, before a single request."""
    names = dict(platform.services())
    if service not in names:
        raise BvaError(f"unknown service {service!r} (known: {', '.join(names)})")
    orch = platform.orchestrator
    name = names[service]
    ref = workload_ref(orch.kind, name)
    base = ScalePlan(
        service=service,
        workload=name,
        ref=ref,
        environment=platform.env_name,
        production=platform.production,
        current=None,
        wanted=wanted,
    )
    if platform.read_only or orch.read_only:
        # Nothing reaches the orchestrator.
        return replace(base, read_only=True)
    workload = await orch.get_workload(name)
    current = workload.desired
    blocked = await _blocker(orch, service, name)
    if blocked or current == wanted:
        return replace(base, current=current, blocker=blocked)
    warnings = await _warnings(orch, service, ref, name, wanted)
    return replace(base, current=current, warnings=tuple(warnings))


async def _blocker(orch: Orchestrator, service: str, name: str) -> str:
    """Why the service must not be scaled now ("" when it may): a live release lock (the
    lock is the environment's, so whoever holds it may be changing any service), or a canary
    of this service (its weight is counted against the stable replicas)."""
    now = time.time()
    lease = await orch.read_lock()
    if lease is not None and not lease.expired(now):
        return f"release lock held by {_clean(lease.describe(now))}: wait for it or abort it"
    return await _canary_blocker(orch, service, name)


async def _canary_blocker(orch: Orchestrator, service: str, name: str) -> str:
    canary = (await orch.canaries([(service, name)])).get(service)
    if canary is None:
        return ""
    marks = canary.marks
    release = f"release {marks[A_RELEASE]}" if marks.get(A_RELEASE) else "a canary release"
    owner = marks.get(A_OWNER, "")
    extra = ", ".join(p for p in (marks.get(A_VERSION, ""), f"by {owner}" if owner else "") if p)
    return _clean(
        f"{service} has a canary ({canary.name}) of {release}"
        + (f" ({extra})" if extra else "")
        + ": promote or abort that release first (`bva release status`)"
    )


async def _warnings(
    orch: Orchestrator, service: str, ref: str, name: str, wanted: int
) -> list[str]:
    lines = []
    if wanted == 0:
        lines.append(
            f"with 0 replicas {service} will serve nothing: every request to it fails "
            "until it is scaled up again"
        )
    try:
        autoscalers = await orch.list_autoscalers()
    except BvaError:
        autoscalers = []  # best effort: an unreadable autoscaler list is no reason to stop
    for a in autoscalers:
        if a.target_name != name:
            continue
        hpa = f"horizontalpodautoscaler/{_clean(a.name, 100)}"
        bounds = f"between {a.min_replicas} and {a.max_replicas} replicas"
        if not a.min_replicas <= wanted <= a.max_replicas:
            lines.append(f"{hpa} keeps {ref} {bounds}: it will scale it back")
        else:
            lines.append(f"{hpa} keeps {ref} {bounds}: it may change the count again")
    return lines


async def execute_scale(
    orch: Orchestrator,
    journal: Journal,
    plan: ScalePlan,
    *,
    wait: bool,
    timeout: float,
    say: Say,
    poll: float = POLL_S,
) -> ScaleResult:
    """Carry ``plan`` out: take the release lock (held while the change is made, so no
    release starts half-way through it), look for a canary again under it, journal, scale,
    let the lock go, then (with ``wait``) watch until the count is ready.

    A plan that refuses is refused again here (nothing is sent); a plan that changes nothing
    is only waited for, without the lock or the journal."""
    if plan.refusal:
        return ScaleResult(False, plan.refusal, refusal=plan.refusal)
    if not plan.changes:
        if not wait:
            return ScaleResult(True, "nothing to change")
        return await wait_ready(orch, plan, timeout=timeout, say=say, poll=poll)
    service, name, ref, wanted = plan.service, plan.workload, plan.ref, plan.wanted
    lock = ReleaseLock(orch, f"scale-{int(time.time())}")
    try:
        await lock.acquire(take_over=True)
    except LockHeld as exc:
        refusal = f"refused: {_clean(str(exc))}; nothing was changed"
        return ScaleResult(False, refusal, refusal=refusal)
    try:
        # A canary created between the first look and the lock: looked for again under it.
        blocked = await _canary_blocker(orch, service, name)
    except BaseException:
        await _let_go(lock, say)
        raise
    if blocked:
        await _let_go(lock, say)
        refusal = f"refused: {blocked}; nothing was changed"
        return ScaleResult(False, refusal, refusal=refusal)
    target = f"{service}@{journal.environment}"
    details = {
        "service": service,
        "workload": name,
        "orchestrator": orch.kind,
        "from": plan.current,
        "to": wanted,
        "wait": bool(wait),
    }
    started = time.monotonic()
    locked = True
    try:
        async with journal.arecord(ACTION, target, details) as entry:
            renewer = asyncio.create_task(_renew(lock))
            try:
                await orch.scale(name, wanted)
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                await _let_go(lock, say)
                locked = False
            say(f"{ref} scaled from {plan.current} to {plural(wanted)}")
            if not wait:
                result = ScaleResult(True, "scaled (not waited for)")
                entry.result = "ok"
                entry.details["outcome"] = result.outcome
            else:
                result = await wait_ready(orch, plan, timeout=timeout, say=say, poll=poll)
                entry.result = "ok" if result.ok else f"not ready: {result.outcome}"
                entry.details.update(
                    outcome=result.outcome,
                    ready=result.ready or 0,
                    took_s=round(time.monotonic() - started, 1),
                )
    finally:
        if locked:
            await _let_go(lock, say)
    return ScaleResult(result.ok, result.outcome, result.ready, journal=str(journal.path))


async def _renew(lock: ReleaseLock) -> None:
    while True:
        await asyncio.sleep(RENEW_S)
        try:
            await lock.renew()
        except BvaError:
            return  # lost or unreachable: the scale in flight goes on either way


async def _let_go(lock: ReleaseLock, say: Say) -> None:
    try:
        await asyncio.shield(lock.release())
    except BvaError as exc:
        say(f"bva: warning: could not release the release lock: {_clean(str(exc))}")


def _reached(w: Workload, wanted: int, state: RolloutState) -> bool:
    return (
        w.desired == wanted
        and w.ready == wanted
        and w.observed_generation >= w.generation
        and state in (RolloutState.COMPLETE, RolloutState.PAUSED)
    )


async def wait_ready(
    orch: Orchestrator, plan: ScalePlan, *, timeout: float, say: Say, poll: float = POLL_S
) -> ScaleResult:
    """Poll until the workload has ``plan.wanted`` ready and its rollout status is complete
    (or ``timeout`` passes, or the rollout fails); one line per change of kubectl's message,
    then one for the outcome."""
    name, ref, wanted = plan.workload, plan.ref, plan.wanted
    started = time.monotonic()
    end = started + timeout
    last = ""
    while True:
        w = await orch.get_workload(name)
        status = await orch.rollout_status(name)
        said = _clean(status.message)
        message = f"{w.ready}/{wanted} ready: {said}"
        if message != last:
            say(f"{time.strftime('%H:%M:%S')} {message}")
            last = message
        if _reached(w, wanted, status.state):
            took = f"{time.monotonic() - started:.1f}s"
            outcome = (
                f"{w.ready} of {plural(wanted)} ready in {took}"
                if wanted
                else f"no replica left in {took}"
            )
            say(f"✔ {ref}: {outcome}")
            return ScaleResult(True, outcome, w.ready)
        if status.state is RolloutState.FAILED:
            outcome = f"{w.ready} of {plural(wanted)} ready, the rollout failed: {said}"
            say(f"✖ {ref}: {outcome}")
            return ScaleResult(False, outcome, w.ready)
        if time.monotonic() >= end:
            outcome = f"{w.ready} of {plural(wanted)} ready after {timeout:g}s: {said}"
            say(f"✖ {ref}: {outcome}")
            return ScaleResult(False, outcome, w.ready)
        await asyncio.sleep(poll)
