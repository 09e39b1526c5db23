"""One environment of a platform, wired: the adapters built from the platform file, and the
read-only decision. Screens and headless commands receive this and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

from backends.config.loader import EnvironmentConfig, PlatformConfig, resolve_secret
from backends.db.admin import DatabaseAdmin
from backends.errors import SourceUnavailable
from backends.health.prober import HealthProber
from backends.health.process import ProcessProber
from backends.kube.adapter import KubeAdapter
from backends.metrics.source import MetricsSource
from backends.orchestrator import Orchestrator
from backends.sandbox.state import SandboxState, read_state
from backends.sources import DatabaseSource, HealthSource

NO_SANDBOX = (
    "no sandbox is running: start one with 'bva sandbox' in another terminal, "
    "or run 'bva --sandbox'"
)


@dataclass
class Platform:
    config: PlatformConfig
    env_name: str
    env: EnvironmentConfig
    read_only: bool
    orchestrator: Orchestrator
    health: HealthSource
    metrics: MetricsSource
    database: DatabaseSource | None = None
    database_admin: DatabaseAdmin | None = None
    service_urls: dict[str, str] = field(default_factory=dict)
    target: str = ""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def production(self) -> bool:
        return self.env.production

    def services(self) -> list[tuple[str, str]]:
        """(service, deployment) in the platform file's order."""
        return [(s.name, s.deployment_name) for s in self.config.services]

    def health_targets(self) -> list[tuple[str, list[str]]]:
        targets = []
        for svc in self.config.services:
            base = self.service_urls.get(svc.name, "")
            urls = [
                h if "://" in h else urljoin(base.rstrip("/") + "/", h.lstrip("/"))
                for h in svc.health
            ]
            targets.append((svc.name, urls))
        return targets

    async def aclose(self) -> None:
        await self.health.aclose()
        await self.metrics.aclose()
        if self.database is not None:
            await self.database.aclose()
        await self.orchestrator.close()


def database_source(
    cfg: PlatformConfig, env_name: str, sandbox: SandboxState | None
) -> DatabaseSource | None:
    """The environment's database, or None when it has none (a sandbox started without one).
    A secret that does not resolve makes its server DOWN with the reason, not a failed start:
    the cluster is still worth watching."""
    from pathlib import Path

    from backends.config.values import ConfigError
    from backends.db.models import Role
    from backends.db.source import DbServer, PgDatabase

    db = cfg.database_for(env_name)
    if cfg.environment(env_name).sandbox:
        if sandbox is None or sandbox.database is None:
            return None
        block = sandbox.database
        replicas = block.get("replicas")
        extra = replicas if isinstance(replicas, list) else []
        refs = [str(block.get("url")), *(str(r) for r in extra)]
        given = block.get("pool_size")
        pool = given if isinstance(given, int) else (db.pool_size if db else 20)
        migrations = block.get("migrations")
        migrations_dir = Path(migrations) if isinstance(migrations, str) else None
        table = db.flyway_table if db else "public.flyway_schema_history"
        timeouts = (db.connect_timeout, db.statement_timeout) if db else (3.0, 2.0)
    elif db is None:
        return None
    else:
        refs = [db.url, *db.replicas]
        pool = db.pool_size
        migrations_dir = Path(db.migrations).expanduser() if db.migrations else None
        table = db.flyway_table
        timeouts = (db.connect_timeout, db.statement_timeout)
    servers = []
    for i, ref in enumerate(refs):
        name, role = ("primary", Role.PRIMARY) if i == 0 else (f"replica-{i}", Role.REPLICA)
        try:
            servers.append(DbServer(name, role, resolve_secret(ref)))
        except ConfigError as exc:
            servers.append(DbServer(name, role, "", unusable=f"not configured: {exc}"))
    t = cfg.thresholds
    return PgDatabase(
        servers,
        pool_size=pool,
        connections_pct_limit=t.db_connections_pct,
        lag_limit_s=t.replication_lag_s,
        migrations=migrations_dir,
        flyway_table=table,
        connect_timeout=timeouts[0],
        statement_timeout=timeouts[1],
    )


def database_admin(
    cfg: PlatformConfig, env_name: str, sandbox: SandboxState | None, read_only: bool
) -> DatabaseAdmin | None:
    """Backups, restores and migrations of the environment's database, or None without one."""
    from pathlib import Path

    from backends.db.admin import default_backup_dir

    db = cfg.database_for(env_name)
    if cfg.environment(env_name).sandbox:
        block = sandbox.database if sandbox is not None else None
        if block is None:
            return None
        ref = str(block.get("admin_url") or block.get("url"))
        given = block.get("migrate_command")
        command = tuple(str(a) for a in given) if isinstance(given, list) and given else None
        migrations = block.get("migrations")
        migrations_dir = Path(migrations) if isinstance(migrations, str) else None
    elif db is None:
        return None
    else:
        ref = db.admin_url or db.url
        command = tuple(db.migrate_command) if db.migrate_command else None
        migrations_dir = Path(db.migrations).expanduser() if db.migrations else None
    where = db.backup_dir if db is not None else None
    return DatabaseAdmin(
        migrations_dir=migrations_dir,
        flyway_table=db.flyway_table if db is not None else "public.flyway_schema_history",
        migrate_command=command,
        migrate_timeout_s=db.migrate_timeout if db is not None else 1800.0,
        environment=env_name,
        backup_dir=Path(where).expanduser() if where else default_backup_dir(env_name),
        rpo_s=db.rpo if db is not None else 900.0,
        retention_s=db.retention if db is not None else 30 * 86400.0,
        read_only=read_only,
        pg_bin=db.pg_bin if db is not None else None,
        resolve_dsn=lambda: resolve_secret(ref),
    )


def metrics_source(cfg: PlatformConfig, service_urls: dict[str, str]) -> MetricsSource:
    """The platform file's metrics source: a Prometheus server, or direct scrapes."""
    m = cfg.metrics
    if m.source == "prometheus" and m.prometheus_url:
        from backends.metrics.prometheus import PrometheusMetrics

        token = resolve_secret(m.token) if m.token else None
        return PrometheusMetrics(str(m.prometheus_url), token=token, queries=dict(m.queries))
    from backends.metrics.scrape import ScrapeMetrics

    urls = {
        s.name: s.metrics
        if "://" in s.metrics
        else urljoin(service_urls.get(s.name, "").rstrip("/") + "/", s.metrics.lstrip("/"))
        for s in cfg.services
    }
    return ScrapeMetrics(urls)


def open_platform(
    cfg: PlatformConfig,
    env_name: str | None = None,
    *,
    read_only: bool = False,
    sandbox: SandboxState | None = None,
    probe_timeout: float = 2.0,
    health_process: bool = False,
) -> Platform:
    """Build the adapters for one environment; raises ConfigError or SourceUnavailable."""
    name = env_name or cfg.default_environment()
    env = cfg.environment(name)
    ro = read_only or env.read_only
    services = [(s.name, s.deployment_name) for s in cfg.services]
    state: SandboxState | None = None
    kube: Orchestrator
    if env.sandbox:
        state = sandbox or read_state()
        if state is None:
            raise SourceUnavailable(NO_SANDBOX)
        if state.orchestrator == "compose":
            from backends.compose.adapter import ComposeAdapter

            kube = ComposeAdapter(
                project=state.project, host=state.docker_host, read_only=ro, services=services
            )
            target = f"{state.project} on {state.docker_host}"
        else:
            kube = KubeAdapter(
                namespace=state.namespace,
                kubeconfig=state.kubeconfig,
                read_only=ro,
                services=services,
            )
            target = state.api_url
        urls = dict(state.services)
    elif env.orchestrator == "compose":
        from backends.compose.adapter import ComposeAdapter
        from backends.compose.engine import resolve_host

        host = resolve_host(env.docker_host, env.docker_context)
        kube = ComposeAdapter(project=env.project, host=host, read_only=ro, services=services)
        urls = {s.name: env.base_url(s) for s in cfg.services}
        target = f"{env.project} on {host}"
    else:
        kubeconfig = env.kubeconfig_path
        kube = KubeAdapter(
            namespace=env.namespace,
            kubeconfig=str(kubeconfig) if kubeconfig else None,
            context=env.context,
            read_only=ro,
            services=services,
        )
        urls = {s.name: env.base_url(s) for s in cfg.services}
        target = env.context or "current kube context"
    health: HealthSource = (
        ProcessProber(timeout=probe_timeout)
        if health_process
        else HealthProber(timeout=probe_timeout)
    )
    return Platform(
        config=cfg,
        env_name=name,
        env=env,
        read_only=ro,
        orchestrator=kube,
        health=health,
        metrics=metrics_source(cfg, urls),
        database=database_source(cfg, name, state),
        database_admin=database_admin(cfg, name, state, ro),
        service_urls=urls,
        target=target,
    )
