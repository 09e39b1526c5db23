"""What the release and rollback tests both need against a sandbox: waiting for it, and a
release driver built the way the console builds one."""

from __future__ import annotations

from collections.abc import Callable

from backends.config.models import PlatformConfig
from backends.errors import NotFound
from backends.journal.store import Journal
from backends.metrics.scrape import ScrapeMetrics
from backends.platform import Platform
from backends.release.driver import ReleaseDriver
from backends.release.models import ReleaseView
from backends.release.plan import ReleasePlan
from backends.sources import DatabaseSource
from tests.support.waiting import until


async def exists(platform: Platform, workload: str) -> bool:
    """Whether the orchestrator has this workload (a canary, say) right now."""
    try:
        await platform.orchestrator.get_workload(workload)
    except NotFound:
        return False
    return True


async def ready(platform: Platform) -> None:
    """Every Deployment of the sandbox has all its replicas available."""

    async def all_available() -> bool:
        workloads = await platform.orchestrator.list_workloads()
        return bool(workloads) and all(w.available == w.desired for w in workloads)

    await until(all_available, 30, "sandbox ready")


def release_driver(
    platform: Platform,
    cfg: PlatformConfig,
    plan: ReleasePlan,
    metrics: ScrapeMetrics,
    journal: Journal,
    owner: str,
    on_change: Callable[[ReleaseView], None] | None = None,
    database: DatabaseSource | None = None,
) -> ReleaseDriver:
    return ReleaseDriver(
        platform.orchestrator,
        plan,
        deployments=dict(platform.services()),
        containers={s.name: s.container_name for s in cfg.services},
        metrics=metrics,
        journal=journal,
        environment="sandbox",
        owner=owner,
        on_change=on_change,
        database=database,
    )
