"""The platform's health picture: workloads (from the Kubernetes watch) and health probes
combined per service, with the alerts the deployment guide's thresholds call for.

No I/O: screens and `bva status` feed it events and read immutable pictures from it.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backends.config.loader import Thresholds
from backends.db.models import DatabasePicture, Role, ServerState
from backends.health.models import HealthComponent, ProbeResult, ProbeStatus, ServiceHealth
from backends.kube.rollout_rules import rollout_status
from backends.models import RolloutState, RolloutStatus, WatchEvent, Workload
from backends.orchestrator import workload_noun

LATENCY_HISTORY = 30
REASON_WORDS = {"ProgressDeadlineExceeded": "deadline exceeded"}


class AlertLevel(enum.StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Alert:
    level: AlertLevel
    service: str
    message: str
    since: float | None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A data source (the Kubernetes API, the health endpoints) and the age of its data."""

    name: str
    ok: bool
    message: str
    last_good: float | None


@dataclass(frozen=True, slots=True)
class ServiceRow:
    service: str
    deployment: str
    health: ProbeStatus
    health_detail: str
    ready: int
    desired: int
    image_tag: str
    revision: int
    rollout: RolloutStatus | None
    rollout_text: str
    canary_ready: int | None
    canary_desired: int | None
    latency_ms: float | None
    latency_history: tuple[float, ...]
    last_good: float | None
    down_since: float | None
    components: tuple[HealthComponent, ...]
    probes: tuple[ProbeResult, ...]

    @property
    def rollout_failed(self) -> bool:
        return self.rollout is not None and self.rollout.state is RolloutState.FAILED


@dataclass(frozen=True, slots=True)
class HealthPicture:
    platform: str
    environment: str
    rows: tuple[ServiceRow, ...]
    alerts: tuple[Alert, ...]
    sources: tuple[SourceStatus, ...]
    taken_at: float
    database: DatabasePicture | None = None

    @property
    def unreachable(self) -> bool:
        return any(not s.ok for s in self.sources)

    @property
    def healthy(self) -> bool:
        return (
            not self.unreachable
            and not self.alerts
            and all(
                r.health is ProbeStatus.UP and r.rollout is not None and r.rollout.done
                for r in self.rows
            )
        )


def workload_rollout(w: Workload, noun: str = "deployment") -> RolloutStatus:
    """kubectl's rollout status rules applied to a Workload model, in the words of its
    orchestrator (``noun``: a compose project has services)."""
    return rollout_status(
        {
            "metadata": {"name": w.name, "generation": w.generation},
            "spec": {"replicas": w.desired, "paused": w.paused},
            "status": {
                "observedGeneration": w.observed_generation,
                "replicas": w.replicas,
                "updatedReplicas": w.updated,
                "availableReplicas": w.available,
                "conditions": [
                    {"type": c.type, "status": c.status, "reason": c.reason} for c in w.conditions
                ],
            },
        },
        noun,
    )


def rollout_text(status: RolloutStatus | None, w: Workload | None) -> str:
    if status is None or w is None:
        return "—"
    if status.state is RolloutState.COMPLETE:
        return "Complete"
    if status.state is RolloutState.PAUSED:
        return "Paused"
    if status.state is RolloutState.FAILED:
        cond = w.condition("Progressing")
        reason = cond.reason if cond else "unknown"
        return f"Failed: {REASON_WORDS.get(reason, reason)}"
    return f"Progressing {status.updated}/{status.desired}"


class HealthMonitor:
    """Accumulates what the sources report; ``picture(now)`` is cheap and side-effect free."""

    def __init__(
        self,
        platform: str,
        environment: str,
        services: Sequence[tuple[str, str]],
        thresholds: Thresholds,
        orchestrator: str = "kubernetes",
    ) -> None:
        self._platform = platform
        self._source = orchestrator  # the source's name: the orchestrator's kind
        self._environment = environment
        self._services = list(services)
        self._thresholds = thresholds
        self._workloads: dict[str, Workload] = {}
        self._health: dict[str, ServiceHealth] = {}
        self._latency: dict[str, deque[float]] = {
            s: deque(maxlen=LATENCY_HISTORY) for s, _ in services
        }
        self._last_good: dict[str, float] = {}
        self._down_since: dict[str, float] = {}
        self._stuck_since: dict[str, float] = {}
        self._kube = SourceStatus(self._source, True, "waiting for data", None)
        self._probes = SourceStatus("health", True, "waiting for data", None)
        self._database: DatabasePicture | None = None
        self.version = 0  # bumped on every change, so a UI can skip identical redraws

    # -- inputs ---------------------------------------------------------------------------
    def apply_workloads(self, event: WatchEvent[Workload], now: float) -> None:
        if event.kind == "ERROR":
            self._kube = SourceStatus(self._source, False, event.message, event.last_good)
        elif event.kind == "RESYNC":
            self._workloads = {w.name: w for w in event.items}
            self._kube = SourceStatus(self._source, True, "", now)
        elif event.obj is not None:
            if event.kind == "DELETED":
                self._workloads.pop(event.obj.name, None)
            else:
                self._workloads[event.obj.name] = event.obj
            self._kube = SourceStatus(self._source, True, "", now)
        self._track_rollouts(now)
        self.version += 1

    def _track_rollouts(self, now: float) -> None:
        for service, deployment in self._services:
            w = self._workloads.get(deployment)
            status = workload_rollout(w) if w is not None else None
            if status is not None and status.state is RolloutState.PROGRESSING:
                self._stuck_since.setdefault(service, now)
            else:
                self._stuck_since.pop(service, None)

    def set_workloads(self, workloads: Iterable[Workload], now: float) -> None:
        self.apply_workloads(WatchEvent("RESYNC", items=tuple(workloads)), now)

    def kube_failed(self, message: str) -> None:
        self._kube = SourceStatus(self._source, False, message, self._kube.last_good)
        self.version += 1

    def apply_health(self, results: Iterable[ServiceHealth], now: float) -> None:
        any_answer = False
        for result in results:
            self._health[result.service] = result
            answered = [p for p in result.probes if p.answered]
            if answered:
                any_answer = True
                self._last_good[result.service] = max(p.checked_at for p in answered)
            if result.latency_ms is not None:
                self._latency.setdefault(result.service, deque(maxlen=LATENCY_HISTORY)).append(
                    result.latency_ms
                )
            if result.status is ProbeStatus.UP:
                self._down_since.pop(result.service, None)
            else:
                self._down_since.setdefault(result.service, now)
        if any_answer:
            self._probes = SourceStatus("health", True, "", now)
        elif self._health:
            self._probes = SourceStatus(
                "health", False, "no health endpoint answered", self._probes.last_good
            )
        self.version += 1

    def apply_database(self, picture: DatabasePicture) -> None:
        self._database = picture
        self.version += 1

    def _database_source(self) -> SourceStatus | None:
        """The database counts as reachable while its primary answers; a replica down is an
        alert, not an unreachable source."""
        db = self._database
        if db is None:
            return None
        p = db.primary
        if p is None:
            return SourceStatus("database", False, "no primary configured", None)
        if p.state is ServerState.DOWN:
            return SourceStatus("database", False, f"primary {p.error or 'down'}", p.last_good)
        return SourceStatus("database", True, "", p.last_good)

    # -- output ---------------------------------------------------------------------------
    def picture(self, now: float) -> HealthPicture:
        rows = tuple(self._row(service, deployment, now) for service, deployment in self._services)
        return HealthPicture(
            platform=self._platform,
            environment=self._environment,
            rows=rows,
            alerts=tuple(self._alerts(rows, now)),
            sources=self._sources(),
            taken_at=now,
            database=self._database,
        )

    def _sources(self) -> tuple[SourceStatus, ...]:
        db = self._database_source()
        return (self._kube, self._probes) if db is None else (self._kube, self._probes, db)

    def _row(self, service: str, deployment: str, now: float) -> ServiceRow:
        w = self._workloads.get(deployment)
        canary = self._workloads.get(f"{deployment}-canary")
        status = workload_rollout(w, workload_noun(self._source)) if w is not None else None
        h = self._health.get(service)
        detail = ""
        if h is not None and h.status is not ProbeStatus.UP:
            bad = next((p for p in h.probes if p.status is h.status), None)
            detail = bad.detail if bad is not None else ""
        return ServiceRow(
            service=service,
            deployment=deployment,
            health=h.status if h is not None else ProbeStatus.UNKNOWN,
            health_detail=detail,
            ready=w.ready if w else 0,
            desired=w.desired if w else 0,
            image_tag=w.image_tag() if w else "",
            revision=w.revision if w else 0,
            rollout=status,
            rollout_text=rollout_text(status, w) if w else "not found",
            canary_ready=canary.ready if canary else None,
            canary_desired=canary.desired if canary else None,
            latency_ms=h.latency_ms if h is not None else None,
            latency_history=tuple(self._latency.get(service, ())),
            last_good=self._last_good.get(service),
            down_since=self._down_since.get(service),
            components=tuple(c for p in h.probes for c in p.components) if h else (),
            probes=h.probes if h else (),
        )

    def _alerts(self, rows: Sequence[ServiceRow], now: float) -> list[Alert]:
        t = self._thresholds
        alerts: list[Alert] = []
        for src in self._sources():
            if not src.ok:
                alerts.append(
                    Alert(AlertLevel.CRITICAL, "", f"{src.name}: {src.message}", src.last_good)
                )
        for r in rows:
            if r.down_since is not None and now - r.down_since >= t.service_down_s:
                alerts.append(
                    Alert(
                        AlertLevel.CRITICAL,
                        r.service,
                        f"{r.service} {r.health.value} for {_ago(now - r.down_since)} "
                        f"(threshold {_ago(t.service_down_s)})",
                        r.down_since,
                    )
                )
            if r.rollout is not None and r.rollout_failed:
                alerts.append(
                    Alert(
                        AlertLevel.CRITICAL,
                        r.service,
                        f"{r.service} rollout failed: {r.rollout.message}",
                        None,
                    )
                )
            stuck = self._stuck_since.get(r.service)
            if r.rollout is not None and stuck is not None and now - stuck >= t.service_down_s:
                alerts.append(
                    Alert(
                        AlertLevel.WARNING,
                        r.service,
                        f"{r.service} rollout progressing for {_ago(now - stuck)}",
                        stuck,
                    )
                )
            if r.latency_ms is not None and r.latency_ms > t.p95_ms:
                alerts.append(
                    Alert(
                        AlertLevel.WARNING,
                        r.service,
                        f"{r.service} health latency {r.latency_ms:.0f} ms > {t.p95_ms:.0f} ms",
                        None,
                    )
                )
        alerts += self._database_alerts()
        return alerts

    def _database_alerts(self) -> list[Alert]:
        db = self._database
        out: list[Alert] = []
        for server in db.servers if db is not None else ():
            if server.role is Role.PRIMARY and server.state is ServerState.DOWN:
                continue  # the unreachable source says it
            for p in server.problems:
                level = AlertLevel.CRITICAL if p.critical else AlertLevel.WARNING
                since = server.last_good if server.state is ServerState.DOWN else None
                out.append(Alert(level, f"db:{server.name}", f"{server.name}: {p.text}", since))
        return out


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
