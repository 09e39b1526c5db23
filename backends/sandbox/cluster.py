"""The simulated cluster: store, controllers, kubelet and the simulated applications, run on
one event loop, reacting to writes the way the control plane's informers do."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from backends.sandbox.autoscalers import AutoscalerController, autoscaler_manifest
from backends.sandbox.config_objects import config_map_manifest, secret_manifest
from backends.sandbox.deployments import DeploymentController
from backends.sandbox.events import EventRecorder
from backends.sandbox.kubelet import NODES, Kubelet
from backends.sandbox.logchatter import STEP_S, step_at
from backends.sandbox.logs import LogBook
from backends.sandbox.podenv import EnvPlan, plan_env
from backends.sandbox.podutil import pod_ready, spec_replicas, status_int
from backends.sandbox.replicasets import ReplicaSetController
from backends.sandbox.resources import SERVER_VERSION, default_deployment
from backends.sandbox.store import Change, Store
from backends.sandbox.tickstats import TickStats
from backends.sandbox.traffic import Traffic
from backends.sandbox.view import LogFormat, PodView, SandboxService, behaviour_for_image

Obj = dict[str, Any]
MAX_ROUNDS = 50
# A loop turn's share of the controllers' work; the API gets a turn after each.
RECONCILE_SLICE_S = 0.005


class Cluster:
    def __init__(
        self,
        services: Sequence[SandboxService],
        namespace: str,
        *,
        replicas: dict[str, int],
        images: dict[str, str],
        speed: float = 1.0,
        seed: int = 1,
        ready_delay: float = 1.0,
        progress_deadline: int = 600,
        clock: Callable[[], float] = time.time,
        config_prefix: str = "",
    ) -> None:
        self.services = list(services)
        self.namespace = namespace
        # Shared Secrets and ConfigMaps are named <prefix>-<group> ("bharathva-db").
        self.config_prefix = config_prefix or namespace
        self._env_plans: dict[str, EnvPlan] = {
            s.name: plan_env(s.env, s.port, self.config_prefix, s.container) for s in self.services
        }
        self.speed = speed
        self._clock = clock
        self._replicas = replicas
        self._images = images
        self._progress_deadline = progress_deadline
        self._rng = random.Random(seed)
        self.store = Store(clock)
        self.events = EventRecorder(self.store, clock)
        self.logs = LogBook(seed=seed, clock=clock, speed=speed)
        self.traffic = Traffic(
            services=self.services,
            view=self,
            seed=seed,
            clock=clock,
            speed=speed,
            pods_version=self.pods_version,
        )
        self.ticks = TickStats()
        formats: dict[str, LogFormat] = {s.name: s.log_format for s in self.services}
        self.kubelet = Kubelet(
            self.store,
            self.events,
            self.logs,
            clock,
            self.schedule,
            speed=speed,
            ready_delay=ready_delay,
            rng=self._rng,
            log_format_for=lambda svc: formats.get(svc, "plain"),
        )
        self.replicasets = ReplicaSetController(
            self.store, self.events, clock, self.schedule, self.kubelet.delete, self._rng
        )
        self.deployments = DeploymentController(self.store, self.events, clock, self.schedule)
        self.autoscalers = AutoscalerController(self.store, clock)
        self._dirty_hpa: set[tuple[str, str]] = set()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._dirty_rs: set[tuple[str, str]] = set()
        self._dirty_deploy: set[tuple[str, str]] = set()
        self._by_app: dict[str, set[str]] = {}
        # Bumped on every change to a service's pods: the traffic tick skips the unchanged.
        self._pod_versions: dict[str, int] = {}
        self._by_service = {s.name: s for s in self.services}
        # PodViews are rebuilt only when the pod changed: traffic asks after every change.
        self._views: dict[str, tuple[str, PodView]] = {}
        self._wake = asyncio.Event()
        self._stopped = False
        self.store.add_listener(self._on_change)

    # -- scheduling -------------------------------------------------------------------
    def schedule(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), fn))
        self._wake.set()

    def _on_change(self, change: Change) -> None:
        obj = change.obj
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        if change.resource == "pods":
            self._index_pod(change)
            if change.type == "ADDED" and not obj.get("spec", {}).get("nodeName"):
                self.kubelet.pod_created(obj)
            for ref in meta.get("ownerReferences") or []:
                if ref.get("kind") == "ReplicaSet" and ref.get("controller"):
                    self._dirty_rs.add((ns, ref["name"]))
                    if change.type == "DELETED":
                        # Recreate waits for old pods to be gone: the deployment must hear it.
                        self._dirty_owner_of(ns, ref["name"])
        elif change.resource == "replicasets":
            self._dirty_rs.add((ns, meta["name"]))
            for ref in meta.get("ownerReferences") or []:
                if ref.get("kind") == "Deployment" and ref.get("controller"):
                    self._dirty_deploy.add((ns, ref["name"]))
        elif change.resource == "deployments":
            self._dirty_deploy.add((ns, meta["name"]))
            self._dirty_hpa.update(self.autoscalers.targeting(ns, meta["name"]))
        elif change.resource == "horizontalpodautoscalers" and change.type != "DELETED":
            self._dirty_hpa.add((ns, meta["name"]))
        if change.type == "DELETED" and meta.get("uid"):
            uid = meta["uid"]
            self.schedule(self._clock(), lambda: self._collect_garbage(uid))
        self._wake.set()

    def _dirty_owner_of(self, ns: str, rs_name: str) -> None:
        rs = self.store.get("replicasets", ns, rs_name)
        for ref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
            if ref.get("kind") == "Deployment" and ref.get("controller"):
                self._dirty_deploy.add((ns, ref["name"]))

    def _index_pod(self, change: Change) -> None:
        meta = change.obj["metadata"]
        app = (meta.get("labels") or {}).get("app")
        if app is None or meta.get("namespace") != self.namespace:
            return
        self._pod_versions[app] = self._pod_versions.get(app, 0) + 1
        if change.type == "DELETED":
            self._by_app.get(app, set()).discard(meta["name"])
            self._views.pop(meta["name"], None)
        else:
            self._by_app.setdefault(app, set()).add(meta["name"])

    def _collect_garbage(self, owner_uid: str) -> None:
        # Background propagation: dependents go once their owner is gone.
        for res in ("replicasets", "pods"):
            for obj in self.store.owned(owner_uid, res):
                m = obj["metadata"]
                if res == "pods":
                    self.kubelet.delete(obj)
                elif self.store.get(res, m["namespace"], m["name"]) is not None:
                    self.store.delete(res, m["namespace"], m["name"], f"{res}.apps")

    # -- the loop ---------------------------------------------------------------------
    def reconcile(self, slice_s: float | None = None) -> bool:
        """Run the due timers and sync what is dirty; with ``slice_s``, stop after about that
        many seconds (False: work is left) so a burst (2000 pods created, bound, started)
        is spread over loop turns and the API answers in between."""
        deadline = math.inf if slice_s is None else time.perf_counter() + slice_s
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            if time.perf_counter() > deadline:
                return False
            _, _, fn = heapq.heappop(self._timers)
            fn()
        for _ in range(MAX_ROUNDS):
            if not self._dirty_rs and not self._dirty_deploy:
                break
            if not self._sync_all(self._dirty_rs, self.replicasets.sync, deadline):
                return False
            if not self._sync_all(self._dirty_deploy, self.deployments.sync, deadline):
                return False
        return self._sync_all(self._dirty_hpa, self.autoscalers.sync, deadline)

    @staticmethod
    def _sync_all(
        dirty: set[tuple[str, str]], sync: Callable[[str, str], None], deadline: float
    ) -> bool:
        """Sync the keys dirty now (in order: runs repeat); keys dirtied meanwhile wait for the
        next round. False when the deadline left some of them dirty."""
        keys = sorted(dirty)
        dirty.difference_update(keys)
        for i, (ns, name) in enumerate(keys):
            if time.perf_counter() > deadline:
                dirty.update(keys[i:])
                return False
            sync(ns, name)
        return True

    async def run(self) -> None:
        perf = time.perf_counter
        record = self.ticks.record
        last_sim = self._clock()
        next_sim = _next_step(last_sim)
        while not self._stopped:
            self._wake.clear()
            t0 = perf()
            done = self.reconcile(RECONCILE_SLICE_S)
            t1 = perf()
            record("controllers", t1 - t0)
            now = self._clock()
            if now >= next_sim:
                self.traffic.tick(now - last_sim)
                t2 = perf()
                self.logs.tick()
                t3 = perf()
                record("traffic", t2 - t1)
                record("logs", t3 - t2)
                last_sim = now
                # On the log step grid: a followed line goes out as soon as its step is due,
                # not up to a tick later (the merged tail's reorder window is 0.1 s).
                next_sim = _next_step(now)
            record("tick", perf() - t0)
            if not done:
                await asyncio.sleep(0)  # the rest of the burst after whatever else is ready
                continue
            wait = next_sim - now
            if self._timers:
                wait = min(wait, max(self._timers[0][0] - now, 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.005))

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    # -- ClusterView ------------------------------------------------------------------
    def pods_version(self, service: str) -> int:
        return self._pod_versions.get(service, 0)

    def pods_for_service(self, service: str) -> list[PodView]:
        out = []
        for name in sorted(self._by_app.get(service, ())):
            pod = self.store.get("pods", self.namespace, name)
            if pod is None:
                continue
            rv = pod["metadata"]["resourceVersion"]
            cached = self._views.get(name)
            if cached is None or cached[0] != rv:
                cached = (rv, self._view(service, pod))
                self._views[name] = cached
            out.append(cached[1])
        return out

    def _view(self, service: str, pod: Obj) -> PodView:
        svc = self._by_service.get(service)
        containers = pod["spec"].get("containers") or []
        main = next(
            (c for c in containers if svc and c.get("name") == svc.container),
            containers[0] if containers else {},
        )
        statuses = pod.get("status", {}).get("containerStatuses") or []
        running = [cs for cs in statuses if "running" in (cs.get("state") or {})]
        started = running[0]["state"]["running"]["startedAt"] if running else None
        return PodView(
            name=pod["metadata"]["name"],
            service=service,
            container=str(main.get("name", "")),
            track=(pod["metadata"].get("labels") or {}).get("track", "stable"),
            image=str(main.get("image", "")),
            behaviour=behaviour_for_image(str(main.get("image", ""))),
            ready=pod_ready(pod) and not pod["metadata"].get("deletionTimestamp"),
            running=bool(running),
            started_at=_ts(started) if started else 0.0,
        )

    # -- readiness --------------------------------------------------------------------
    def unready_deployments(self) -> list[str]:
        """The platform's deployments not yet up, each as "name ready/desired": up is what
        `kubectl rollout status` and `bva status` call complete, Available and every replica
        of the current template ready."""
        waiting = []
        for svc in self.services:
            name = svc.deployment or svc.name
            d = self.store.get("deployments", self.namespace, name)
            if d is None:
                waiting.append(f"{name} missing")
            elif not _deployment_up(d):
                waiting.append(f"{name} {status_int(d, 'readyReplicas')}/{spec_replicas(d)}")
        return waiting

    # -- initial state ----------------------------------------------------------------
    def seed_objects(self) -> None:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease", self.namespace):
            if self.store.get("namespaces", "", ns) is None:
                self.store.create("namespaces", _namespace(ns), "namespaces")
        for node in NODES:
            self.store.create("nodes", _node(node), "nodes")
        self._seed_config()
        for svc in self.services:
            self.store.create("services", self._service(svc), "services")
            self.store.create("deployments", self.deployment_manifest(svc), "deployments.apps")
            if svc.autoscaling is not None:
                lo, hi, cpu = svc.autoscaling
                name = svc.deployment or svc.name
                hpa = autoscaler_manifest(f"{svc.name}-hpa", self.namespace, name, lo, hi, cpu)
                self.store.create("horizontalpodautoscalers", hpa, "horizontalpodautoscalers")

    def _seed_config(self) -> None:
        """The Secrets and ConfigMaps the pod templates read, with dummy values."""
        secrets: dict[str, dict[str, str]] = {}
        config_maps: dict[str, dict[str, str]] = {}
        for plan in self._env_plans.values():
            for name, values in plan.secrets.items():
                secrets.setdefault(name, {}).update(values)
            for name, values in plan.config_maps.items():
                config_maps.setdefault(name, {}).update(values)
        for name, values in sorted(secrets.items()):
            self.store.create("secrets", secret_manifest(name, self.namespace, values), "secrets")
        for name, values in sorted(config_maps.items()):
            manifest = config_map_manifest(name, self.namespace, values)
            self.store.create("configmaps", manifest, "configmaps")

    def _service(self, svc: SandboxService) -> Obj:
        return {
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {
                "name": svc.name,
                "namespace": self.namespace,
                "labels": {"app": svc.name},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": f"10.96.{self._rng.randint(0, 255)}.{self._rng.randint(1, 254)}",
                "selector": {"app": svc.name},
                "ports": [
                    {"name": "http", "port": svc.port, "targetPort": svc.port, "protocol": "TCP"}
                ],
            },
            "status": {"loadBalancer": {}},
        }

    def deployment_manifest(self, svc: SandboxService) -> Obj:
        image = self._images[svc.name]
        labels = {"app": svc.name, "track": "stable"}
        plan = self._env_plans[svc.name]
        health = svc.health_paths[0] if svc.health_paths else "/actuator/health"
        probe = {
            "httpGet": {"path": health, "port": svc.port, "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
        d: Obj = {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": svc.deployment or svc.name,
                "namespace": self.namespace,
                "labels": {"app": svc.name},
                "annotations": {"kubernetes.io/change-cause": f"initial release {_tag(image)}"},
            },
            "spec": {
                "replicas": self._replicas.get(svc.name, 2),
                "progressDeadlineSeconds": self._progress_deadline,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {
                        "containers": [
                            {
                                "name": svc.container,
                                "image": image,
                                "ports": [{"name": "http", "containerPort": svc.port}],
                                "env": copy.deepcopy(plan.env),
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "512Mi"},
                                    "limits": {"cpu": "1", "memory": "1Gi"},
                                },
                                "readinessProbe": dict(probe),
                                "livenessProbe": {**probe, "initialDelaySeconds": 30},
                            }
                        ]
                    },
                },
            },
        }
        if plan.env_from:
            container = d["spec"]["template"]["spec"]["containers"][0]
            container["envFrom"] = copy.deepcopy(plan.env_from)
        default_deployment(d)
        return d


def _deployment_up(d: Obj) -> bool:
    want = spec_replicas(d)
    status = d.get("status") or {}
    if int(status.get("observedGeneration", 0) or 0) < int(d["metadata"].get("generation", 1)):
        return False
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    if any(status_int(d, field) != want for field in counts):
        return False
    return any(
        c.get("type") == "Available" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _next_step(now: float) -> float:
    return (step_at(now) + 1) * STEP_S


def _tag(image: str) -> str:
    return image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"


def _ts(text: str) -> float:
    from backends.sandbox.podutil import parse_time

    return parse_time(text)


def _namespace(name: str) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _node(name: str) -> Obj:
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "nodeInfo": {
                "kubeletVersion": SERVER_VERSION["gitVersion"],
                "containerRuntimeVersion": "containerd://1.7.22",
                "osImage": "bva sandbox",
                "architecture": "amd64",
                "operatingSystem": "linux",
            },
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        },
    }
