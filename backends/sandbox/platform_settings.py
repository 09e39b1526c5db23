"""Build the sandbox's settings from a platform file: its services, namespace and the
sandbox environment's rollout deadline."""

from __future__ import annotations

import re
from pathlib import Path

from backends.config.loader import PlatformConfig
from backends.sandbox.runner import SandboxSettings
from backends.sandbox.state import sandbox_environment
from backends.sandbox.view import SandboxService

INITIAL_TAG = "1.0.0"


def settings_from_platform(
    cfg: PlatformConfig,
    source: str,
    *,
    kubeconfig: Path | None = None,
    speed: float = 1.0,
    seed: int = 1,
    port: int = 0,
    log_dir: Path | None = None,
    database: bool = False,
    pg_bin: str | None = None,
) -> SandboxSettings:
    env_name = sandbox_environment(cfg)
    env = cfg.environments.get(env_name)
    namespace = env.namespace if env is not None and env.namespace else "default"
    rollout = cfg.rollout_for(env_name) if env is not None else cfg.rollout
    services = [
        SandboxService(
            name=s.name,
            container=s.container_name,
            port=s.port,
            health_paths=tuple(h for h in s.health if h.startswith("/")) or ("/actuator/health",),
            metrics_path=s.metrics,
            log_format=s.log_format,
            deployment=s.deployment_name,
            autoscaling=(
                (s.autoscaling.min, s.autoscaling.max, s.autoscaling.cpu)
                if s.autoscaling is not None
                else None
            ),
            env=tuple(s.env),
        )
        for s in cfg.services
    ]
    return SandboxSettings(
        services=services,
        namespace=namespace,
        config_prefix=_slug(cfg.name) or namespace,
        replicas={s.name: s.replicas for s in cfg.services},
        images={s.name: f"{s.image}:{INITIAL_TAG}" for s in cfg.services},
        kubeconfig=kubeconfig,
        speed=speed,
        seed=seed,
        progress_deadline=max(int(rollout.progress_deadline), 1),
        port=port,
        platform_source=source,
        log_dir=log_dir,
        database=database,
        pg_bin=pg_bin,
        db_pool_size=db.pool_size if (db := cfg.database_for(env_name)) is not None else 20,
    )


def _slug(name: str) -> str:
    """The platform's name as a DNS label prefix: "BharathVA" -> "bharathva"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
