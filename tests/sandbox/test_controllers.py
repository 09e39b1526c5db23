"""The sandbox's controllers, driven in-process on a fake clock, against the invariants the
real deployment controller keeps."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from backends.sandbox.cluster import Cluster
from backends.sandbox.podutil import pod_ready, revision_of
from backends.sandbox.view import SandboxService

NS = "bharathva"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_cluster(replicas: int = 3) -> tuple[Cluster, FakeClock]:
    clock = FakeClock()
    svc = SandboxService(
        name="auth-service",
        container="auth-service",
        port=8081,
        health_paths=("/actuator/health",),
        metrics_path="/actuator/prometheus",
        log_format="plain",
    )
    cluster = Cluster(
        [svc],
        NS,
        replicas={"auth-service": replicas},
        images={"auth-service": "bharathva/auth-service:1.0.0"},
        clock=clock,
        progress_deadline=30,
    )
    cluster.seed_objects()
    return cluster, clock


def run(
    cluster: Cluster,
    clock: FakeClock,
    seconds: float,
    check: Callable[[Cluster], None] | None = None,
    step: float = 0.05,
) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step
        cluster.reconcile()
        if check is not None:
            check(cluster)


def deployment(cluster: Cluster) -> dict[str, Any]:
    d = cluster.store.get("deployments", NS, "auth-service")
    assert d is not None
    return d


def patch_deployment(cluster: Cluster, fn: Callable[[dict[str, Any]], None]) -> None:
    d = copy.deepcopy(deployment(cluster))
    fn(d)
    cluster.store.update("deployments", d, "deployments.apps")


def set_image(cluster: Cluster, image: str) -> None:
    def apply(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image

    patch_deployment(cluster, apply)


def live_pods(cluster: Cluster) -> list[dict[str, Any]]:
    return [
        p
        for p in cluster.store.list_objects("pods", NS)
        if not p["metadata"].get("deletionTimestamp")
    ]


def complete(cluster: Cluster) -> bool:
    st = deployment(cluster).get("status", {})
    n = deployment(cluster)["spec"]["replicas"]
    return (
        st.get("updatedReplicas") == n
        and st.get("availableReplicas") == n
        and st.get("replicas") == n
    )


def test_initial_deployment_becomes_available_after_ready_delay() -> None:
    cluster, clock = make_cluster()
    run(cluster, clock, 0.5)
    assert not complete(cluster), "pods must not be ready before the readiness delay"
    run(cluster, clock, 1.0)
    assert complete(cluster)
    d = deployment(cluster)
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]


@pytest.mark.parametrize(
    ("surge", "unavailable", "max_pods", "min_ready"),
    [("25%", "25%", 4, 3), (0, 1, 3, 2), (2, 0, 5, 3), ("50%", "50%", 5, 2)],
)
def test_rolling_update_honours_surge_and_unavailable(
    surge: Any, unavailable: Any, max_pods: int, min_ready: int
) -> None:
    cluster, clock = make_cluster()
    run(cluster, clock, 2)

    def strategy(d: dict[str, Any]) -> None:
        d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}

    patch_deployment(cluster, strategy)
    run(cluster, clock, 0.5)
    set_image(cluster, "bharathva/auth-service:1.1.0")
    peak = [0]

    def invariant(c: Cluster) -> None:
        pods = live_pods(c)
        peak[0] = max(peak[0], len(pods))
        assert len(pods) <= max_pods
        assert sum(1 for p in pods if pod_ready(p)) >= min_ready

    run(cluster, clock, 10, invariant)
    assert complete(cluster)
    images = {p["spec"]["containers"][0]["image"] for p in live_pods(cluster)}
    assert images == {"bharathva/auth-service:1.1.0"}
    assert peak[0] > 3 or max_pods == 3


def test_recreate_never_mixes_versions() -> None:
    cluster, clock = make_cluster()
    run(cluster, clock, 2)
    patch_deployment(cluster, lambda d: d["spec"].update(strategy={"type": "Recreate"}))
    set_image(cluster, "bharathva/auth-service:1.1.0")

    def one_version(c: Cluster) -> None:
        images = {p["spec"]["containers"][0]["image"] for p in c.store.list_objects("pods", NS)}
        assert len(images) <= 1

    run(cluster, clock, 10, one_version)
    assert complete(cluster)


def test_revision_history_limit_prunes_oldest() -> None:
    cluster, clock = make_cluster()
    patch_deployment(cluster, lambda d: d["spec"].update(revisionHistoryLimit=2))
    run(cluster, clock, 2)
    for minor in range(1, 6):
        set_image(cluster, f"bharathva/auth-service:1.{minor}.0")
        run(cluster, clock, 4)
        assert complete(cluster)
    rss = cluster.store.list_objects("replicasets", NS)
    assert sorted(revision_of(rs) for rs in rss) == [4, 5, 6]


def test_crash_loop_backoff_grows_and_deadline_fails() -> None:
    cluster, clock = make_cluster()
    run(cluster, clock, 2)
    set_image(cluster, "bharathva/auth-service:1.1.0-crash")
    run(cluster, clock, 40)
    d = deployment(cluster)
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Progressing"]["status"] == "False"
    assert conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    assert d["status"]["availableReplicas"] == 3  # old pods keep serving
    crashing = [
        p for p in live_pods(cluster) if p["spec"]["containers"][0]["image"].endswith("-crash")
    ]
    assert crashing
    cs = crashing[0]["status"]["containerStatuses"][0]
    # back-off 10 s, 20 s: in 40 s a container restarts two or three times, not forty.
    assert 2 <= cs["restartCount"] <= 4
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1


def test_paused_deployment_does_not_roll_but_scales() -> None:
    cluster, clock = make_cluster()
    run(cluster, clock, 2)
    patch_deployment(cluster, lambda d: d["spec"].update(paused=True))
    set_image(cluster, "bharathva/auth-service:1.1.0")
    run(cluster, clock, 3)
    assert len(cluster.store.list_objects("replicasets", NS)) == 1
    patch_deployment(cluster, lambda d: d["spec"].update(replicas=5))
    run(cluster, clock, 3)
    assert len(live_pods(cluster)) == 5
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(cluster)} == {
        "bharathva/auth-service:1.0.0"
    }
    patch_deployment(cluster, lambda d: d["spec"].update(paused=False))
    run(cluster, clock, 10)
    assert complete(cluster)
    assert len(cluster.store.list_objects("replicasets", NS)) == 2


def test_deleting_a_pod_is_replaced_and_deployment_delete_cascades() -> None:
    cluster, clock = make_cluster()
    run(cluster, clock, 2)
    victim = live_pods(cluster)[0]
    cluster.kubelet.delete(victim)
    run(cluster, clock, 0.1)
    gone = cluster.store.get("pods", NS, victim["metadata"]["name"])
    assert gone is None or gone["metadata"].get("deletionTimestamp")
    run(cluster, clock, 3)
    assert complete(cluster) and len(live_pods(cluster)) == 3
    cluster.store.delete("deployments", NS, "auth-service", "deployments.apps")
    run(cluster, clock, 3)
    assert cluster.store.list_objects("replicasets", NS) == []
    assert cluster.store.list_objects("pods", NS) == []


def test_watch_history_expires_old_versions() -> None:
    from backends.sandbox.store import Expired, Store

    clock = FakeClock()
    store = Store(clock, history=10)
    for i in range(30):
        store.create("leases", {"metadata": {"name": f"l{i}", "namespace": NS}}, "leases")
    assert [c.obj["metadata"]["name"] for c in store.changes_since(store.resource_version - 2)] == [
        "l28",
        "l29",
    ]
    with pytest.raises(Expired):
        store.changes_since(store.resource_version - 25)
