"""Running the checklist: every automated item's check side by side, each within its own
timeout (so the whole run takes about as long as the slowest check, not the sum), and the one
verdict: Go when no check fails, none is stale, and every required sign-off is there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from backends.checklist.checks import CHECKS, CheckContext
from backends.checklist.models import (
    ChecklistReport,
    Finding,
    ItemResult,
    ItemState,
    ReleaseGate,
    SignOff,
    Verdict,
)
from backends.config.checklist import ChecklistItem
from backends.errors import BvaError
from backends.platform import Platform
from backends.sanitize import sanitize_text


def rules(platform: Platform) -> tuple[bool, bool]:
    """(Go required to start a release, sign-offs required) in this environment: as set,
    else both in production and neither elsewhere."""
    env = platform.env.checklist
    production = platform.env.production
    require_go = env.require_go if env.require_go is not None else production
    signoffs = env.require_signoffs if env.require_signoffs is not None else production
    return require_go, signoffs


async def _run_one(ctx: CheckContext, item: ChecklistItem, timeout: float) -> Finding:
    check = CHECKS.get(item.check or "")
    if check is None:
        return Finding(ItemState.UNKNOWN, f"bva has no {item.check} check yet")
    try:
        async with asyncio.timeout(timeout):
            return await check(ctx, item)
    except TimeoutError:
        return Finding(ItemState.UNKNOWN, f"timed out after {timeout:g}s")
    except BvaError as exc:
        return Finding(ItemState.UNKNOWN, sanitize_text(str(exc), 200))


def signoff_result(item: ChecklistItem, signoffs: Sequence[SignOff], required: bool) -> ItemResult:
    mine = tuple(s for s in signoffs if s.item == item.id)
    last = mine[-1] if mine else None
    evidence = (
        f"signed by {', '.join(s.who for s in mine)}"
        + (f": {last.comment}" if last is not None and last.comment else "")
        if mine
        else "not signed" + ("" if required else " (not required here)")
    )
    return ItemResult(
        item.id,
        item.section,
        item.title,
        automated=False,
        state=ItemState.SIGNED if mine else ItemState.UNSIGNED,
        evidence=sanitize_text(evidence, 300),
        signoffs=mine,
        required=required,
    )


async def run_checklist(
    platform: Platform,
    *,
    version: str | None = None,
    signoffs: Sequence[SignOff] = (),
    previous: Iterable[ItemResult] = (),
    only: set[str] | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> ChecklistReport:
    """Run the automated items (``only`` those ids, keeping ``previous`` results for the
    rest) and report with the verdict. Never raises for a source that is down: that item is
    unknown, with why."""
    cfg = platform.config.checklist
    items = cfg.resolved()
    require_go, require_signoffs = rules(platform)
    kept = {r.item: r for r in previous}
    ctx = CheckContext(platform, cfg, version, clock)

    async def one(item: ChecklistItem) -> ItemResult:
        t0 = time.monotonic()
        finding = await _run_one(ctx, item, cfg.check_timeout)
        result = ItemResult(
            item.id,
            item.section,
            item.title,
            automated=True,
            state=finding.state,
            evidence=sanitize_text(finding.evidence, 300),
            duration_s=time.monotonic() - t0,
            ran_at=clock(),
        )
        if on_result is not None:
            on_result(result)
        return result

    chosen = [i for i in items if i.automated and (only is None or i.id in only)]
    try:
        ran = {r.item: r for r in await asyncio.gather(*(one(i) for i in chosen))}
    finally:
        ctx.close()
    results: list[ItemResult] = []
    for item in items:
        if not item.automated:
            results.append(signoff_result(item, signoffs, require_signoffs))
        elif item.id in ran:
            results.append(ran[item.id])
        else:
            results.append(
                kept.get(item.id)
                or ItemResult(
                    item.id, item.section, item.title, automated=True, state=ItemState.NOT_RUN
                )
            )
    now = clock()
    return ChecklistReport(
        environment=platform.env_name,
        version=version,
        results=tuple(results),
        verdict=verdict(results, now=now, stale_after_s=cfg.stale_after),
        taken_at=now,
        require_go=require_go,
        stale_after_s=cfg.stale_after,
        sections=tuple(dict.fromkeys(i.section for i in items)),
    )


def verdict(results: Sequence[ItemResult], *, now: float, stale_after_s: float) -> Verdict:
    """Go when no check failed, no check result is missing or stale, and every required
    sign-off is given; what is unknown or warns is listed, and does not stop a Go. Time alone
    never makes a Go: a result past its age counts as not run."""
    reasons: list[str] = []
    warnings: list[str] = []
    for r in results:
        if r.automated:
            if r.state is ItemState.FAIL:
                reasons.append(f"{r.title}: {r.evidence}")
            elif r.state in (ItemState.NOT_RUN, ItemState.RUNNING) or r.stale(now, stale_after_s):
                reasons.append(f"{r.title}: not checked in the last {stale_after_s / 60:g} min")
            elif r.state in (ItemState.WARN, ItemState.UNKNOWN):
                warnings.append(f"{r.title}: {r.state.value}: {r.evidence}")
        elif r.required and r.state is not ItemState.SIGNED:
            reasons.append(f"{r.title}: not signed off")
    return Verdict(not reasons, tuple(reasons), tuple(warnings))


def release_gate(
    report: ChecklistReport | None, version: str, *, required: bool, now: float, hint: str
) -> ReleaseGate:
    """What the checklist says about starting a release of ``version`` now: the verdict is
    taken again at ``now``, so a result that went stale since the run no longer counts."""
    if report is None or (report.version or "") != version:
        return ReleaseGate(required, False, f"not run for {version} ({hint})")
    v = verdict(report.results, now=now, stale_after_s=report.stale_after_s)
    ago = int(max(0.0, now - report.taken_at) // 60)
    if v.go:
        return ReleaseGate(required, True, f"GO, checked {ago} min ago")
    return ReleaseGate(required, False, f"NO-GO: {v.reasons[0]}")
