"""The checks behind the checklist's automated items, each against the real source through the
platform's adapters, each answering pass / warn / fail / unknown with one line of evidence.
Unknown means the source could not say (unreachable, not configured): never a pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backends.checklist.models import Finding, ItemState
from backends.checklist.window import window_finding
from backends.config.checklist import ChecklistConfig, ChecklistItem
from backends.db.backup import list_backups
from backends.db.models import DatabasePicture, ServerState
from backends.errors import BvaError
from backends.health.models import ProbeStatus
from backends.platform import Platform
from backends.sanitize import sanitize_text
from backends.status.monitor import AlertLevel, HealthPicture
from backends.status.report import collect

P, W, F, U = ItemState.PASS, ItemState.WARN, ItemState.FAIL, ItemState.UNKNOWN


@dataclass
class CheckContext:
    """What every check of one run shares: the platform, the version being checked, and the
    readings two checks both need (the health picture, the database), taken once."""

    platform: Platform
    config: ChecklistConfig
    version: str | None
    clock: Callable[[], float] = time.time
    _picture: asyncio.Task[HealthPicture] | None = field(default=None, repr=False)
    _database: asyncio.Task[DatabasePicture | None] | None = field(default=None, repr=False)

    async def picture(self) -> HealthPicture:
        if self._picture is None:
            self._picture = asyncio.ensure_future(collect(self.platform))
        return await asyncio.shield(self._picture)

    async def database(self) -> DatabasePicture | None:
        if self._database is None:
            source = self.platform.database

            async def read() -> DatabasePicture | None:
                return await source.refresh() if source is not None else None

            self._database = asyncio.ensure_future(read())
        return await asyncio.shield(self._database)

    def close(self) -> None:
        for task in (self._picture, self._database):
            if task is not None and not task.done():
                task.cancel()


def _names(items: list[str], limit: int = 4) -> str:
    more = f" +{len(items) - limit}" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


async def services(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """Every health endpoint UP, every Deployment there and Available at its desired
    replicas, no rollout failed or in progress, no critical alert open."""
    picture = await ctx.picture()
    down = [s for s in picture.sources if not s.ok and s.name == "kubernetes"]
    if down:
        return Finding(U, f"kubernetes: {down[0].message}")
    problems: list[str] = []
    missing = [r.service for r in picture.rows if r.rollout is None and r.desired == 0]
    if missing:
        problems.append(f"no Deployment for {_names(missing)}")
    unhealthy = [
        f"{r.service} {r.health.value}" for r in picture.rows if r.health is not ProbeStatus.UP
    ]
    if unhealthy:
        problems.append(f"health: {_names(unhealthy)}")
    short = [
        f"{r.service} {r.ready}/{r.desired}"
        for r in picture.rows
        if r.service not in missing and r.ready < r.desired
    ]
    if short:
        problems.append(f"not at desired replicas: {_names(short)}")
    rolling = [
        f"{r.service} ({r.rollout_text})"
        for r in picture.rows
        if r.rollout is not None and not r.rollout.done
    ]
    if rolling:
        problems.append(f"rollout not complete: {_names(rolling)}")
    critical = [a for a in picture.alerts if a.level is AlertLevel.CRITICAL]
    if critical:
        problems.append(f"critical alert: {critical[0].service}: {critical[0].message}")
    if problems:
        return Finding(F, "; ".join(problems))
    pods = sum(r.ready for r in picture.rows)
    return Finding(P, f"{len(picture.rows)} services UP, {pods} pods ready, every rollout complete")


async def monitoring(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """The metrics source answers, and each service's error rate and p95 are under the
    thresholds right now."""
    t = ctx.platform.config.thresholds
    names = [s for s, _ in ctx.platform.services()]
    samples = await asyncio.gather(
        *(ctx.platform.metrics.sample(s, "stable") for s in names), return_exceptions=True
    )
    failed: list[str] = []
    quiet: list[str] = []
    worst_rate: tuple[float, str] = (0.0, "")
    worst_p95: tuple[float, str] = (0.0, "")
    errors = [s for s in samples if isinstance(s, BaseException)]
    if errors and len(errors) == len(samples):
        first = errors[0]
        if not isinstance(first, BvaError):
            raise first
        return Finding(U, f"metrics unreachable: {first}")
    for name, s in zip(names, samples, strict=True):
        if isinstance(s, BaseException):
            failed.append(f"{name}: no metrics ({sanitize_text(str(s), 60)})")
            continue
        if s.error_rate_pct is None:
            quiet.append(name)
            continue
        worst_rate = max(worst_rate, (s.error_rate_pct, name))
        if s.p95_ms is not None:
            worst_p95 = max(worst_p95, (s.p95_ms, name))
        if s.error_rate_pct >= t.error_rate_pct:
            failed.append(f"{name} error rate {s.error_rate_pct:.1f}% ≥ {t.error_rate_pct:g}%")
        if s.p95_ms is not None and s.p95_ms >= t.p95_ms:
            failed.append(f"{name} p95 {s.p95_ms:.0f} ms ≥ {t.p95_ms:g} ms")
    if failed:
        return Finding(F, "; ".join(failed))
    shown = (
        f"worst error rate {worst_rate[0]:.1f}% ({worst_rate[1]}), "
        f"worst p95 {worst_p95[0]:.0f} ms ({worst_p95[1]})"
        if worst_rate[1]
        else "no service had traffic"
    )
    if quiet:
        return Finding(W, f"{shown}; no traffic to judge: {_names(quiet)}")
    return Finding(P, shown)


def _no_database(ctx: CheckContext) -> Finding:
    return Finding(U, f"environment {ctx.platform.env_name} has no database")


async def migrations(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """No failed migration and a history that validates; the pending ones listed."""
    db = await ctx.database()
    if db is None:
        return _no_database(ctx)
    primary = db.primary
    flyway = db.flyway
    if primary is None or primary.state is ServerState.DOWN:
        why = primary.error if primary is not None and primary.error else "primary unread"
        return Finding(U, f"primary: {why}")
    if flyway is None:
        return Finding(U, "no flyway_schema_history readable")
    if flyway.failed or flyway.problems:
        return Finding(F, "; ".join(flyway.problems[:3]) or "a migration failed")
    latest = flyway.latest
    at = f"at V{latest.version}" if latest and latest.version else "nothing applied"
    if not flyway.files_read:
        return Finding(W, f"{at}; pending unknown (no migrations directory configured)")
    pending = [f"V{m.version}" for m in flyway.pending if m.version]
    if pending:
        return Finding(P, f"{at}; pending (the release migrates them): {_names(pending)}")
    return Finding(P, f"{at}; nothing pending")


async def replicas(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """Every replica streaming, its lag under the threshold."""
    db = await ctx.database()
    if db is None:
        return _no_database(ctx)
    if not db.replicas:
        return Finding(W, "no replica configured")
    limit = ctx.platform.config.thresholds.replication_lag_s
    bad: list[str] = []
    unknown: list[str] = []
    lags: list[str] = []
    for r in db.replicas:
        if r.state is ServerState.DOWN:
            bad.append(f"{r.name} DOWN")
        elif r.lag_s is None:
            unknown.append(f"{r.name} lag unknown ({'; '.join(r.problem_texts) or 'no reading'})")
        elif r.lag_s >= limit:
            bad.append(f"{r.name} lag {r.lag_s:.1f}s ≥ {limit:g}s")
        else:
            lags.append(f"{r.name} {r.lag_s:.2f}s")
    if bad:
        return Finding(F, "; ".join(bad + unknown))
    if unknown:
        return Finding(U, "; ".join(unknown))
    return Finding(P, f"streaming, lag under {limit:g}s: {', '.join(lags)}")


async def backups(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """A verified backup younger than the RPO."""
    admin = ctx.platform.database_admin
    if admin is None:
        return _no_database(ctx)
    found = await asyncio.to_thread(list_backups, admin.backup_dir)
    verified = [b for b in found if b.verified]
    if not verified:
        return Finding(F, f"no verified backup in {admin.backup_dir}: `bva db backup` takes one")
    fresh = verified[0]
    age = fresh.age(ctx.clock())
    rpo = f"RPO {admin.rpo_s / 60:g} min"
    words = f"newest verified backup {age / 60:.0f} min old ({rpo}): {fresh.name}"
    if age > admin.rpo_s:
        return Finding(W, f"{words}; the release takes a fresh one before migrating")
    return Finding(P, words)


async def window(ctx: CheckContext, item: ChecklistItem) -> Finding:
    windows = ctx.platform.env.checklist.windows
    return window_finding(windows, datetime.fromtimestamp(ctx.clock(), UTC))


Check = Callable[[CheckContext, ChecklistItem], Awaitable[Finding]]
CHECKS: dict[str, Check] = {
    "services": services,
    "monitoring": monitoring,
    "migrations": migrations,
    "replicas": replicas,
    "backups": backups,
    "window": window,
}
