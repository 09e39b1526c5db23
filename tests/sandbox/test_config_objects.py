"""The sandbox's pieces behind HPAs, Secrets and ConfigMaps, without a server: the HPA status
rules, the env plan from the platform file's names, validation and autoscaling/v1
conversion."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from backends.sandbox.autoscalers import autoscaler_manifest, autoscaler_status
from backends.sandbox.config_objects import Invalid, prepare
from backends.sandbox.hpa_v1 import from_v1, to_v1
from backends.sandbox.podenv import plan_env


def deployment(replicas: int, current: int) -> dict[str, Any]:
    container = {"name": "app", "resources": {"requests": {"cpu": "500m"}}}
    return {
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
        "status": {"replicas": current},
    }


def reasons(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in status["conditions"]}


HPA = autoscaler_manifest("a-hpa", "ns", "a", 2, 10, 70)


def test_status_within_bounds_recommends_no_change() -> None:
    status = autoscaler_status(HPA, deployment(3, 3))
    assert (status["currentReplicas"], status["desiredReplicas"]) == (3, 3)
    assert reasons(status) == {
        "AbleToScale": "ReadyForNewScale",
        "ScalingActive": "ValidMetricFound",
        "ScalingLimited": "DesiredWithinRange",
    }
    current = status["currentMetrics"][0]["resource"]["current"]
    assert current == {"averageUtilization": 70, "averageValue": "350m"}


@pytest.mark.parametrize(
    ("replicas", "desired", "reason"), [(1, 2, "TooFewReplicas"), (12, 10, "TooManyReplicas")]
)
def test_status_outside_bounds_is_limited(replicas: int, desired: int, reason: str) -> None:
    status = autoscaler_status(HPA, deployment(replicas, replicas))
    assert status["desiredReplicas"] == desired and status["currentReplicas"] == replicas
    assert reasons(status)["ScalingLimited"] == reason


def test_status_without_target_or_replicas() -> None:
    missing = autoscaler_status(HPA, None)
    assert (missing["currentReplicas"], missing["desiredReplicas"]) == (0, 0)
    assert reasons(missing) == {"AbleToScale": "FailedGetScale"}
    assert 'deployments/scale "a" not found' in missing["conditions"][0]["message"]
    zero = autoscaler_status(HPA, deployment(0, 0))
    assert reasons(zero)["ScalingActive"] == "ScalingDisabled"


def test_env_plan_from_the_platform_names() -> None:
    names = ("DB_URL", "DB_PASSWORD", "SMTP_HOST", "SMTP_PASSWORD", "LOG_A", "LOG_B", "EUREKA_X")
    plan = plan_env(names, 8081, "acme", "app")
    env = {e["name"]: e for e in plan.env}
    assert env["SERVER_PORT"] == {"name": "SERVER_PORT", "value": "8081"}
    assert env["DB_URL"]["valueFrom"] == {"secretKeyRef": {"name": "acme-db", "key": "db-url"}}
    assert env["SMTP_HOST"]["valueFrom"]["configMapKeyRef"]["name"] == "acme-smtp"
    assert "value" in env["EUREKA_X"]
    assert plan.env_from == [{"configMapRef": {"name": "acme-log"}}]
    assert set(plan.secrets) == {"acme-db", "acme-smtp"}
    assert set(plan.secrets["acme-db"]) == {"db-url", "db-password"}
    assert set(plan.config_maps["acme-log"]) == {"LOG_A", "LOG_B"}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_secret_string_data_is_encoded_and_bad_input_refused() -> None:
    secret: dict[str, Any] = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    prepare("secrets", secret)
    assert secret == {"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}
    assert base64.b64decode(secret["data"]["k"]) == b"v"
    with pytest.raises(Invalid) as info:
        prepare("secrets", {"metadata": {"name": "s"}, "data": {"k": "not base64!"}})
    assert info.value.code == 400 and "illegal base64 data" in info.value.message
    with pytest.raises(Invalid) as info:
        prepare("configmaps", {"metadata": {"name": "c"}, "data": {"bad/key": "x"}})
    assert (
        info.value.code == 422 and 'ConfigMap "c" is invalid: data[bad/key]' in info.value.message
    )


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"maxReplicas": 3}, "spec.scaleTargetRef.kind: Required value"),
        ({"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "minReplicas": 0,
          "maxReplicas": 3}, "spec.minReplicas: Invalid value: 0"),
        ({"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "minReplicas": 4,
          "maxReplicas": 3}, "spec.maxReplicas: Invalid value: 3"),
    ],
)  # fmt: skip
def test_autoscaler_validation(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(Invalid) as info:
        prepare("horizontalpodautoscalers", {"metadata": {"name": "h"}, "spec": spec})
    assert problem in info.value.message


def test_autoscaler_defaults_and_v1_round_trip() -> None:
    hpa: dict[str, Any] = {
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 3},
    }
    prepare("horizontalpodautoscalers", hpa)
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    v1 = to_v1(hpa)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 80 and "metrics" not in v1["spec"]
    back = from_v1(v1)
    assert back["spec"]["metrics"] == hpa["spec"]["metrics"]
