"""Deterministic stand-ins behind the adapters' interfaces, for screen snapshots only.
Everything else in the suite runs against real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from backends.config.loader import builtin_platform_path, load_platform
from backends.health.models import HealthComponent, ProbeResult, ProbeStatus, ServiceHealth
from backends.models import Condition, KubeEvent, Pod, WatchEvent, Workload
from backends.platform import Platform

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


class FakeKube:
    def __init__(
        self,
        workloads: Sequence[Workload],
        *,
        error: str | None = None,
        pods: dict[str, list[Pod]] | None = None,
        events: Sequence[KubeEvent] = (),
    ) -> None:
        self.workloads = list(workloads)
        self.error = error
        self.pods = pods or {s: pods_for(s) for s in SERVICES}
        self._events = list(events)
        self.read_only = False

    async def watch_workloads(self) -> AsyncIterator[WatchEvent[Workload]]:
        if self.error is None:
            yield WatchEvent("RESYNC", items=tuple(self.workloads))
        else:
            yield WatchEvent("ERROR", message=self.error, last_good=NOW - 42)
        await asyncio.Event().wait()

    async def list_workloads(self) -> list[Workload]:
        return list(self.workloads)

    async def list_pods(self, service: str | None = None) -> list[Pod]:
        return list(self.pods.get(service or "", []))

    async def events(self, kind: str, name: str, limit: int = 50) -> list[KubeEvent]:
        return [e for e in self._events if e.object_kind == kind and e.object_name == name]

    async def deployment_json(self, deployment: str) -> dict[str, object] | None:
        return None  # no canary: no release in progress

    async def get_lease(self, name: str) -> dict[str, object] | None:
        return None

    async def get_workload(self, deployment: str) -> Workload:
        return next(w for w in self.workloads if w.name == deployment)

    async def close(self) -> None:
        return None


class FakeHealth:
    def __init__(self, results: dict[str, ServiceHealth]) -> None:
        self.results = results
        self.sweeps = 0

    async def sweep(self, targets: Sequence[tuple[str, Sequence[str]]]) -> list[ServiceHealth]:
        self.sweeps += 1
        return [self.results[name] for name, _ in targets]

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
    kube = FakeKube(workloads, error=kube_error, pods=pods, events=events)
    return Platform(
        config=cfg,
        env_name=env,
        env=cfg.environment(env),
        read_only=read_only,
        kube=kube,  # type: ignore[arg-type]
        health=FakeHealth(health),  # type: ignore[arg-type]
        service_urls={},
        kube_target="https://api.bharathva.example:6443"
        if env == "production"
        else "http://127.0.0.1:6443",
    )
