"""The schema of the platform file (pydantic models); loading and error wording live in config.py.

Models are strict: TOML already has types, so ``port = "8080"`` is a mistake worth naming rather
than something to coerce. Cross-field problems are raised as ``LocatedError`` so the message
names the key at fault.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backends.config.checklist import ChecklistConfig, EnvironmentChecklist
from backends.config.rollout import RolloutConfig, RolloutOverride, Thresholds, holds_problem
from backends.config.values import (
    ConfigError,
    DnsLabel,
    DnsSubdomain,
    Duration,
    HttpUrl,
    LocatedError,
    PathOrUrl,
    PositiveDuration,
    SecretRef,
    check_dns_label,
    check_environment_name,
    check_http_url,
    check_not_blank,
    quote,
)
from backends.config.workload import AutoscalingConfig, EnvNames

_MODEL = ConfigDict(extra="forbid", frozen=True, strict=True)

DEFAULT_SERVICE_URL = "http://{service}.{namespace}.svc.cluster.local:{port}"
# Compose publishes container ports on the host; there is no cluster DNS to build names from.
COMPOSE_SERVICE_URL = "http://localhost:{port}"


_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _check_table(value: str) -> str:
    if not _TABLE.match(value):
        raise ValueError(f"not a table name: {quote(value)} (schema.table, letters, digits, _)")
    return value


class DatabaseConfig(BaseModel):
    model_config = _MODEL

    url: SecretRef
    replicas: list[SecretRef] = Field(default_factory=list)
    pool_size: int = Field(default=20, ge=1)
    # Flyway's migrations directory (V<version>__<description>.sql; ~ expanded, relative to
    # the working directory): with it bva shows pending migrations, without it only applied.
    migrations: str | None = None
    flyway_table: Annotated[str, AfterValidator(_check_table)] = "public.flyway_schema_history"
    connect_timeout: PositiveDuration = 3.0
    statement_timeout: PositiveDuration = 2.0
    # Backups, restores and migrations connect with this role (the database's owner); the
    # monitor's url needs only pg_monitor. Without it they use url.
    admin_url: SecretRef | None = None
    backup_dir: str | None = None  # default: the user data dir's backups/<environment>
    rpo: Duration = 900.0  # "RPO 15 minutes": the freshest backup should be younger
    retention: Duration = 30 * 86400.0  # "Retention: 30 days"
    pg_bin: str | None = None  # pg_dump/pg_restore; default the sandbox wheel's, then PATH
    # How a release migrates: argv of a command run with the credentials and the migrations
    # directory in Flyway's environment variables (FLYWAY_URL, FLYWAY_USER, FLYWAY_PASSWORD,
    # FLYWAY_LOCATIONS, ...) and libpq's (PGHOST, PGPASSFILE, ...), never on its command
    # line. Default: `flyway migrate` when flyway is on PATH.
    migrate_command: list[str] | None = Field(default=None, min_length=1)
    migrate_timeout: PositiveDuration = 1800.0


class MetricsConfig(BaseModel):
    model_config = _MODEL

    source: Literal["scrape", "prometheus"] = "scrape"
    prometheus_url: HttpUrl | None = None
    token: SecretRef | None = None
    queries: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _prometheus_needs_url(self) -> Self:
        if self.source == "prometheus" and self.prometheus_url is None:
            raise LocatedError([(("prometheus_url",), 'required for source "prometheus"')])
        return self


def _check_url_template(value: str) -> str:
    allowed = "{service}, {namespace}, {port}"
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError:
        raise ValueError(f"bad URL template {quote(value)}: unbalanced braces") from None
    unknown = [f for f in fields if f not in ("service", "namespace", "port")]
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}} in URL template (allowed: {allowed})"
        )
    try:
        check_http_url(value.format(service="svc", namespace="ns", port=8080))
    except (ValueError, IndexError, KeyError) as exc:
        if "inline secret" in str(exc):
            raise
        raise ValueError(f"bad URL {quote(value)} (expected http:// or https://)") from None
    return value


_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_DOCKER_HOST = re.compile(r"^(unix:///|tcp://|ssh://|npipe://)\S+$")


class EnvironmentConfig(BaseModel):
    model_config = _MODEL

    orchestrator: Literal["kubernetes", "compose"]
    namespace: str = ""
    context: str | None = None
    kubeconfig: str | None = None
    # compose: the project (`docker compose -p`), and where its Engine is when neither
    # DOCKER_HOST nor a docker context says (e.g. "unix:///var/run/docker.sock").
    project: str = ""
    docker_host: str | None = None
    docker_context: str | None = None
    read_only: bool = False
    production: bool = False
    sandbox: bool = False
    service_url: Annotated[str, AfterValidator(_check_url_template)] = DEFAULT_SERVICE_URL
    rollout: RolloutOverride | None = None
    database: DatabaseConfig | None = None
    checklist: EnvironmentChecklist = Field(default_factory=EnvironmentChecklist)

    @model_validator(mode="before")
    @classmethod
    def _compose_url_default(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("orchestrator") == "compose"
            and "service_url" not in data
        ):
            return {**data, "service_url": COMPOSE_SERVICE_URL}
        return data

    @model_validator(mode="after")
    def _check_environment(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.namespace:
            try:
                check_dns_label(self.namespace)
            except ValueError as exc:
                problems.append((("namespace",), str(exc)))
        elif self.orchestrator == "kubernetes":
            problems.append((("namespace",), 'required for orchestrator "kubernetes"'))
        if self.orchestrator == "compose" and not self.sandbox:
            if not self.project:
                problems.append((("project",), 'required for orchestrator "compose"'))
            elif not _PROJECT.fullmatch(self.project):
                problems.append(
                    (("project",), f"bad compose project name {quote(self.project)} "
                     "(lowercase letters, digits, '-' and '_', starting with a letter or digit)")
                )  # fmt: skip
        if self.docker_host is not None and not _DOCKER_HOST.match(self.docker_host):
            problems.append(
                (("docker_host",), f"bad Docker Engine address {quote(self.docker_host)} "
                 "(unix:///path, tcp://host:port or ssh://host)")
            )  # fmt: skip
        if self.sandbox and self.production:
            problems.append((("sandbox",), "a sandbox environment cannot be marked production"))
        if problems:
            raise LocatedError(problems)
        return self

    @property
    def kubeconfig_path(self) -> Path | None:
        return Path(self.kubeconfig).expanduser() if self.kubeconfig else None

    def base_url(self, service: ServiceConfig) -> str:
        """Where the service answers in this environment (its own ``url`` wins)."""
        if service.url:
            return service.url
        return self.service_url.format(
            service=service.name, namespace=self.namespace, port=service.port
        )


_IMAGE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
)


def _check_image(value: str) -> str:
    if "@" in value:
        raise ValueError(
            f"image {quote(value)} must not include a digest: give the repository only"
        )
    repository, sep, _tag = value.rpartition(":")
    if sep and "/" not in _tag:
        raise ValueError(
            f"image must not include a tag (bva picks it per release): use {quote(repository)}"
        )
    if not _IMAGE.fullmatch(value):
        raise ValueError(f"bad image repository {quote(value)}")
    return value


class ServiceConfig(BaseModel):
    model_config = _MODEL

    name: DnsLabel
    deployment: DnsSubdomain | None = None
    container: DnsLabel | None = None
    replicas: int = Field(default=2, ge=1)
    image: Annotated[str, AfterValidator(_check_image)]
    port: int = Field(ge=1, le=65535)
    health: list[PathOrUrl] = Field(default_factory=lambda: ["/actuator/health"], min_length=1)
    metrics: PathOrUrl = "/actuator/prometheus"
    url: HttpUrl | None = None
    log_format: Literal["plain", "json"] = "plain"
    order: int | None = None
    # The HorizontalPodAutoscaler the service should have, and the environment variables its
    # containers must get (names only); the pre-deploy checklist compares them to the cluster.
    autoscaling: AutoscalingConfig | None = None
    env: EnvNames = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, data: Any) -> Any:
        # Filled here rather than left None so every reader sees the real Deployment name.
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            try:
                check_dns_label(data["name"])
            except ValueError:
                return data
            return {"deployment": data["name"], "container": data["name"], **data}
        return data

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.name

    @property
    def container_name(self) -> str:
        return self.container or self.name


class PlatformConfig(BaseModel):
    model_config = _MODEL

    name: Annotated[str, AfterValidator(check_not_blank)]
    # The TOML key is ``default_environment``; the attribute is renamed so the method of that
    # name (which applies the fallbacks) can exist.
    default_env: str | None = Field(default=None, alias="default_environment")
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    services: list[ServiceConfig] = Field(min_length=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    database: DatabaseConfig | None = None
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    checklist: ChecklistConfig = Field(default_factory=ChecklistConfig)

    @model_validator(mode="after")
    def _check_platform(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for env_name, env in self.environments.items():
            try:
                check_environment_name(env_name)
            except ValueError as exc:
                problems.append((("environments", env_name), str(exc)))
            if env.rollout is not None:
                merged = self._merge_rollout(env.rollout)
                problem = holds_problem(merged.phases, merged.holds)
                if problem:
                    key = "holds" if env.rollout.holds is not None else "phases"
                    problems.append((("environments", env_name, "rollout", key), problem))
        reported: set[int] = set()
        for field in ("name", "deployment"):
            seen: set[str] = set()
            for i, service in enumerate(self.services):
                value = service.name if field == "name" else service.deployment_name
                # A duplicated name usually duplicates the defaulted deployment too: say it once.
                if value in seen and i not in reported:
                    reported.add(i)
                    problems.append(
                        (("services", i, field), f"duplicate {_NOUN[field]} {quote(value)}")
                    )
                seen.add(value)
        if self.default_env is not None and self.default_env not in self.environments:
            problems.append((("default_environment",), self._unknown_env(self.default_env)))
        if problems:
            raise LocatedError(problems)
        return self

    def _unknown_env(self, name: str) -> str:
        return f"unknown environment {quote(name)} (known: {', '.join(self.environments)})"

    def _merge_rollout(self, override: RolloutOverride) -> RolloutConfig:
        return self.rollout.model_copy(update=override.model_dump(exclude_none=True))

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(self._unknown_env(name)) from None

    def service(self, name: str) -> ServiceConfig:
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services)
        raise ConfigError(f"unknown service {quote(name)} (known: {known})")

    def rollout_for(self, env_name: str) -> RolloutConfig:
        override = self.environment(env_name).rollout
        return self.rollout if override is None else self._merge_rollout(override)

    def database_for(self, env_name: str) -> DatabaseConfig | None:
        """The environment's own database if it names one, else the platform's."""
        return self.environment(env_name).database or self.database

    def default_environment(self) -> str:
        if self.default_env is not None:
            return self.default_env
        if "production" in self.environments:
            return "production"
        return next(iter(self.environments))

    def services_in_start_order(self) -> list[ServiceConfig]:
        """Services by ``order`` (unordered ones last), file order among equals."""
        return sorted(self.services, key=lambda s: (s.order is None, s.order or 0))


_NOUN = {"name": "service", "deployment": "deployment"}
