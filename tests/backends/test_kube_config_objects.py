"""API JSON -> Autoscaler / EnvRef / keys: the pure conversions behind the checklist reads."""

from __future__ import annotations

from typing import Any

import pytest

from backends.errors import BvaError
from backends.kube.config_objects import (
    autoscaler_from,
    data_keys,
    env_refs,
    metric_description,
)
from backends.models import EnvRef


def target(**kw: Any) -> dict[str, Any]:
    return dict(kw)


@pytest.mark.parametrize(
    ("metric", "text"),
    [
        (
            {"type": "Resource", "resource": {"name": "cpu", "target": target(
                type="Utilization", averageUtilization=70)}},
            "cpu 70% utilization",
        ),
        (
            {"type": "Resource", "resource": {"name": "memory", "target": target(
                type="AverageValue", averageValue="512Mi")}},
            "memory 512Mi average value",
        ),
        (
            {"type": "ContainerResource", "containerResource": {
                "name": "cpu", "container": "app",
                "target": target(type="Utilization", averageUtilization=60)}},
            "cpu 60% utilization (container app)",
        ),
        (
            {"type": "Pods", "pods": {"metric": {"name": "http_requests"},
                                      "target": target(type="AverageValue", averageValue="1k")}},
            "pods http_requests 1k average value",
        ),
        (
            {"type": "Object", "object": {
                "metric": {"name": "requests-per-second"},
                "describedObject": {"kind": "Ingress", "name": "main"},
                "target": target(type="Value", value="10k")}},
            "object requests-per-second on Ingress/main 10k value",
        ),
        (
            {"type": "External", "external": {"metric": {"name": "queue_messages"},
                                              "target": target(type="Value", value="30")}},
            "external queue_messages 30 value",
        ),
        ({"type": "Future"}, "Future metric"),
    ],
)  # fmt: skip
def test_metric_descriptions(metric: dict[str, Any], text: str) -> None:
    assert metric_description(metric) == text


def test_autoscaler_from_defaults_and_conditions() -> None:
    hpa = autoscaler_from(
        {
            "metadata": {"name": "a-hpa"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 4},
            "status": {
                "currentReplicas": 2,
                "desiredReplicas": 3,
                "conditions": [
                    {
                        "type": "ScalingActive",
                        "status": "False",
                        "reason": "FailedGetResourceMetric",
                        "lastTransitionTime": "2025-01-01T00:00:00Z",
                    }
                ],
            },
        }
    )
    assert (hpa.min_replicas, hpa.max_replicas) == (1, 4)  # the server's default minimum
    assert (hpa.current_replicas, hpa.desired_replicas) == (2, 3)
    assert hpa.metrics == ()
    active = hpa.condition("ScalingActive")
    assert active is not None and active.reason == "FailedGetResourceMetric"
    assert active.last_update == 1735689600.0
    assert autoscaler_from({}).name == ""  # garbage in, no crash


def test_env_refs_keep_names_and_sources_never_values() -> None:
    deployment = {
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "init", "env": [{"name": "X", "value": "1"}]}],
                    "containers": [
                        {
                            "name": "app",
                            "envFrom": [
                                {"prefix": "SMTP_",
                                 "secretRef": {"name": "smtp", "optional": True}},
                                {"configMapRef": {"name": "logging"}},
                            ],
                            "env": [
                                {"name": "API_TOKEN", "value": "inline-s3cr3t"},
                                {"name": "EMPTY"},
                                {"name": "DB", "valueFrom": {"secretKeyRef": {
                                    "name": "db", "key": "url", "optional": True}}},
                                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {
                                    "name": "cfg", "key": "level"}}},
                                {"name": "NODE", "valueFrom": {"fieldRef": {
                                    "fieldPath": "spec.nodeName"}}},
                                {"name": "CPU", "valueFrom": {"resourceFieldRef": {
                                    "resource": "limits.cpu"}}},
                                {"name": "FILE", "valueFrom": {"fileKeyRef": {"path": "x"}}},
                            ],
                        },
                        {"name": "sidecar"},
                    ],
                }
            }
        }
    }  # fmt: skip
    refs = env_refs(deployment)
    assert refs == [
        EnvRef("app", "SMTP_*", "secret", "smtp", optional=True),
        EnvRef("app", "*", "configmap", "logging"),
        EnvRef("app", "API_TOKEN", "literal"),
        EnvRef("app", "EMPTY", "literal"),
        EnvRef("app", "DB", "secret", "db", "url", optional=True),
        EnvRef("app", "LEVEL", "configmap", "cfg", "level"),
        EnvRef("app", "NODE", "field", "spec.nodeName"),
        EnvRef("app", "CPU", "resource", "limits.cpu"),
        EnvRef("app", "FILE", "field", "fileKeyRef"),
    ]
    assert refs[0].whole and refs[1].whole and not refs[2].whole
    assert "inline-s3cr3t" not in repr(refs)
    assert env_refs({}) == []


class FakeResponse:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.released = False

    def release_conn(self) -> None:
        self.released = True


def test_data_keys_reads_keys_only() -> None:
    body = b'{"kind":"Secret","data":{"password":"czNjcjN0","token":"dDBr"}}'
    response = FakeResponse(body)
    assert data_keys(response, "secret x") == frozenset({"password", "token"})
    assert response.released
    assert data_keys(FakeResponse(b'{"kind":"Secret"}'), "secret x") == frozenset()


def test_data_keys_error_carries_no_value() -> None:
    response = FakeResponse(b'{"data":{"password":"s3cr3t-value"')  # cut short
    with pytest.raises(BvaError) as info:
        data_keys(response, "secret db")
    assert str(info.value) == "unreadable answer from the Kubernetes API for secret db"
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert response.released
