"""The checks behind the checklist's automated items, each against the real source through the
platform's adapters, each answering pass / warn / fail / unknown with one line of evidence.
Unknown means the source could not say (unreachable, not configured): never a pass."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from backends.checklist.models import Finding, ItemState
from backends.checklist.net import NetFinding
from backends.checklist.net_dns import check_dns
from backends.checklist.net_registry import check_image
from backends.checklist.net_tls import check_tls
from backends.checklist.window import window_finding
from backends.config.checklist import ChecklistConfig, ChecklistItem
from backends.config.loader import resolve_secret
from backends.db.backup import list_backups
from backends.db.models import DatabasePicture, ServerState
from backends.errors import BvaError
from backends.health.models import ProbeStatus
from backends.platform import Platform
from backends.release.plan import image_with_tag
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


_ORDER = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3}


def _worst(found: list[tuple[str, NetFinding]], noun: str) -> Finding:
    """Many endpoints as one item: the worst state, naming the ones that are not fine."""
    state = min((f.state for _, f in found), key=_ORDER.__getitem__)
    if state == "pass":
        shown = "; ".join(f"{name}: {f.evidence}" for name, f in found[:2])
        more = f" (+{len(found) - 2} more)" if len(found) > 2 else ""
        return Finding(P, f"{len(found)} {noun} fine: {shown}{more}")
    bad = [f"{name}: {f.evidence}" for name, f in found if f.state != "pass"]
    return Finding(ItemState(state), "; ".join(bad))


def _service_urls(ctx: CheckContext) -> list[str]:
    return [u for u in ctx.platform.service_urls.values() if u]


async def tls(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """Each HTTPS endpoint's certificate valid for at least ``tls_min_days``."""
    urls = list(dict.fromkeys([*(str(u) for u in item.urls), *_service_urls(ctx)]))
    https = [u for u in urls if u.startswith("https://")]
    if not https:
        return Finding(U, "no HTTPS endpoint to check (list them as urls on the ssl item)")
    timeout = ctx.config.check_timeout * 0.8
    found = await asyncio.gather(
        *(
            check_tls(
                u, min_days=ctx.config.tls_min_days, timeout=timeout, ca_file=ctx.config.tls_ca_file
            )
            for u in https
        )
    )
    return _worst(list(zip(https, found, strict=True)), "certificates")


async def dns(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """Each hostname the platform uses resolves."""
    names = [*item.hostnames]
    for url in _service_urls(ctx):
        host = urlsplit(url).hostname or ""
        if host and not _is_address(host):
            names.append(host)
    names = list(dict.fromkeys(names))
    if not names:
        return Finding(U, "no hostname to resolve (the endpoints are addresses; list hostnames)")
    timeout = ctx.config.check_timeout * 0.8
    found = await asyncio.gather(*(check_dns(n, timeout=timeout) for n in names))
    return _worst(list(zip(names, found, strict=True)), "hostnames")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def images(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """The version's image of every service well-formed and, with a registry, there."""
    if ctx.version is None:
        return Finding(U, "no version given: the images of which release?")
    cfg = ctx.config
    token = resolve_secret(cfg.registry_token) if cfg.registry_token else None
    refs = [image_with_tag(s.image, ctx.version) for s in ctx.platform.config.services]
    registry = str(cfg.registry) if cfg.registry else None
    timeout = cfg.check_timeout * 0.8
    found = await asyncio.gather(
        *(check_image(r, registry_url=registry, timeout=timeout, token=token) for r in refs)
    )
    return _worst(list(zip(refs, found, strict=True)), "images")


async def autoscaling(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """An HPA per service targeting its Deployment, with the platform file's min, max and
    CPU target, and the Deployment's replicas within its range."""
    if ctx.platform.orchestrator.kind == "compose":
        # Compose scales by hand (`--scale`): there is nothing to check, and that is no pass.
        said = "compose has no autoscalers: replicas are set by hand (docker compose --scale)"
        return Finding(U, said)
    found = await ctx.platform.orchestrator.list_autoscalers()
    by_target = {(a.target_kind, a.target_name): a for a in found}
    wrong: list[str] = []
    checked = 0
    for svc in ctx.platform.config.services:
        want = svc.autoscaling
        if want is None:
            continue
        checked += 1
        hpa = by_target.get(("Deployment", svc.deployment_name))
        if hpa is None:
            wrong.append(f"{svc.name}: no HorizontalPodAutoscaler")
            continue
        if (hpa.min_replicas, hpa.max_replicas) != (want.min, want.max):
            wrong.append(
                f"{svc.name}: {hpa.min_replicas}-{hpa.max_replicas} replicas, "
                f"expected {want.min}-{want.max}"
            )
        if f"cpu {want.cpu}% utilization" not in hpa.metrics:
            shown = ", ".join(hpa.metrics) or "no metric"
            wrong.append(f"{svc.name}: targets {shown}, expected cpu {want.cpu}%")
        if not hpa.min_replicas <= hpa.current_replicas <= hpa.max_replicas:
            wrong.append(f"{svc.name}: {hpa.current_replicas} replicas, outside its range")
    if not checked:
        return Finding(W, "the platform file sets no autoscaling for any service")
    if wrong:
        return Finding(F, "; ".join(wrong))
    return Finding(P, f"{checked} HPAs as the platform file sets them, replicas in range")


async def configuration(ctx: CheckContext, item: ChecklistItem) -> Finding:
    """The variables the platform file lists exist in each Deployment's pod template, and
    the Secrets and ConfigMaps they come from exist and hold the keys. Names only: no value
    is ever read into the evidence."""
    orch = ctx.platform.orchestrator
    wrong: list[str] = []
    checked = 0
    keys_cache: dict[tuple[str, str], frozenset[str] | None] = {}

    async def keys(kind: str, name: str) -> frozenset[str] | None:
        if (kind, name) not in keys_cache:
            read = orch.secret_keys if kind == "secret" else orch.config_map_keys
            keys_cache[(kind, name)] = await read(name)
        return keys_cache[(kind, name)]

    for svc in ctx.platform.config.services:
        if not svc.env:
            continue
        refs = await orch.workload_env(svc.deployment_name)
        named = {r.name: r for r in refs if not r.whole}
        imports = [r for r in refs if r.whole]
        for var in svc.env:
            checked += 1
            ref = named.get(var)
            if ref is None:
                source = None
                for imp in imports:
                    prefix = imp.name[:-1]
                    if var.startswith(prefix):
                        have = await keys(imp.source, imp.ref_name)
                        if have is not None and var[len(prefix) :] in have:
                            source = imp
                            break
                if source is None:
                    wrong.append(f"{svc.name}: {var} not set")
                continue
            if ref.source in ("secret", "configmap"):
                have = await keys(ref.source, ref.ref_name)
                if have is None and not ref.optional:
                    wrong.append(f"{svc.name}: {var}: {ref.source} {ref.ref_name} missing")
                elif have is not None and ref.ref_key not in have and not ref.optional:
                    wrong.append(
                        f"{svc.name}: {var}: {ref.source} {ref.ref_name} has no key {ref.ref_key}"
                    )
    if not checked:
        return Finding(W, "the platform file lists no environment variables for any service")
    if wrong:
        return Finding(
            F, "; ".join(wrong[:6]) + (f" (+{len(wrong) - 6})" if len(wrong) > 6 else "")
        )
    return Finding(P, f"{checked} variables set, every Secret and ConfigMap key they name there")


Check = Callable[[CheckContext, ChecklistItem], Awaitable[Finding]]
CHECKS: dict[str, Check] = {
    "services": services,
    "monitoring": monitoring,
    "migrations": migrations,
    "replicas": replicas,
    "backups": backups,
    "window": window,
    "tls": tls,
    "dns": dns,
    "images": images,
    "autoscaling": autoscaling,
    "configuration": configuration,
}
