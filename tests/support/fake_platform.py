"""Deterministic stand-ins behind the adapters' interfaces, for screen snapshots only.
Everything else in the suite runs against real servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from backends.checklist.models import SignoffRecord
from backends.config.loader import builtin_platform_path, load_platform
from backends.db.admin import DatabaseAdmin
from backends.errors import NotFound, ReadOnlyError
from backends.health.models import HealthComponent, ProbeResult, ProbeStatus, ServiceHealth
from backends.logs.inbox import Inbox, LogReaderHandle, StreamRequest
from backends.logs.join import Joiner
from backends.metrics.source import MetricSample
from backends.models import (
    Autoscaler,
    Canary,
    Condition,
    EnvRef,
    KubeEvent,
    LockRecord,
    Pod,
    Revision,
    RolloutState,
    RolloutStatus,
    WatchEvent,
    Workload,
)
from backends.platform import Platform
from tests.support.fake_database import FakeDatabase

NOW = 1_800_000_000.0
SERVICES = ("discovery-service", "auth-service", "user-service", "tweet-service", "gateway-service")
REPLICAS = {
    "discovery-service": 2,
    "auth-service": 3,
    "user-service": 2,
    "tweet-service": 2,
    "gateway-service": 3,
}


def clock() -> float:
    return NOW


def workload(
    name: str,
    *,
    tag: str = "1.0.0",
    revision: int = 1,
    ready: int | None = None,
    failed: bool = False,
    updated: int | None = None,
) -> Workload:
    n = REPLICAS[name]
    progressing = Condition(
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        f'ReplicaSet "{name}-abc" has successfully progressed.',
        NOW - 600,
    )
    if failed:
        progressing = Condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}-def" has timed out progressing.',
            NOW - 30,
        )
    up = n if updated is None else updated
    return Workload(
        name=name,
        service=name,
        track="stable",
        namespace="bharathva",
        desired=n,
        replicas=n + (1 if failed else 0),
        updated=up,
        ready=n if ready is None else ready,
        available=n if ready is None else ready,
        images={name: f"bharathva/{name}:{tag}"},
        revision=revision,
        generation=revision,
        observed_generation=revision,
        conditions=(
            Condition("Available", "True", "MinimumReplicasAvailable", "", NOW - 600),
            progressing,
        ),
        created=NOW - 86400,
    )


def probe(
    service: str,
    status: ProbeStatus = ProbeStatus.UP,
    *,
    latency: float = 18.0,
    detail: str = "",
    components: tuple[HealthComponent, ...] | None = None,
) -> ServiceHealth:
    comps = (
        components
        if components is not None
        else (
            HealthComponent("db", "UP", (("database", "PostgreSQL"),)),
            HealthComponent("diskSpace", "UP", (("free", "52 GB"),)),
            HealthComponent("ping", "UP", ()),
        )
    )
    answered = status is not ProbeStatus.UNREACHABLE
    result = ProbeResult(
        service=service,
        url=f"http://{service}:8080/actuator/health",
        status=status,
        reason=None,
        detail=detail,
        http_status=(200 if status is ProbeStatus.UP else 503) if answered else None,
        latency_ms=latency if answered else None,
        components=comps if answered else (),
        cert_days_left=None,
        checked_at=NOW - 2,
        answered_by=None,
    )
    return ServiceHealth.of(service, [result])


def compose_pods_for(service: str, *, crash: bool = False) -> list[Pod]:
    """The service's containers as the compose adapter reads them."""
    out = [
        replace(p, name=f"bharathva-{service}-{i + 1}", node=None, owner_replicaset=service)
        for i, p in enumerate(pods_for(service))
    ]
    if crash:
        out.append(
            replace(
                out[0],
                name=f"bharathva-{service}-{len(out) + 1}",
                status="Restarting",
                ready_containers=0,
                restarts=5,
                is_ready=False,
                last_termination_reason="Error",
                last_exit_code=1,
                created=NOW - 120,
            )
        )
    return out


def pods_for(service: str, *, crash: bool = False) -> list[Pod]:
    out = [
        Pod(
            name=f"{service}-7d9f8c6b5-{i}x{i}q{i}",
            service=service,
            track="stable",
            namespace="bharathva",
            phase="Running",
            status="Running",
            ready_containers=1,
            total_containers=1,
            restarts=0,
            created=NOW - 3600,
            node=f"node-{i % 3 + 1}",
            is_ready=True,
        )
        for i in range(REPLICAS[service])
    ]
    if crash:
        out.append(
            Pod(
                name=f"{service}-5c4b3a2d1-zz9k",
                service=service,
                track="stable",
                namespace="bharathva",
                phase="Running",
                status="CrashLoopBackOff",
                ready_containers=0,
                total_containers=1,
                restarts=4,
                created=NOW - 120,
                node="node-2",
                last_termination_reason="Error",
                last_exit_code=1,
            )
        )
    return out


FAKE_SECRET_KEYS = {"bharathva-db": frozenset({"db-url", "db-username", "db-password"})}
FAKE_CONFIG_MAP_KEYS = {"bharathva-logging": frozenset({"LOGGING_LEVEL_ROOT"})}


class FakeOrchestrator:
    """The Orchestrator contract over canned workloads, pods and events: reads answer from
    them, watches send one RESYNC (or one ERROR) and then stay quiet, every change is
    refused (snapshots never mutate)."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        *,
        error: str | None = None,
        pods: dict[str, list[Pod]] | None = None,
        events: Sequence[KubeEvent] = (),
        kind: str = "kubernetes",
    ) -> None:
        self._kind = kind
        self.workloads = list(workloads)
        self.error = error
        self.pods = pods or {s: pods_for(s) for s in SERVICES}
        self._events = list(events)
        self.signoffs: SignoffRecord | None = None

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def target(self) -> str:
        return "snapshot stand-in"

    @property
    def read_only(self) -> bool:
        return False

    def connection(self) -> dict[str, Any]:
        return {"kind": "snapshot"}

    def _refuse(self, what: str) -> NoReturn:
        raise ReadOnlyError(f"the snapshot stand-in does not {what}")

    async def _watch(self, items: Sequence[Any]) -> AsyncGenerator[WatchEvent[Any], None]:
        if self.error is None:
            yield WatchEvent("RESYNC", items=tuple(items))
        else:
            yield WatchEvent("ERROR", message=self.error, last_good=NOW - 42)
        await asyncio.Event().wait()

    def watch_workloads(self) -> AsyncGenerator[WatchEvent[Workload], None]:
        return self._watch(self.workloads)

    def watch_instances(self, service: str | None = None) -> AsyncGenerator[WatchEvent[Pod], None]:
        pods = [p for s, ps in self.pods.items() if service in (None, s) for p in ps]
        return self._watch(pods)

    async def list_workloads(self) -> list[Workload]:
        return list(self.workloads)

    async def get_workload(self, name: str) -> Workload:
        found = next((w for w in self.workloads if w.name == name), None)
        if found is None:
            raise NotFound(f'deployments.apps "{name}" not found')
        return found

    async def list_instances(self, service: str | None = None) -> list[Pod]:
        return [p for s, ps in self.pods.items() if service in (None, s) for p in ps]

    async def events(self, kind: str, name: str, limit: int = 50) -> list[KubeEvent]:
        return [e for e in self._events if e.object_kind == kind and e.object_name == name]

    async def rollout_status(self, name: str) -> RolloutStatus:
        w = await self.get_workload(name)
        return RolloutStatus(name, RolloutState.COMPLETE, True, "", w.updated, w.desired)

    async def history(self, name: str) -> list[Revision]:
        return []

    async def current_revision(self, name: str) -> Revision | None:
        return None

    async def list_autoscalers(self) -> list[Autoscaler]:
        return [
            Autoscaler(
                f"{w.service}-hpa", "Deployment", w.name, 2, 10, w.replicas, w.desired,
                ("cpu 70% utilization",),
            )
            for w in self.workloads
            if w.track == "stable"
        ]  # fmt: skip

    async def workload_env(self, name: str) -> list[EnvRef]:
        await self.get_workload(name)
        return [
            EnvRef(name, "SERVER_PORT", "literal"),
            EnvRef(name, "DB_URL", "secret", "bharathva-db", "db-url"),
            EnvRef(name, "DB_PASSWORD", "secret", "bharathva-db", "db-password"),
            EnvRef(name, "LOGGING_*", "configmap", "bharathva-logging"),
        ]

    async def secret_keys(self, name: str) -> frozenset[str] | None:
        return FAKE_SECRET_KEYS.get(name)

    async def config_map_keys(self, name: str) -> frozenset[str] | None:
        return FAKE_CONFIG_MAP_KEYS.get(name)

    async def set_image(
        self, name: str, container: str, image: str, change_cause: str | None = None
    ) -> Workload:
        self._refuse("set images")

    async def scale(self, name: str, replicas: int) -> None:
        self._refuse("scale")

    async def pause(self, name: str) -> None:
        self._refuse("pause")

    async def resume(self, name: str) -> None:
        self._refuse("resume")

    async def undo(self, name: str, to_revision: int | None = None) -> str:
        self._refuse("roll back")

    async def canaries(self, services: Sequence[tuple[str, str]]) -> dict[str, Canary]:
        return {}  # no canary: no release in progress

    async def create_canary(
        self, service: str, stable: str, *, container: str, image: str, replicas: int,
        marks: dict[str, str],
    ) -> Canary:  # fmt: skip
        self._refuse("create canaries")

    async def scale_canary(self, canary: str, replicas: int) -> None:
        self._refuse("scale canaries")

    async def mark_canary(self, canary: str, marks: dict[str, str]) -> None:
        self._refuse("mark canaries")

    async def remove_canary(self, canary: str) -> None:
        self._refuse("remove canaries")

    async def read_lock(self) -> LockRecord | None:
        return None

    async def create_lock(self, record: LockRecord) -> LockRecord:
        self._refuse("take locks")

    async def replace_lock(self, record: LockRecord) -> LockRecord:
        self._refuse("take locks")

    async def read_signoffs(self) -> SignoffRecord | None:
        return self.signoffs

    async def write_signoffs(self, record: SignoffRecord) -> SignoffRecord:
        raise ReadOnlyError("snapshot fakes never change")

    async def delete_lock(self) -> None:
        self._refuse("release locks")

    async def prepare_logs(self) -> None:
        return None

    def open_log_reader(
        self, sid: int, request: StreamRequest, inbox: Inbox, joiner: Joiner,
        parse_lock: threading.Lock, *, shed_after: float | None = None,
    ) -> LogReaderHandle:  # fmt: skip
        self._refuse("read logs")

    async def close(self) -> None:
        return None


class FakeMetrics:
    """No traffic: every sample is empty (a gate on it is Inconclusive)."""

    async def sample(self, service: str, track: str, *, min_requests: int = 0) -> MetricSample:
        return MetricSample(service, track, 0.0, 0.0, None, None, 30.0, NOW, "scrape")

    async def aclose(self) -> None:
        return None


class FakeHealth:
    def __init__(self, results: dict[str, ServiceHealth]) -> None:
        self.results = results
        self.sweeps = 0

    async def sweep(self, targets: Sequence[tuple[str, Sequence[str]]]) -> list[ServiceHealth]:
        self.sweeps += 1
        return [self.results[name] for name, _ in targets]

    async def probe(self, service: str, url: str) -> ProbeResult:
        return self.results[service].probes[0]

    async def aclose(self) -> None:
        return None


def scenario(name: str) -> Platform:
    cfg = load_platform(builtin_platform_path())
    workloads = [workload(s) for s in SERVICES]
    health = {s: probe(s, latency=12.0 + i * 3) for i, s in enumerate(SERVICES)}
    events: list[KubeEvent] = []
    kube_error = None
    env, read_only = "sandbox", False
    pods = None
    if name == "one_down":
        health["auth-service"] = probe(
            "auth-service",
            ProbeStatus.DOWN,
            latency=640.0,
            detail="HTTP 503: db DOWN",
            components=(
                HealthComponent(
                    "db", "DOWN", (("error", "HikariPool-1 - Connection is not available"),)
                ),
                HealthComponent("ping", "UP", ()),
            ),
        )
    elif name == "rollout_failing":
        workloads[3] = workload(
            "tweet-service", tag="2.0.0-crash", revision=2, failed=True, updated=1
        )
        pods = {s: pods_for(s, crash=s == "tweet-service") for s in SERVICES}
        events = [
            KubeEvent(
                "Warning",
                "BackOff",
                "Back-off restarting failed container "
                "tweet-service in pod tweet-service-5c4b3a2d1-zz9k",
                "Pod",
                "tweet-service-5c4b3a2d1-zz9k",
                7,
                NOW - 100,
                NOW - 5,
                "kubelet",
            )
        ]
    elif name == "unreachable":
        kube_error = "kubernetes API http://127.0.0.1:6443 unreachable: connection refused"
        health = {
            s: probe(s, ProbeStatus.UNREACHABLE, detail="connection refused") for s in SERVICES
        }
    elif name == "read_only":
        env, read_only = "production", True
    elif name.startswith("compose"):
        # A compose project: containers named as compose names them, no nodes; on
        # compose_crash one copy of tweet-service's new image crash-loops beside the old two.
        crash = name == "compose_crash"
        pods = {s: compose_pods_for(s, crash=crash and s == "tweet-service") for s in SERVICES}
        if crash:
            workloads[3] = workload(
                "tweet-service", tag="2.0.0-crash", revision=2, failed=True, updated=1
            )
    database = FakeDatabase(NOW, degraded=name == "db_degraded")
    admin = None
    if name == "db_release":
        # Enough for the release's database plan to be read (from FakeDatabase's Flyway, V7
        # pending); nothing here is ever backed up or migrated.
        admin = DatabaseAdmin(
            environment=env,
            backup_dir=Path("/nonexistent/bva-fake-backups"),
            rpo_s=900.0,
            retention_s=30 * 86400.0,
            read_only=read_only,
            migrations_dir=Path("/nonexistent/bva-fake-migrations"),
        )
    kind = "compose" if name.startswith("compose") else "kubernetes"
    orchestrator = FakeOrchestrator(
        workloads, error=kube_error, pods=pods, events=events, kind=kind
    )
    return Platform(
        config=cfg,
        env_name=env,
        env=cfg.environment(env),
        read_only=read_only,
        orchestrator=orchestrator,
        health=FakeHealth(health),
        metrics=FakeMetrics(),
        database=database,
        database_admin=admin,
        service_urls={},
        target="bharathva on unix:///var/run/docker.sock"
        if kind == "compose"
        else "https://api.bharathva.example:6443"
        if env == "production"
        else "http://127.0.0.1:6443",
    )
