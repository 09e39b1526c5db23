"""`bva scale SERVICE REPLICAS`: up and down on a real sandbox checked with real `kubectl`,
the refusals (read-only, the release lock, a canary) that send nothing, the confirmation
rules (production, scaling to 0), the journal, and exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from backends.config.loader import builtin_platform_path
from backends.journal.store import Journal
from backends.kube.release_objects import canary_manifest, lease_body
from backends.models import LockRecord
from backends.release.plan import A_OWNER, A_RELEASE, A_VERSION
from tests.cli.test_rollback_cli import bva, bva_typing, kubectl
from tests.support.sandbox_proc import RunningSandbox
from tui.cli_scale import needs_confirmation

USER = "user-service"


def replicas(sandbox: RunningSandbox, name: str = USER) -> tuple[int, int]:
    """(spec.replicas, status.readyReplicas) as kubectl reads them."""
    text = kubectl(
        sandbox,
        "get",
        "deployment",
        name,
        "-o",
        "jsonpath={.spec.replicas} {.status.readyReplicas}",
    )
    spec, _, ready = text.partition(" ")
    return int(spec), int(ready or 0)


def ready_pods(sandbox: RunningSandbox, service: str = USER) -> list[str]:
    text = kubectl(
        sandbox, "get", "pods", "-l", f"app={service},track=stable", "-o",
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
    )  # fmt: skip
    return [line for line in text.splitlines() if line.strip()]


def journal_env(sandbox: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    return {**sandbox.env, "BVA_JOURNAL_DIR": str(tmp_path / "journal")}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scale", "nope", "3", "--env", "sandbox"], "unknown service 'nope' (known: discovery"),
        (["scale", USER, "x", "--env", "sandbox"], "expected a replica count"),
        (["scale", USER, "-1", "--env", "sandbox"], "expected a replica count"),
        (["scale", USER, "2.5", "--env", "sandbox"], "expected a replica count"),
        (["scale", USER, "99999999999", "--env", "sandbox"], "replica count too large"),
        (["scale", USER, "--env", "sandbox"], "the following arguments are required: REPLICAS"),
        (["scale", USER, "3", "--timeout", "0", "--env", "sandbox"], "must be greater than 0"),
        (["scale", USER, "3", "--bogus"], "unrecognized arguments: --bogus"),
        (["scale", USER, "3", "--sandbox"], "start `bva sandbox`"),
        (["scale", USER, "3", "--env", "nowhere"], "nowhere"),
        # Confirmation needed and no terminal to ask on: refused before anything is read.
        (["scale", USER, "0", "--env", "sandbox"], "to 0 without --yes on a non-interactive"),
        (["scale", USER, "4"], "in production without --yes on a non-interactive terminal"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path), "BVA_JOURNAL_DIR": str(tmp_path)}
    out = bva(*args, env=env, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert needle in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "sandbox.jsonl").exists()


def test_confirmation_rule() -> None:
    assert needs_confirmation(production=True, replicas=3)
    assert needs_confirmation(production=False, replicas=0)
    assert not needs_confirmation(production=False, replicas=3)


def test_scale_up_and_down_with_kubectl_checking(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = journal_env(sandbox, tmp_path)
    kubectl(sandbox, "rollout", "status", f"deployment/{USER}", "--timeout=60s")
    assert replicas(sandbox) == (2, 2)

    up = bva("scale", USER, "3", "--env", "sandbox", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "scale deployment/user-service from 2 to 3 replicas in sandbox" in up.stdout
    assert "deployment/user-service scaled from 2 to 3 replicas" in up.stdout
    assert "✔ deployment/user-service: 3 of 3 replicas ready in" in up.stdout
    # Waited: by the time it exits, kubectl sees three ready pods.
    assert replicas(sandbox) == (3, 3)
    assert ready_pods(sandbox) == ["True"] * 3

    same = bva("scale", USER, "3", "--env", "sandbox", env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "already has 3 replicas in sandbox: nothing to change" in same.stdout

    down = bva("scale", USER, "1", "--env", "sandbox", "--no-wait", env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "scale deployment/user-service from 3 to 1 replica in sandbox" in down.stdout
    # Below the autoscaler's minimum: said, not refused.
    assert "horizontalpodautoscaler/user-service-hpa keeps deployment/user-service between 2 " in (
        down.stdout
    )
    assert "✔" not in down.stdout  # --no-wait: scaled, not waited for
    kubectl(sandbox, "rollout", "status", f"deployment/{USER}", "--timeout=60s")
    assert replicas(sandbox) == (1, 1)

    # To 0: a warning that it will serve nothing, and the typed confirmation on a terminal.
    mutations = sandbox.stats()["mutations"]
    wrong = bva_typing("scale", USER, "0", "--env", "sandbox", typed=USER, env=env)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "will serve nothing" in wrong.stdout
    assert f"type {USER}@sandbox to scale:" in wrong.stdout
    assert "not confirmed; nothing was changed" in wrong.stderr
    assert sandbox.stats()["mutations"] == mutations
    assert replicas(sandbox) == (1, 1)

    zero = bva_typing("scale", USER, "0", "--env", "sandbox", typed=f"{USER}@sandbox", env=env)
    assert zero.returncode == 0, zero.stdout + zero.stderr
    assert "✔ deployment/user-service: no replica left in" in zero.stdout
    assert kubectl(sandbox, "get", "deployment", USER, "-o", "jsonpath={.spec.replicas}") == "0"
    assert ready_pods(sandbox) == []

    back = bva("scale", USER, "2", "--env", "sandbox", env=env)
    assert back.returncode == 0, back.stdout + back.stderr
    assert replicas(sandbox) == (2, 2)

    journal_file = tmp_path / "journal" / "sandbox.jsonl"
    assert f"journal: {journal_file}" in back.stdout
    journal = Journal(journal_file, "sandbox")
    assert journal.verify().ok
    records = list(journal.records())
    # Four changes (3, 1, 0, 2), each before and after; "nothing to change" is not one.
    assert [r.stage for r in records] == ["before", "after"] * 4
    assert {r.action for r in records} == {"scale"}
    assert {r.target for r in records} == {f"{USER}@sandbox"}
    afters = [r for r in records if r.stage == "after"]
    assert [(r.details["from"], r.details["to"]) for r in afters] == [
        (2, 3),
        (3, 1),
        (1, 0),
        (0, 2),
    ]
    assert all(r.result == "ok" and r.actor for r in afters)
    assert afters[0].details["outcome"].startswith("3 of 3 replicas ready in")
    assert afters[1].details["outcome"] == "scaled (not waited for)"


def test_not_ready_in_time_or_failed_is_exit_1(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = journal_env(sandbox, tmp_path)
    kubectl(sandbox, "rollout", "status", f"deployment/{USER}", "--timeout=60s")
    # A short deadline, so that the rollout fails within the test's time, not in minutes.
    kubectl(sandbox, "patch", f"deployment/{USER}", "-p", '{"spec":{"progressDeadlineSeconds":6}}')
    # A crash-looping image: its pods never get ready, so the count is never reached.
    kubectl(sandbox, "set", "image", f"deployment/{USER}", f"{USER}=bharathva/{USER}:2.0.0-crash")
    late = bva("scale", USER, "3", "--env", "sandbox", "--timeout", "2", env=env)
    assert late.returncode == 1, late.stdout + late.stderr
    assert "deployment/user-service scaled from 2 to 3 replicas" in late.stdout
    assert "of 3 replicas ready after 2s: Waiting for deployment" in late.stdout
    assert kubectl(sandbox, "get", "deployment", USER, "-o", "jsonpath={.spec.replicas}") == "3"
    after = list(Journal(tmp_path / "journal" / "sandbox.jsonl", "sandbox").records())[-1]
    assert after.stage == "after" and after.result.startswith("not ready: ")
    assert "replicas ready after 2s" in after.result

    # Once the rollout has failed (ProgressDeadlineExceeded) the wait ends, without the timeout.
    began = time.monotonic()
    failed = bva("scale", USER, "2", "--env", "sandbox", "--timeout", "300", env=env, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert time.monotonic() - began < 120
    assert (
        'the rollout failed: deployment "user-service" exceeded its progress deadline'
        in failed.stdout
    )


def test_read_only_lock_and_canary_refuse_and_send_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = journal_env(sandbox, tmp_path)
    kubectl(sandbox, "rollout", "status", f"deployment/{USER}", "--timeout=60s")
    mutations = sandbox.stats()["mutations"]

    read_only = bva("scale", USER, "5", "--env", "sandbox", "--read-only", "--yes", env=env)
    assert read_only.returncode == 1, read_only.stdout + read_only.stderr
    assert read_only.stderr.strip() == (
        "bva: read-only: refusing to scale deployment/user-service in sandbox; nothing was sent"
    )
    assert read_only.stdout == ""
    assert sandbox.stats()["mutations"] == mutations
    assert replicas(sandbox) == (2, 2)

    # A live release lock (another engineer's release): refused, naming the holder.
    now = time.time()
    lock = LockRecord("alice@laptop pid 42 #abc123", "r-20990101-x", now, now, 300)
    kubectl_stdin(sandbox, json.dumps(lease_body(lock)), "create", "-f", "-")
    mutations = sandbox.stats()["mutations"]
    held = bva("scale", USER, "3", "--env", "sandbox", "--yes", env=env)
    assert held.returncode == 1, held.stdout + held.stderr
    assert "refused: release lock held by alice@laptop pid 42 #abc123 since" in held.stderr
    assert "(release r-20990101-x, active)" in held.stderr
    assert len(held.stderr.strip().splitlines()) == 1
    assert sandbox.stats()["mutations"] == mutations
    kubectl(sandbox, "delete", "lease", "bva-release")

    # A canary of the service (a release whose driver is gone): refused, naming the release.
    stable = json.loads(kubectl(sandbox, "get", "deployment", USER, "-o", "json"))
    marks = {A_RELEASE: "r-canary-1", A_VERSION: "1.1.0", A_OWNER: "bob@desk"}
    body = canary_manifest(
        stable, f"{USER}-canary", USER, USER, f"bharathva/{USER}:1.1.0", 1, marks
    )
    kubectl_stdin(sandbox, json.dumps(body), "create", "-f", "-")
    mutations = sandbox.stats()["mutations"]
    canary = bva("scale", USER, "3", "--env", "sandbox", "--yes", env=env)
    assert canary.returncode == 1, canary.stdout + canary.stderr
    assert (
        "refused: user-service has a canary (user-service-canary) of release r-canary-1 "
        "(1.1.0, by bob@desk): promote or abort that release first"
    ) in canary.stderr
    assert sandbox.stats()["mutations"] == mutations
    assert replicas(sandbox) == (2, 2)
    # Another service is not held up by it.
    other = bva("scale", "tweet-service", "3", "--env", "sandbox", "--yes", env=env)
    assert other.returncode == 0, other.stdout + other.stderr
    journal = Journal(tmp_path / "journal" / "sandbox.jsonl", "sandbox")
    assert {r.target for r in journal.records()} == {"tweet-service@sandbox"}


def test_production_needs_the_typed_confirmation(sandbox: RunningSandbox, tmp_path: Path) -> None:
    # The built-in platform file with its production environment pointed at the sandbox.
    text = builtin_platform_path().read_text()
    assert 'context = "bharathva-prod"' in text
    config = tmp_path / "bva.toml"
    config.write_text(
        text.replace('context = "bharathva-prod"', f'kubeconfig = "{sandbox.kubeconfig}"')
    )
    env = {**journal_env(sandbox, tmp_path), "BVA_CONFIG": str(config)}
    kubectl(sandbox, "rollout", "status", f"deployment/{USER}", "--timeout=60s")

    no_tty = bva("scale", USER, "3", env=env)  # production is the default environment
    assert no_tty.returncode == 2, no_tty.stdout + no_tty.stderr
    assert "in production without --yes" in no_tty.stderr

    mutations = sandbox.stats()["mutations"]
    wrong = bva_typing("scale", USER, "3", typed="production", env=env)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "scale deployment/user-service from 2 to 3 replicas in production (PRODUCTION)" in (
        wrong.stdout
    )
    assert f"type {USER}@production to scale:" in wrong.stdout
    assert sandbox.stats()["mutations"] == mutations

    typed = bva_typing("scale", USER, "3", typed=f"{USER}@production", env=env)
    assert typed.returncode == 0, typed.stdout + typed.stderr
    assert replicas(sandbox) == (3, 3)

    yes = bva("scale", USER, "2", "--yes", env=env)
    assert yes.returncode == 0, yes.stdout + yes.stderr
    assert replicas(sandbox) == (2, 2)
    records = list(Journal(tmp_path / "journal" / "production.jsonl", "production").records())
    assert [(r.stage, r.target) for r in records] == [
        ("before", f"{USER}@production"),
        ("after", f"{USER}@production"),
    ] * 2


def kubectl_stdin(sandbox: RunningSandbox, stdin: str, *args: str) -> str:
    done = subprocess.run(
        ["kubectl", "-n", sandbox.namespace, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=sandbox.env,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
