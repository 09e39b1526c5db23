"""The sandbox's HorizontalPodAutoscalers, Secrets and ConfigMaps, judged by the real kubectl:
what the platform file seeds, and kubectl's create/get/describe/patch/apply/delete on them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.sandbox.test_kubectl import kc, kc_json
from tests.support.sandbox_proc import RunningSandbox
from tests.support.waiting import wait_until

SERVICES = ("discovery-service", "auth-service", "user-service", "tweet-service", "gateway-service")

HPA_YAML = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: auth-service
  minReplicas: {lo}
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 60
"""


def hpa_status(sb: RunningSandbox, name: str) -> dict[str, object]:
    status: dict[str, object] = kc_json(sb, "get", "hpa", name)["status"]
    return status


def test_seeded_autoscalers_follow_their_deployments(sandbox: RunningSandbox, kubectl: str) -> None:
    out = kc(sandbox, "get", "hpa")
    assert out.splitlines()[0].split() == [
        "NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE",
    ]  # fmt: skip
    for svc in SERVICES:
        assert f"{svc}-hpa" in out and f"Deployment/{svc}" in out
    hpa = kc_json(sandbox, "get", "hpa", "auth-service-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    # The seed guide's HPA: 2..10 replicas at 70% CPU.
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    metric = hpa["spec"]["metrics"][0]["resource"]
    assert metric == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}

    kc(sandbox, "rollout", "status", "deployment/auth-service", "--timeout=30s")
    wait_until(
        lambda: hpa_status(sandbox, "auth-service-hpa").get("currentReplicas") == 3,
        10,
        "the HPA to count auth-service's 3 replicas",
        interval=0.2,
    )
    assert hpa_status(sandbox, "auth-service-hpa")["desiredReplicas"] == 3
    kc(sandbox, "scale", "deployment/auth-service", "--replicas=12")
    wait_until(
        lambda: hpa_status(sandbox, "auth-service-hpa").get("desiredReplicas") == 10,
        10,
        "the HPA to hold the desired count at maxReplicas",
        interval=0.2,
    )
    described = kc(sandbox, "describe", "hpa", "auth-service-hpa")
    assert "Reference:" in described and "Deployment/auth-service" in described
    assert "Min replicas:" in described and "Max replicas:" in described
    assert "resource cpu on pods  (as a percentage of request):  70% (175m) / 70%" in described
    assert "TooManyReplicas" in described

    kc(sandbox, "delete", "deployment", "auth-service")
    wait_until(
        lambda: hpa_status(sandbox, "auth-service-hpa").get("desiredReplicas") == 0,
        10,
        "the HPA to lose its target",
        interval=0.2,
    )
    conditions = hpa_status(sandbox, "auth-service-hpa")["conditions"]
    assert isinstance(conditions, list)
    assert conditions[0]["reason"] == "FailedGetScale"


def test_autoscale_apply_patch_and_delete(
    sandbox: RunningSandbox, kubectl: str, tmp_path: Path
) -> None:
    out = kc(
        sandbox, "autoscale", "deployment", "user-service", "--min=3", "--max=6",
        "--cpu-percent=50", "--name=user-extra",
    )  # fmt: skip
    assert "horizontalpodautoscaler.autoscaling/user-extra autoscaled" in out
    hpa = kc_json(sandbox, "get", "hpa", "user-extra")
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    # user-service runs 2: below minReplicas, which the status says (the sandbox never scales).
    wait_until(
        lambda: hpa_status(sandbox, "user-extra").get("desiredReplicas") == 3,
        10,
        "the new HPA's status",
        interval=0.2,
    )
    assert "TooFewReplicas" in kc(sandbox, "describe", "hpa", "user-extra")

    manifest = tmp_path / "hpa.yaml"
    manifest.write_text(HPA_YAML.format(name="applied", lo=2))
    assert "created" in kc(sandbox, "apply", "-f", str(manifest))
    manifest.write_text(HPA_YAML.format(name="applied", lo=4))
    assert "configured" in kc(sandbox, "apply", "-f", str(manifest))
    assert kc_json(sandbox, "get", "hpa", "applied")["spec"]["minReplicas"] == 4

    patch = json.dumps({"spec": {"maxReplicas": 8}})
    kc(sandbox, "patch", "hpa", "applied", "-p", patch)
    assert kc_json(sandbox, "get", "hpa", "applied")["spec"]["maxReplicas"] == 8
    bad = kc(sandbox, "patch", "hpa", "applied", "-p", '{"spec":{"maxReplicas":1}}', check=False)
    assert "spec.maxReplicas: Invalid value: 1" in bad

    for name in ("user-extra", "applied"):
        assert f'"{name}" deleted' in kc(sandbox, "delete", "hpa", name)
    assert "user-extra" not in kc(sandbox, "get", "hpa")


def decoded(sb: RunningSandbox, name: str) -> dict[str, str]:
    data = kc_json(sb, "get", "secret", name).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_seeded_secrets_and_config_maps(sandbox: RunningSandbox, kubectl: str) -> None:
    out = kc(sandbox, "get", "secrets")
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert "bharathva-db" in out and "bharathva-jwt" in out
    assert set(decoded(sandbox, "bharathva-db")) == {"db-url", "db-username", "db-password"}
    assert set(decoded(sandbox, "bharathva-jwt")) == {"jwt-secret"}
    cm = kc_json(sandbox, "get", "configmap", "bharathva-logging")
    assert set(cm["data"]) == {"LOGGING_LEVEL_ROOT", "LOGGING_LEVEL_COM_BHARATHVA"}
    # Every Secret and ConfigMap a pod template names exists, with the keys it names.
    for svc in SERVICES:
        dep = kc_json(sandbox, "get", "deployment", svc)
        container = dep["spec"]["template"]["spec"]["containers"][0]
        for var in container.get("env") or []:
            for kind, plural in (("secretKeyRef", "secret"), ("configMapKeyRef", "configmap")):
                ref = (var.get("valueFrom") or {}).get(kind)
                if ref:
                    obj = kc_json(sandbox, "get", plural, ref["name"])
                    assert ref["key"] in obj["data"], (svc, var["name"])
        for src in container.get("envFrom") or []:
            kc_json(sandbox, "get", "configmap", src["configMapRef"]["name"])
    described = kc(sandbox, "describe", "secret", "bharathva-db")
    assert "Type:  Opaque" in described and "db-password:" in described and "bytes" in described
    assert decoded(sandbox, "bharathva-db")["db-password"] not in described


def test_secret_and_config_map_lifecycle(sandbox: RunningSandbox, kubectl: str) -> None:
    out = kc(
        sandbox, "create", "secret", "generic", "scratch",
        "--from-literal=api-key=hunter2", "--from-literal=token=t0k3n",
    )  # fmt: skip
    assert "secret/scratch created" in out
    raw = kc_json(sandbox, "get", "secret", "scratch")
    assert raw["type"] == "Opaque"
    assert raw["data"]["api-key"] == base64.b64encode(b"hunter2").decode()
    assert decoded(sandbox, "scratch") == {"api-key": "hunter2", "token": "t0k3n"}
    described = kc(sandbox, "describe", "secret", "scratch")
    assert "api-key:  7 bytes" in described and "hunter2" not in described

    remove = json.dumps([{"op": "remove", "path": "/data/api-key"}])
    kc(sandbox, "patch", "secret", "scratch", "--type=json", "-p", remove)
    assert set(decoded(sandbox, "scratch")) == {"token"}
    kc(sandbox, "patch", "secret", "scratch", "-p", '{"stringData":{"extra":"plain"}}')
    assert decoded(sandbox, "scratch") == {"token": "t0k3n", "extra": "plain"}
    assert "stringData" not in kc_json(sandbox, "get", "secret", "scratch")
    bad = kc(sandbox, "patch", "secret", "scratch", "-p", '{"data":{"x":"%%%"}}', check=False)
    assert "illegal base64 data" in bad
    bad = kc(sandbox, "patch", "secret", "scratch", "-p", '{"data":{"a b":"eA=="}}', check=False)
    assert "a valid config key must consist of alphanumeric characters" in bad

    kc(sandbox, "create", "configmap", "scratch-cm", "--from-literal=A=1", "--from-literal=B=2")
    assert kc(sandbox, "get", "cm", "scratch-cm").splitlines()[1].split()[1] == "2"
    assert "A:\n----\n1" in kc(sandbox, "describe", "configmap", "scratch-cm")
    kc(sandbox, "patch", "configmap", "scratch-cm", "--type=merge", "-p", '{"data":{"A":null}}')
    assert kc_json(sandbox, "get", "configmap", "scratch-cm")["data"] == {"B": "2"}

    assert 'secret "scratch" deleted' in kc(sandbox, "delete", "secret", "scratch")
    assert 'configmap "scratch-cm" deleted' in kc(sandbox, "delete", "cm", "scratch-cm")
    gone = kc(sandbox, "get", "secret", "scratch", check=False)
    assert 'secrets "scratch" not found' in gone
