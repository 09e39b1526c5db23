"""API JSON -> models: kubectl's pod columns, workloads, events (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from backends.kube.convert import (
    event_from,
    parse_time,
    pod_from,
    pod_status_text,
    workload_from,
)
from backends.models import image_tag


def pod(
    container_states: list[dict[str, Any]],
    *,
    phase: str = "Running",
    deleting: bool = False,
    init: list[dict[str, Any]] | None = None,
    init_specs: list[dict[str, Any]] | None = None,
    ready_condition: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "auth-service-5d9c7-abcde",
        "namespace": "bharathva",
        "labels": {"app": "auth-service", "track": "stable", "pod-template-hash": "5d9c7"},
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "ownerReferences": [
            {"kind": "ReplicaSet", "name": "auth-service-5d9c7", "controller": True, "uid": "u"}
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:05:00Z"
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": f"c{i}"} for i in range(len(container_states))],
            "initContainers": init_specs or [],
        },
        "status": {
            "phase": phase,
            "startTime": "2024-05-01T10:00:01Z",
            "conditions": [{"type": "Ready", "status": "True" if ready_condition else "False"}],
            "initContainerStatuses": init or [],
            "containerStatuses": container_states,
        },
    }


RUNNING = {"ready": True, "restartCount": 0, "state": {"running": {}}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(pod([RUNNING]), ("Running", 1, 1, 0), id="running"),
        pytest.param(
            pod(
                [
                    {
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                ],
                phase="Pending",
            ),
            ("ContainerCreating", 0, 1, 0),
            id="creating",
        ),
        pytest.param(
            pod(
                [
                    {
                        "ready": False,
                        "restartCount": 4,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
                    }
                ]
            ),
            ("CrashLoopBackOff", 0, 1, 4),
            id="crashloop",
        ),
        pytest.param(pod([RUNNING], deleting=True), ("Terminating", 1, 1, 0), id="terminating"),
        pytest.param(
            pod(
                [{"ready": False, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
                phase="Succeeded",
                deleting=True,
            ),
            ("Completed", 0, 1, 0),
            id="completed-not-terminating-when-terminal",
        ),
        pytest.param(
            pod([{"ready": False, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]),
            ("Signal:9", 0, 1, 0),
            id="signal",
        ),
        pytest.param(
            pod([{"ready": False, "state": {"terminated": {"exitCode": 3}}}]),
            ("ExitCode:3", 0, 1, 0),
            id="exit-code",
        ),
        pytest.param(
            pod(
                [{"ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}],
                phase="Pending",
                init=[{"name": "migrate", "state": {"running": {}}}],
                init_specs=[{"name": "migrate"}],
                ready_condition=False,
            ),
            ("Init:0/1", 0, 1, 0),
            id="init-running",
        ),
        pytest.param(
            pod(
                [RUNNING],
                init=[{"name": "proxy", "started": True, "ready": True, "state": {"running": {}}}],
                init_specs=[{"name": "proxy", "restartPolicy": "Always"}],
            ),
            ("Running", 2, 2, 0),
            id="sidecar-counts",
        ),
        pytest.param(
            pod([RUNNING, {"ready": False, "state": {"terminated": {"reason": "Completed"}}}]),
            ("Running", 1, 2, 0),
            id="completed-with-running-sibling",
        ),
    ],
)
def test_pod_status_columns(obj: dict[str, Any], expected: tuple[str, int, int, int]) -> None:
    assert pod_status_text(obj) == expected


def test_pod_model() -> None:
    obj = pod(
        [
            {
                "ready": True,
                "restartCount": 2,
                "state": {"running": {}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            }
        ]
    )
    obj["spec"]["containers"][0]["image"] = "bharathva/auth-service:1.0.0"
    p = pod_from(obj)
    assert (p.service, p.track, p.status, p.ready, p.restarts) == (
        "auth-service",
        "stable",
        "Running",
        "1/1",
        2,
    )
    assert (p.owner_replicaset, p.pod_template_hash, p.node) == (
        "auth-service-5d9c7",
        "5d9c7",
        "node-1",
    )
    assert (p.last_termination_reason, p.last_exit_code) == ("OOMKilled", 137)
    assert p.created == parse_time("2024-05-01T10:00:00Z")
    assert p.images == {"c0": "bharathva/auth-service:1.0.0"}


def test_workload_model() -> None:
    w = workload_from(
        {
            "metadata": {
                "name": "auth-service-canary",
                "generation": 4,
                "labels": {"app": "auth-service"},
                "annotations": {
                    "deployment.kubernetes.io/revision": "7",
                    "kubernetes.io/change-cause": "release 1.1.0",
                },
                "creationTimestamp": "2024-05-01T10:00:00Z",
            },
            "spec": {
                "replicas": 2,
                "paused": True,
                "progressDeadlineSeconds": 600,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
                },
                "template": {
                    "spec": {"containers": [{"name": "app", "image": "reg:5000/auth:1.1.0"}]}
                },
            },
            "status": {
                "observedGeneration": 4,
                "replicas": 3,
                "updatedReplicas": 1,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "unavailableReplicas": 1,
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "Unknown",
                        "reason": "DeploymentPaused",
                        "lastUpdateTime": "2024-05-01T10:01:00Z",
                    }
                ],
            },
        },
        "auth-service",
    )
    assert (w.track, w.revision, w.desired, w.current, w.updated, w.unavailable) == (
        "canary",
        7,
        2,
        3,
        1,
        1,
    )
    assert (w.strategy.max_surge, w.strategy.max_unavailable) == ("25%", "0")
    assert w.image_tag() == "1.1.0"
    assert w.change_cause == "release 1.1.0"
    progressing = w.condition("Progressing")
    assert progressing is not None and progressing.reason == "DeploymentPaused"


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("bharathva/auth-service:1.1.0-crash", "1.1.0-crash"),
        ("registry:5000/auth", "latest"),
        ("registry:5000/auth:2", "2"),
        ("auth@sha256:abc", "sha256:abc"),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def test_event_model_falls_back_to_event_time() -> None:
    e = event_from(
        {
            "metadata": {"creationTimestamp": "2024-05-01T10:00:00Z"},
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "involvedObject": {"kind": "Pod", "name": "p"},
            "eventTime": "2024-05-01T10:00:02.123456Z",
            "series": {"count": 5, "lastObservedTime": "2024-05-01T10:01:00.000000Z"},
            "reportingComponent": "kubelet",
        }
    )
    assert (e.type, e.count, e.source, e.object_kind) == ("Warning", 5, "kubelet", "Pod")
    assert e.first_timestamp == parse_time("2024-05-01T10:00:02.123456Z")
    assert e.last_timestamp == parse_time("2024-05-01T10:01:00Z")
