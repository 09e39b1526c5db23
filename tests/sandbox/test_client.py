"""Fidelity of the sandbox through the real `kubernetes` Python client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.sandbox_proc import RunningSandbox
from tests.support.waiting import wait_until

NS = "bharathva"


@pytest.fixture
def api(sandbox: RunningSandbox) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


def wait_rollout(apps: client.AppsV1Api, name: str, timeout: float = 60) -> client.V1Deployment:
    def rolled_out() -> client.V1Deployment | None:
        d = apps.read_namespaced_deployment(name, NS)
        st = d.status
        done = (
            (st.observed_generation or 0) >= d.metadata.generation
            and (st.updated_replicas or 0) == d.spec.replicas
            and (st.replicas or 0) == d.spec.replicas
            and (st.available_replicas or 0) == d.spec.replicas
        )
        return d if done else None

    return wait_until(rolled_out, timeout, f"{name} to finish rolling out", interval=0.1)


def test_typed_client_rollout_and_history(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    names = {d.metadata.name for d in apps.list_namespaced_deployment(NS).items}
    assert {"auth-service", "gateway-service", "discovery-service"} <= names
    apps.patch_namespaced_deployment(
        "gateway-service",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "gateway-service", "image": "bharathva/gateway-service:1.1.0"}
                        ]
                    }
                }
            }
        },
    )
    d = wait_rollout(apps, "gateway-service")
    assert d.spec.template.spec.containers[0].image == "bharathva/gateway-service:1.1.0"
    # The strategic merge kept the other container fields.
    assert d.spec.template.spec.containers[0].readiness_probe is not None
    rss = apps.list_namespaced_replica_set(NS, label_selector="app=gateway-service").items
    revs = sorted(int(r.metadata.annotations["deployment.kubernetes.io/revision"]) for r in rss)
    assert revs == [1, 2]
    for rs in rss:
        assert rs.metadata.owner_references[0].uid == d.metadata.uid
    scale = apps.read_namespaced_deployment_scale("gateway-service", NS)
    assert scale.spec.replicas == 3 and "app=gateway-service" in scale.status.selector


def test_watch_resumes_from_resource_version_and_410(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    listed = apps.list_namespaced_deployment(NS)
    rv = listed.metadata.resource_version
    apps.patch_namespaced_deployment_scale("discovery-service", NS, {"spec": {"replicas": 3}})
    w = watch.Watch()
    seen = None
    for ev in w.stream(
        apps.list_namespaced_deployment, NS, resource_version=rv, timeout_seconds=10
    ):
        if ev["object"].metadata.name == "discovery-service" and ev["type"] == "MODIFIED":
            seen = ev["object"]
            w.stop()
    assert seen is not None and seen.spec.replicas == 3
    with pytest.raises(ApiException) as exc:
        for _ in watch.Watch().stream(
            apps.list_namespaced_deployment, NS, resource_version="5", timeout_seconds=5
        ):
            pass
    assert exc.value.status == 410


def test_logs_events_and_leases(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    wait_rollout(apps, "auth-service")
    pod = core.list_namespaced_pod(NS, label_selector="app=auth-service").items[0]

    def tail() -> list[str]:
        text = core.read_namespaced_pod_log(pod.metadata.name, NS, tail_lines=5, timestamps=True)
        return list(text.splitlines())

    lines = wait_until(tail, 30, "auth-service to log", interval=0.1)
    assert 0 < len(lines) <= 5 and lines[0][:2] == "20"
    resp = core.read_namespaced_pod_log(
        pod.metadata.name, NS, follow=True, tail_lines=1, _preload_content=False
    )
    got = 0
    for _chunk in resp.stream(1024):
        got += 1
        if got >= 3:
            break
    resp.release_conn()
    assert got >= 3
    events = core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    assert {"Scheduled", "Started"} <= {e.reason for e in events}

    coord = client.CoordinationV1Api(api)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="bva-release-lock"),
        spec=client.V1LeaseSpec(holder_identity="alice@host", lease_duration_seconds=30),
    )
    created = coord.create_namespaced_lease(NS, body)
    with pytest.raises(ApiException) as dup:
        coord.create_namespaced_lease(NS, body)
    assert dup.value.status == 409
    created.spec.holder_identity = "bob@host"
    coord.replace_namespaced_lease("bva-release-lock", NS, created)
    created.spec.holder_identity = "carol@host"  # stale resourceVersion now
    with pytest.raises(ApiException) as conflict:
        coord.replace_namespaced_lease("bva-release-lock", NS, created)
    assert conflict.value.status == 409
    assert coord.read_namespaced_lease("bva-release-lock", NS).spec.holder_identity == "bob@host"
    coord.delete_namespaced_lease("bva-release-lock", NS)
    with pytest.raises(ApiException) as gone:
        coord.read_namespaced_lease("bva-release-lock", NS)
    assert gone.value.status == 404


def test_json_patch_undo_like_kubectl(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment(
        "user-service",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "user-service",
                                "image": "bharathva/user-service:1.5.0-unhealthy",
                            }
                        ]
                    }
                }
            }
        },
    )
    wait_rollout(apps, "user-service")
    rss = apps.list_namespaced_replica_set(NS, label_selector="app=user-service").items
    first = next(
        r for r in rss if r.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    )
    template = api.sanitize_for_serialization(first.spec.template)
    template["metadata"]["labels"].pop("pod-template-hash")
    apps.patch_namespaced_deployment(
        "user-service", NS, [{"op": "replace", "path": "/spec/template", "value": template}]
    )
    d = wait_rollout(apps, "user-service")
    assert d.spec.template.spec.containers[0].image == "bharathva/user-service:1.0.0"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    rss = apps.list_namespaced_replica_set(NS, label_selector="app=user-service").items
    assert len(rss) == 2  # revision 1's ReplicaSet was reused as revision 3
