"""One environment of a platform, wired: the adapters built from the platform file, and the
read-only decision. Screens and headless commands receive this and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

from backends.config.loader import EnvironmentConfig, PlatformConfig, resolve_secret
from backends.errors import SourceUnavailable
from backends.health.prober import HealthProber
from backends.health.thread import ThreadedProber
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
    threaded_health: bool = False,
) -> Platform:
    """Build the adapters for one environment; raises ConfigError or SourceUnavailable."""
    name = env_name or cfg.default_environment()
    env = cfg.environment(name)
    ro = read_only or env.read_only
    services = [(s.name, s.deployment_name) for s in cfg.services]
    if env.sandbox:
        state = sandbox or read_state()
        if state is None:
            raise SourceUnavailable(NO_SANDBOX)
        kube = KubeAdapter(
            namespace=state.namespace, kubeconfig=state.kubeconfig, read_only=ro, services=services
        )
        urls = dict(state.services)
        target = state.api_url
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
        ThreadedProber(timeout=probe_timeout)
        if threaded_health
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
        service_urls=urls,
        target=target,
    )
