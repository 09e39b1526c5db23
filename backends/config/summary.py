"""A short human summary of a loaded platform file (``bva config show``).

Only secret references are printed, never what they resolve to.
"""

from __future__ import annotations

from backends.config.models import PlatformConfig
from backends.config.rollout import RolloutConfig
from backends.config.values import format_duration, mask_dsn


def _clean(text: str) -> str:
    # Free-form values come from a file; keep terminal control sequences out of the output.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _pct(value: float) -> str:
    return f"{value:g}%"


def _rollout_line(rollout: RolloutConfig) -> str:
    phases = " → ".join(_pct(p) for p in rollout.phases)
    holds = " / ".join(format_duration(h) for h in rollout.holds) or "none"
    approval = ", manual approval" if rollout.manual_approval else ""
    return (
        f"{rollout.strategy} {phases}; holds {holds}; gate every "
        f"{format_duration(rollout.gate_interval)}, abort after {rollout.failure_limit} "
        f"failures, deadline {format_duration(rollout.progress_deadline)}{approval}"
    )


def summarize(cfg: PlatformConfig, source: str) -> str:
    default_env = cfg.default_environment()
    lines = [f"Platform {_clean(cfg.name)}", f"  file: {_clean(source)}", "Environments:"]
    width = max(len(name) for name in cfg.environments)
    for name, env in cfg.environments.items():
        parts: list[str] = [env.orchestrator]
        if env.namespace:
            parts.append(f"namespace={env.namespace}")
        if env.context:
            parts.append(f"context={_clean(env.context)}")
        marks = [
            label
            for label, on in (
                ("PRODUCTION", env.production),
                ("read-only", env.read_only),
                ("sandbox", env.sandbox),
                ("default", name == default_env),
            )
            if on
        ]
        if marks:
            parts.append(f"[{', '.join(marks)}]")
        lines.append(f"  {name:<{width}}  {'  '.join(parts)}")
        if env.rollout is not None:
            lines.append(f"  {'':<{width}}  rollout: {_rollout_line(cfg.rollout_for(name))}")
    lines.append("Services (start order):")
    width = max(len(s.name) for s in cfg.services)
    for svc in cfg.services_in_start_order():
        health = ", ".join(_clean(mask_dsn(h)) for h in svc.health)
        lines.append(f"  {svc.name:<{width}}  :{svc.port:<5}  x{svc.replicas}  health {health}")
    t = cfg.thresholds
    lines.append(
        f"Thresholds: error rate > {_pct(t.error_rate_pct)}, p95 > {t.p95_ms:g}ms, "
        f"db connections > {_pct(t.db_connections_pct)}, "
        f"replication lag > {format_duration(t.replication_lag_s)}, "
        f"failed logins > {t.failed_logins_per_min:g}/min, "
        f"service down > {format_duration(t.service_down_s)}"
    )
    lines.append(f"Rollout: {_rollout_line(cfg.rollout)}")
    if cfg.database is not None:
        db = cfg.database
        replicas = f", replicas {', '.join(db.replicas)}" if db.replicas else ""
        lines.append(f"Database: {_clean(db.url)}{replicas}, pool {db.pool_size}")
    metrics = cfg.metrics
    where = f" {_clean(mask_dsn(metrics.prometheus_url))}" if metrics.prometheus_url else ""
    token = f", token {_clean(metrics.token)}" if metrics.token else ""
    lines.append(f"Metrics: {metrics.source}{where}{token}")
    return "\n".join(lines)
