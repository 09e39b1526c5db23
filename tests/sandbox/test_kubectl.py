"""Fidelity of the sandbox, judged by the real kubectl (the dispatcher picks the kubectl that
matches the server's /version)."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.support.sandbox_proc import RunningSandbox
from tests.support.waiting import wait_until


def kc(sb: RunningSandbox, *args: str, check: bool = True, timeout: float = 60) -> str:
    proc = subprocess.run(
        ["kubectl", *args], env=sb.env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout + proc.stderr if not check else proc.stdout


def kc_json(sb: RunningSandbox, *args: str) -> Any:
    return json.loads(kc(sb, *args, "-o", "json"))


def test_get_lists_the_platform(sandbox: RunningSandbox, kubectl: str) -> None:
    kc(sandbox, "rollout", "status", "deployment/auth-service", "--timeout=30s")
    out = kc(sandbox, "get", "deployments,replicasets,pods")
    for svc in (
        "discovery-service",
        "auth-service",
        "user-service",
        "tweet-service",
        "gateway-service",
    ):
        assert f"deployment.apps/{svc}" in out
        assert f"replicaset.apps/{svc}-" in out
        assert f"pod/{svc}-" in out
    header = out.splitlines()[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    pods = kc_json(sandbox, "get", "pods", "-l", "app=auth-service")["items"]
    assert len(pods) == 3
    rs_names = {p["metadata"]["ownerReferences"][0]["name"] for p in pods}
    assert len(rs_names) == 1
    hash_label = pods[0]["metadata"]["labels"]["pod-template-hash"]
    assert rs_names.pop().endswith(hash_label)


def test_set_image_rollout_history_and_undo(sandbox: RunningSandbox, kubectl: str) -> None:
    kc(
        sandbox,
        "set",
        "image",
        "deployment/auth-service",
        "auth-service=bharathva/auth-service:1.1.0",
    )
    status = kc(sandbox, "rollout", "status", "deployment/auth-service", "--timeout=60s")
    assert 'deployment "auth-service" successfully rolled out' in status
    history = kc(sandbox, "rollout", "history", "deployment/auth-service")
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["1", "2"]
    d = kc_json(sandbox, "get", "deployment", "auth-service")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert d["status"]["updatedReplicas"] == 3 and d["status"]["availableReplicas"] == 3

    assert "rolled back" in kc(sandbox, "rollout", "undo", "deployment/auth-service")
    kc(sandbox, "rollout", "status", "deployment/auth-service", "--timeout=60s")
    image = kc(
        sandbox,
        "get",
        "deployment",
        "auth-service",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image == "bharathva/auth-service:1.0.0"
    history = kc(sandbox, "rollout", "history", "deployment/auth-service")
    # Revision 1's ReplicaSet is reused and becomes revision 3, as on a real cluster.
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["2", "3"]

    kc(sandbox, "rollout", "undo", "deployment/auth-service", "--to-revision=2")
    kc(sandbox, "rollout", "status", "deployment/auth-service", "--timeout=60s")
    image = kc(
        sandbox,
        "get",
        "deployment",
        "auth-service",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image == "bharathva/auth-service:1.1.0"
    skipped = kc(sandbox, "rollout", "undo", "deployment/auth-service", "--to-revision=4")
    assert "skipped rollback (current template already matches revision 4)" in skipped
    missing = kc(
        sandbox, "rollout", "undo", "deployment/auth-service", "--to-revision=99", check=False
    )
    assert "unable to find specified revision 99 in history" in missing


def test_pause_resume_and_scale(sandbox: RunningSandbox, kubectl: str) -> None:
    kc(
        sandbox,
        "set",
        "image",
        "deployment/user-service",
        "user-service=bharathva/user-service:1.2.0",
    )
    kc(sandbox, "rollout", "status", "deployment/user-service", "--timeout=60s")
    kc(sandbox, "rollout", "pause", "deployment/user-service")
    kc(
        sandbox,
        "set",
        "image",
        "deployment/user-service",
        "user-service=bharathva/user-service:1.3.0",
    )

    def seen() -> bool:
        # The controller has handled the new template: what it did (nothing) is final.
        d = kc_json(sandbox, "get", "deploy", "user-service")
        return bool(d["status"].get("observedGeneration", 0) >= d["metadata"]["generation"])

    wait_until(seen, 30, "the controller to observe the paused change", interval=0.2)
    rs = kc_json(sandbox, "get", "rs", "-l", "app=user-service")["items"]
    assert len(rs) == 2, "a paused deployment must not start a rollout"
    refused = kc(sandbox, "rollout", "undo", "deployment/user-service", check=False)
    assert "you cannot rollback a paused deployment" in refused
    cond = {
        c["type"]: c
        for c in kc_json(sandbox, "get", "deploy", "user-service")["status"]["conditions"]
    }
    assert cond["Progressing"]["reason"] == "DeploymentPaused"
    kc(sandbox, "rollout", "resume", "deployment/user-service")
    kc(sandbox, "rollout", "status", "deployment/user-service", "--timeout=60s")
    assert len(kc_json(sandbox, "get", "rs", "-l", "app=user-service")["items"]) == 3

    kc(sandbox, "scale", "deployment/user-service", "--replicas=4")
    kc(sandbox, "rollout", "status", "deployment/user-service", "--timeout=60s")
    d = kc_json(sandbox, "get", "deploy", "user-service")
    assert d["spec"]["replicas"] == 4 and d["status"]["readyReplicas"] == 4
    assert len(kc_json(sandbox, "get", "pods", "-l", "app=user-service")["items"]) == 4


def test_crash_tag_exceeds_progress_deadline(sandbox: RunningSandbox, kubectl: str) -> None:
    kc(sandbox, "patch", "deployment/tweet-service", "-p", '{"spec":{"progressDeadlineSeconds":3}}')
    kc(
        sandbox,
        "set",
        "image",
        "deployment/tweet-service",
        "tweet-service=bharathva/tweet-service:2.0.0-crash",
    )
    proc = subprocess.run(
        ["kubectl", "rollout", "status", "deployment/tweet-service", "--timeout=60s"],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode != 0
    assert 'deployment "tweet-service" exceeded its progress deadline' in proc.stderr
    # The crashing pod cycles: Running a moment, Error, CrashLoopBackOff. Whatever the moment,
    # it has restarted, is not ready, and its last run ended with exit code 1.
    crashing = [
        p
        for p in kc_json(sandbox, "get", "pods", "-l", "app=tweet-service")["items"]
        if p["spec"]["containers"][0]["image"].endswith("-crash")
    ]
    assert crashing
    cs = crashing[0]["status"]["containerStatuses"][0]
    assert cs["restartCount"] >= 1 and not cs["ready"]
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    # The old ReplicaSet keeps serving: maxUnavailable 25% of 2 rounds down to 0.
    d = kc_json(sandbox, "get", "deploy", "tweet-service")
    assert d["status"]["availableReplicas"] == 2
    previous = kc(
        sandbox,
        "logs",
        "-l",
        "app=tweet-service,pod-template-hash=" + _newest_hash(sandbox, "tweet-service"),
        "--previous",
        "--tail=50",
    )
    assert "APPLICATION FAILED TO START" in previous or "Application run failed" in previous


def _newest_hash(sb: RunningSandbox, app: str) -> str:
    rs = kc_json(sb, "get", "rs", "-l", f"app={app}")["items"]
    newest = max(
        rs, key=lambda r: int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    )
    return str(newest["metadata"]["labels"]["pod-template-hash"])


def test_logs_tail_and_follow(sandbox: RunningSandbox, kubectl: str) -> None:
    kc(sandbox, "rollout", "status", "deployment/auth-service", "--timeout=30s")

    def tail() -> list[str]:
        out = kc(sandbox, "logs", "deployment/auth-service", "--tail=20")
        return [ln for ln in out.splitlines() if ln.strip()]

    lines = wait_until(tail, 30, "auth-service to log", interval=0.2)
    assert 0 < len(lines) <= 20
    assert any(" INFO " in ln or "WARN" in ln for ln in lines)
    stamped = kc(sandbox, "logs", "deployment/auth-service", "--tail=3", "--timestamps")
    assert all(ln[:4].isdigit() and "Z " in ln[:40] for ln in stamped.splitlines() if ln)

    proc = subprocess.Popen(
        ["kubectl", "logs", "-f", "deployment/gateway-service", "--tail=1"],
        env=sandbox.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        started = time.monotonic()
        more = [proc.stdout.readline() for _ in range(3)]
        assert first and all(more), "follow must keep streaming new lines"
        assert time.monotonic() - started < 20
    finally:
        proc.kill()
        proc.wait()


def test_watch_streams_changes(sandbox: RunningSandbox, kubectl: str) -> None:
    proc = subprocess.Popen(
        ["kubectl", "get", "deployments", "--watch", "-o", "name"],
        env=sandbox.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        initial = {proc.stdout.readline().strip() for _ in range(5)}
        assert "deployment.apps/gateway-service" in initial
        kc(sandbox, "scale", "deployment/discovery-service", "--replicas=3")
        # Other deployments may still report status changes; the scaled one must follow.
        seen = [proc.stdout.readline().strip() for _ in range(1)]
        while "deployment.apps/discovery-service" not in seen and len(seen) < 30:
            seen.append(proc.stdout.readline().strip())
        assert "deployment.apps/discovery-service" in seen
    finally:
        proc.kill()
        proc.wait()


def test_events_and_describe(sandbox: RunningSandbox, kubectl: str) -> None:
    kc(sandbox, "rollout", "status", "deployment/gateway-service", "--timeout=30s")
    events = kc(
        sandbox,
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Deployment,involvedObject.name=gateway-service",
    )
    assert "ScalingReplicaSet" in events
    assert "Scaled up replica set gateway-service-" in events
    described = kc(sandbox, "describe", "deployment", "gateway-service")
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in described
    assert "NewReplicaSetAvailable" in described


def test_create_and_delete_deployment_and_lease(sandbox: RunningSandbox, kubectl: str) -> None:
    out = kc(
        sandbox, "create", "deployment", "scratch", "--image=bharathva/scratch:1.0", "--replicas=2"
    )
    assert "deployment.apps/scratch created" in out
    kc(sandbox, "rollout", "status", "deployment/scratch", "--timeout=60s")
    kc(sandbox, "delete", "deployment", "scratch")
    wait_until(
        lambda: not kc_json(sandbox, "get", "pods", "-l", "app=scratch")["items"],
        10,
        "the scratch pods to go",
        interval=0.2,
    )
    assert not kc_json(sandbox, "get", "rs", "-l", "app=scratch")["items"]
    lease = kc_json(sandbox, "get", "leases")
    assert lease["items"] == []
