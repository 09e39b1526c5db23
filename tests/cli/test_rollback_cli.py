"""`bva rollback`: the plan as text (diff, masked secrets, what is NOT rolled back), the
confirmation rules, and exit codes 0/1/2, through a real process on a real sandbox."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from backends.journal.store import Journal
from tests.support.sandbox_proc import RunningSandbox

AUTH = "auth-service"


def bva(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def bva_typing(
    *args: str, typed: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """bva with a terminal on stdin (so it asks), answering ``typed`` to the prompt."""
    main, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", *args],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        os.write(main, (typed + "\n").encode())
        out, err = proc.communicate(timeout=timeout)
    finally:
        os.close(main)
        os.close(secondary)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kubectl(sandbox: RunningSandbox, *args: str) -> str:
    done = subprocess.run(
        ["kubectl", "-n", sandbox.namespace, *args],
        capture_output=True,
        text=True,
        env=sandbox.env,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["rollback", "nope", "--yes"], "unknown service 'nope'"),
        (["rollback", AUTH, "--to-revision", "x", "--yes"], "expected a revision number"),
        (["rollback", AUTH, "--to-revision", "-1", "--yes"], "expected a revision number"),
        (["rollback", "--yes"], "the following arguments are required: SERVICE"),
        (["rollback", AUTH, "--bogus"], "unrecognized arguments: --bogus"),
        (["rollback", AUTH], "without --yes on a non-interactive terminal"),
        (["rollback", AUTH, "--sandbox", "--yes"], "start `bva sandbox`"),
        (["rollback", AUTH, "--env", "nowhere", "--yes"], "nowhere"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path), "BVA_JOURNAL_DIR": str(tmp_path)}
    out = bva(*args, env=env, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert needle in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_plan_confirm_execute_and_exit_codes(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = {**sandbox.env, "BVA_JOURNAL_DIR": str(tmp_path / "journal")}
    kubectl(sandbox, "rollout", "status", f"deployment/{AUTH}", "--timeout=60s")
    # One bad release: a new image that serves errors, and a token pasted into the env.
    change = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": AUTH,
                            "image": f"bharathva/{AUTH}:1.1.0-unhealthy",
                            "env": [
                                {"name": "API_TOKEN", "value": "s3cr3t-value"},
                                {"name": "SERVER_PORT", "value": "9999"},
                            ],
                        }
                    ]
                }
            }
        }
    }
    kubectl(sandbox, "patch", "deployment", AUTH, "-p", json.dumps(change))
    kubectl(sandbox, "rollout", "status", f"deployment/{AUTH}", "--timeout=60s")

    mutations = sandbox.stats()["mutations"]
    dry = bva("rollback", AUTH, "--env", "sandbox", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    out = dry.stdout
    assert f"rollback plan for sandbox: 1 service: {AUTH}" in out
    assert "current  revision 2" in out and "target   revision 1" in out
    assert f"image: bharathva/{AUTH}:1.1.0-unhealthy → bharathva/{AUTH}:1.0.0" in out
    assert "env SERVER_PORT: 9999 → 8081" in out
    assert "env API_TOKEN: ••• → (absent)" in out
    assert "s3cr3t-value" not in out
    assert "NOT rolled back: ConfigMaps and Secrets the pods read" in out
    assert "NOT rolled back: the database schema and data" in out
    assert "NOT rolled back: Services, Ingresses, autoscalers and other objects" in out
    assert sandbox.stats()["mutations"] == mutations, "a dry run changes nothing"

    # Without --yes and without a terminal: a usage error before anything is read.
    assert bva("rollback", AUTH, "--env", "sandbox", env=env).returncode == 2

    refused = bva("rollback", AUTH, "--env", "sandbox", "--to-revision", "9", "--yes", env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused: unable to find specified revision 9 in history" in refused.stdout

    read_only = bva("rollback", AUTH, "--env", "sandbox", "--read-only", "--yes", env=env)
    assert read_only.returncode == 1
    assert "refused: read-only: refusing to roll back deployment/auth-service" in read_only.stdout
    assert sandbox.stats()["mutations"] == mutations

    # On a terminal it asks: a wrong text changes nothing, the right one rolls back.
    wrong = bva_typing("rollback", AUTH, "--env", "sandbox", typed=AUTH, env=env)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert f"type {AUTH}@sandbox to roll back:" in wrong.stdout
    assert "not confirmed; nothing was changed" in wrong.stderr
    assert sandbox.stats()["mutations"] == mutations

    done = bva_typing("rollback", AUTH, "--env", "sandbox", typed=f"{AUTH}@sandbox", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rolled back to revision 1 (now revision 3)" in done.stdout
    assert f"[{AUTH}] health UP" in done.stdout
    assert "rollback on sandbox done in" in done.stdout and "1 of 1 service back" in done.stdout
    journal_file = tmp_path / "journal" / "sandbox.jsonl"
    assert f"journal: {journal_file}" in done.stdout
    assert "s3cr3t-value" not in done.stdout + journal_file.read_text()
    image = kubectl(
        sandbox,
        "get",
        "deployment",
        AUTH,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image == f"bharathva/{AUTH}:1.0.0"

    # Back onto the unhealthy revision: rolled out, but never healthy: exit 1.
    bad = bva(
        "rollback", AUTH, "--env", "sandbox", "--to-revision", "2", "--health-wait", "2", "--yes",
        env=env,
    )  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "failed: rolled back to revision 2 (now revision 4) but health is DOWN" in bad.stdout

    # The revision already running: nothing to do, exit 0.
    same = bva("rollback", AUTH, "--env", "sandbox", "--to-revision", "4", "--yes", env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "skipped rollback (current template already matches revision 4)" in same.stdout
    assert "nothing to do" in same.stdout

    journal = Journal(journal_file, "sandbox")
    assert journal.verify().ok
    assert [r.stage for r in journal.records()] == ["before", "after"] * 2
