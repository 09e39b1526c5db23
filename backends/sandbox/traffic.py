"""Simulated request traffic, exposed as Micrometer's Prometheus metrics per service.

Requests are simulated in aggregate: a service gets about ``rps * dt`` requests for ``dt``
seconds, split evenly over its ready pods, then over routes and outcomes with randomised
rounding, and each outcome's latencies are spread over the histogram buckets by systematic
sampling of a log-normal distribution. The cost is proportional to the number of (pod,
series) pairs that received requests, not to the number of requests.

Ticks only add up time: a service's requests are served when somebody scrapes it or when its
pods change (so requests go to the pods that were there), told by ``pods_version``. An idle
sandbox of 200 services then costs a counter per service per tick, not a simulation of 2000
pods four times a second. Without ``pods_version`` every tick serves every service.

Request rates are deliberately not multiplied by the simulation speed: a faster sandbox
reaches its states sooner, but the request rates it shows stay those of a real service.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backends.sandbox.logvocab import service_kind
from backends.sandbox.timer_series import BUCKETS, MAX_EXPIRY_S, Series
from backends.sandbox.view import Behaviour, ClusterView, PodView, SandboxService

_LE = (*(repr(b) for b in BUCKETS), "+Inf")
_MB = 1024.0 * 1024.0
# A tick's share of serving changed services; the loop's other work gets a turn after it.
TICK_SLICE_S = 0.005


@dataclass(frozen=True)
class Route:
    method: str
    uri: str
    weight: float
    median_s: float
    ok_status: str = "200"
    client_status: str | None = None
    client_rate: float = 0.0


@dataclass(frozen=True)
class Fault:
    """How a 5xx looks on one kind of service: status and Micrometer's exception tag."""

    status: str
    exception: str


_ROUTES: dict[str, tuple[Route, ...]] = {
    "auth": (
        # ~0.08 % bad credentials: a few failed logins a minute at the default rate.
        Route("POST", "/api/auth/login", 0.45, 0.050, "200", "401", 0.0008),
        Route("POST", "/api/auth/register", 0.10, 0.070, "201", "400", 0.02),
        Route("POST", "/api/auth/refresh", 0.45, 0.030, "200", "401", 0.01),
    ),
    "tweet": (
        Route("GET", "/api/tweets", 0.50, 0.045),
        Route("POST", "/api/tweets", 0.10, 0.060, "201", "400", 0.01),
        Route("GET", "/api/tweets/{id}", 0.40, 0.030, "200", "404", 0.01),
    ),
    "user": (
        Route("GET", "/api/users/{id}", 0.80, 0.035, "200", "404", 0.005),
        Route("PUT", "/api/users/{id}", 0.20, 0.055, "200", "400", 0.01),
    ),
    "gateway": (
        Route("GET", "/api/**", 0.70, 0.040, "200", "404", 0.005),
        Route("POST", "/api/**", 0.30, 0.050, "200", "401", 0.01),
    ),
    "discovery": (
        Route("GET", "/eureka/apps", 0.30, 0.040),
        Route("PUT", "/eureka/apps/{appID}/{id}", 0.60, 0.035),
        Route("POST", "/eureka/apps/{appID}", 0.10, 0.040, "204"),
    ),
}
_LOGIN_URI = "/api/auth/login"

_FAULTS: dict[str, tuple[Fault, Fault]] = {
    # (occasional bug on a healthy pod, failure mode of the "unhealthy" image)
    "gateway": (Fault("500", "ConnectException"), Fault("504", "TimeoutException")),
    "discovery": (Fault("500", "NullPointerException"), Fault("503", "none")),
}
_DB_FAULTS = (
    Fault("500", "NullPointerException"),
    Fault("500", "CannotCreateTransactionException"),
)


def routes_for(service: str) -> tuple[Route, ...]:
    kind = service_kind(service)
    if kind in _ROUTES:
        return _ROUTES[kind]
    return (
        Route("GET", f"/api/{service}/{{id}}", 0.7, 0.040, "200", "404", 0.01),
        Route("POST", f"/api/{service}", 0.3, 0.060, "201", "400", 0.01),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Pod:
    __slots__ = (
        "behaviour",
        "cycle",
        "err_rate",
        "heap_base",
        "label",
        "latency",
        "login_failures",
        "name",
        "ready",
        "requests",
        "rng",
        "running",
        "series",
        "sigma",
        "started_at",
        "track",
    )

    def __init__(self, view: PodView, seed: int) -> None:
        self.name = view.name
        self.started_at = view.started_at
        self.behaviour: Behaviour = view.behaviour
        self.rng = rng = random.Random(f"{seed}/traffic/{view.name}/{view.started_at!r}")
        self.series: dict[tuple[int, int], Series] = {}
        self.update(view)
        sick = view.behaviour == "unhealthy"
        self.err_rate = rng.uniform(0.15, 0.30) if sick else rng.uniform(0.001, 0.003)
        self.latency = rng.uniform(7.0, 10.0) if sick else rng.uniform(0.85, 1.2)
        self.sigma = 0.85 if sick else 0.55
        self.heap_base = rng.uniform(180.0, 260.0) * _MB * (1.8 if sick else 1.0)
        self.cycle = rng.uniform(250.0, 400.0) * _MB
        self.requests = 0
        self.login_failures = 0

    def update(self, view: PodView) -> None:
        self.ready = view.ready and view.running
        self.running = view.running
        if getattr(self, "track", None) != view.track:
            self.track = view.track
            self.label = f'pod="{_escape(view.name)}",track="{_escape(view.track)}"'
            # Series labels embed the track; a relabelled pod starts new series.
            self.series = {}

    def heap_bytes(self, uptime: float) -> float:
        # A G1 sawtooth: allocation from background work and requests, collected each cycle;
        # the unhealthy image also leaks, which is part of why it is slow.
        allocated = uptime * 0.8 * _MB + self.requests * 150_000.0
        leak = min(uptime * 0.2 * _MB, 900.0 * _MB) if self.behaviour == "unhealthy" else 0.0
        return self.heap_base + leak + math.fmod(allocated, self.cycle)


class _Service:
    __slots__ = (
        "app",
        "carry",
        "cum_weights",
        "faults",
        "kind",
        "pending",
        "pods",
        "rng",
        "routes",
        "rr",
        "seen",
    )

    def __init__(self, name: str, seed: int) -> None:
        self.app = _escape(name)
        self.kind = service_kind(name)
        self.routes = routes_for(name)
        total = sum(r.weight for r in self.routes)
        acc = 0.0
        cum: list[float] = []
        for r in self.routes:
            acc += r.weight / total
            cum.append(acc)
        cum[-1] = 1.0
        self.cum_weights = tuple(cum)
        self.faults = _FAULTS.get(self.kind, _DB_FAULTS)
        self.rng = random.Random(f"{seed}/traffic/{name}")
        self.carry = self.rng.random()
        self.rr = 0
        self.pods: dict[str, _Pod] = {}
        self.pending = 0.0  # seconds of requests not yet served
        self.seen = -1  # the pods_version its pods were last synced at


class Traffic:
    def __init__(
        self,
        *,
        services: Sequence[SandboxService],
        view: ClusterView,
        seed: int,
        clock: Callable[[], float],
        speed: float = 1.0,
        rps_per_service: float = 200.0,
        pods_version: Callable[[str], int] | None = None,
    ) -> None:
        self._view = view
        self._pods_version = pods_version
        self._seed = seed
        self._clock = clock
        self._speed = speed  # accepted for symmetry; rates stay real-time on purpose
        self._rps = rps_per_service
        self._services: dict[str, _Service] = {s.name: _Service(s.name, seed) for s in services}
        self._index = {name: i for i, name in enumerate(self._services)}
        self._cursor = 0  # where the next tick starts serving changed services

    def tick(self, dt: float) -> None:
        """Account ``dt`` more seconds of requests to every service; serve those of the
        services whose pods changed, to the pods they had.

        With ``pods_version``, serving stops after ``TICK_SLICE_S`` (a rollout of every
        service changes them all at once); the rest are served first on the next tick."""
        if dt <= 0:
            return
        now = self._clock()
        version = self._pods_version
        services = list(self._services.items())
        if version is None:
            for name, svc in services:
                svc.pending += dt
                self._flush(name, svc, now)
            return
        deadline = time.perf_counter() + TICK_SLICE_S
        first = self._cursor % len(services) if services else 0
        self._cursor = first
        late = False
        for name, svc in services[first:] + services[:first]:
            svc.pending += dt
            if version(name) == svc.seen:
                continue
            if late or time.perf_counter() > deadline:
                if not late:
                    late, self._cursor = True, self._index[name]
                continue
            self._flush(name, svc, now)

    def _flush(self, name: str, svc: _Service, now: float) -> list[_Pod]:
        """Serve the service's pending requests, then follow its pods; the pods, synced."""
        seconds, svc.pending = svc.pending, 0.0
        if self._pods_version is None:
            # A view that tells no changes: the pods it has now are the best guess.
            pods = self._sync(name, svc)
            if seconds > 0:
                self._serve_all(svc, seconds, now)
            return pods
        if seconds > 0:
            self._serve_all(svc, seconds, now)  # to the pods it had until the change
        svc.seen = self._pods_version(name)
        return self._sync(name, svc)

    def _serve_all(self, svc: _Service, seconds: float, now: float) -> None:
        expected = self._rps * seconds
        # Poisson-like noise: a quarter second at 200 rps varies by some 7 requests, an hour
        # by a fraction of a percent, however the time was cut into flushes.
        svc.carry += max(0.0, expected + svc.rng.gauss(0.0, math.sqrt(expected)))
        n = int(svc.carry)
        svc.carry -= n
        ready = [p for p in svc.pods.values() if p.ready]
        if not n or not ready:
            return  # no endpoints: clients get connection errors, nothing is recorded
        k = len(ready)
        base, extra = divmod(n, k)
        start = svc.rr % k
        svc.rr += extra
        for i, pod in enumerate(ready):
            m = base + (1 if (i - start) % k < extra else 0)
            if m:
                self._serve(svc, pod, m, now)

    def _sync(self, name: str, svc: _Service) -> list[_Pod]:
        """Follow the cluster: new pods start from zero, vanished pods lose their series."""
        out: list[_Pod] = []
        known = svc.pods
        for view in self._view.pods_for_service(name):
            pod = known.get(view.name)
            if pod is None or pod.started_at != view.started_at:
                # A restarted JVM starts its counters again, as Prometheus expects.
                pod = known[view.name] = _Pod(view, self._seed)
            else:
                pod.update(view)
            out.append(pod)
        if len(known) != len(out):
            alive = {p.name for p in out}
            for gone in [p for p in known if p not in alive]:
                del known[gone]
        return out

    def _serve(self, svc: _Service, pod: _Pod, m: int, now: float) -> None:
        rng = pod.rng
        u = rng.random()
        if m == 1:
            # The common case at realistic rates and 4 ticks a second: one request.
            j = min(bisect_right(svc.cum_weights, u), len(svc.routes) - 1)
            route = svc.routes[j]
            r = rng.random()
            outcome = 0
            if r < pod.err_rate:
                outcome = 2
            elif route.client_status is not None and r < pod.err_rate + route.client_rate:
                outcome = 1
            self._series(svc, pod, j, outcome).record(1, rng, now)
            if outcome and route.uri == _LOGIN_URI and svc.kind == "auth":
                pod.login_failures += 1
            pod.requests += 1
            return
        prev = 0
        for j, route in enumerate(svc.routes):
            upto = min(m, max(0, math.ceil(m * svc.cum_weights[j] - u)))
            cnt = upto - prev
            prev = upto
            if cnt <= 0:
                continue
            e5 = min(cnt, math.floor(cnt * pod.err_rate + rng.random()))
            e4 = 0
            if route.client_status is not None:
                e4 = min(cnt - e5, math.floor((cnt - e5) * route.client_rate + rng.random()))
            ok = cnt - e5 - e4
            if ok:
                self._series(svc, pod, j, 0).record(ok, rng, now)
            if e4:
                self._series(svc, pod, j, 1).record(e4, rng, now)
            if e5:
                self._series(svc, pod, j, 2).record(e5, rng, now)
            if route.uri == _LOGIN_URI and svc.kind == "auth":
                pod.login_failures += e4 + e5
        pod.requests += m

    def _series(self, svc: _Service, pod: _Pod, route_index: int, outcome: int) -> Series:
        key = (route_index, outcome)
        series = pod.series.get(key)
        if series is not None:
            return series
        route = svc.routes[route_index]
        median = route.median_s * pod.latency
        sigma = pod.sigma
        if outcome == 0:
            status, exception, label = route.ok_status, "none", "SUCCESS"
        elif outcome == 1:
            status, exception, label = route.client_status or "400", "none", "CLIENT_ERROR"
            median *= 0.6
        else:
            fault = svc.faults[1 if pod.behaviour == "unhealthy" else 0]
            status, exception, label = fault.status, fault.exception, "SERVER_ERROR"
            if pod.behaviour == "unhealthy":
                median, sigma = 3.0, 0.6  # mostly connection-pool and upstream timeouts
            else:
                median *= 1.5
        labels = (
            f'application="{svc.app}",exception="{exception}",method="{route.method}",'
            f'outcome="{label}",{pod.label},status="{status}",uri="{_escape(route.uri)}"'
        )
        series = pod.series[key] = Series(labels, median, sigma)
        return series

    def render(self, service: str, *, pod: str | None = None) -> str:
        """Prometheus text exposition 0.0.4 for the service's pods (or only ``pod``)."""
        svc = self._services.get(service)
        if svc is None:
            svc = self._services[service] = _Service(service, self._seed)
            self._index[service] = len(self._index)
        now = self._clock()
        pods = [p for p in self._flush(service, svc, now) if pod is None or p.name == pod]
        out: list[str] = [
            "# HELP http_server_requests_seconds Duration of HTTP server request handling",
            "# TYPE http_server_requests_seconds histogram",
        ]
        add = out.append
        for p in pods:
            for s in p.series.values():
                cum = 0
                for le, k in zip(_LE, s.counts, strict=True):
                    cum += k
                    add(f'http_server_requests_seconds_bucket{{{s.labels},le="{le}"}} {cum}.0')
                add(f"http_server_requests_seconds_count{{{s.labels}}} {s.count}.0")
                add(f"http_server_requests_seconds_sum{{{s.labels}}} {s.total!r}")
        out += [
            "# HELP http_server_requests_seconds_max Duration of HTTP server request handling",
            "# TYPE http_server_requests_seconds_max gauge",
        ]
        for p in pods:
            for s in p.series.values():
                value = s.max if now - s.last <= MAX_EXPIRY_S else 0.0
                add(f"http_server_requests_seconds_max{{{s.labels}}} {value!r}")
        running = [p for p in pods if p.running]
        out += [
            "# HELP process_uptime_seconds The uptime of the Java virtual machine",
            "# TYPE process_uptime_seconds gauge",
        ]
        for p in running:
            uptime = max(0.0, now - p.started_at)
            add(f'process_uptime_seconds{{application="{svc.app}",{p.label}}} {uptime!r}')
        out += [
            "# HELP jvm_memory_used_bytes The amount of used memory",
            "# TYPE jvm_memory_used_bytes gauge",
        ]
        for p in running:
            heap = p.heap_bytes(max(0.0, now - p.started_at))
            add(
                f'jvm_memory_used_bytes{{application="{svc.app}",area="heap",{p.label}}} '
                f"{float(round(heap))!r}"
            )
        if svc.kind == "auth":
            out += [
                "# HELP auth_login_failures_total Failed login attempts",
                "# TYPE auth_login_failures_total counter",
            ]
            for p in running:
                add(
                    f'auth_login_failures_total{{application="{svc.app}",{p.label}}} '
                    f"{p.login_failures}.0"
                )
        return "\n".join(out) + "\n"
