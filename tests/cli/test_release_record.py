"""`bva release start` and the checklist, and the release record, against a real sandbox with
kubectl checking the cluster side: a No-Go where a Go is required refuses the release and
changes nothing; an override goes ahead with its reason journalled; sign-offs given from two
processes at once both count and make a Go; and every release leaves a record whose rollback
command, run as written, takes the service back."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox_proc import RunningSandbox, start_sandbox
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "backends" / "config" / "platforms" / "bharathva.toml"
FAST = ["--hold", "0.5", "--interval", "0.5", "--failure-limit", "1000", "--yes"]
SIGNOFFS = ("no-debug", "security-audit", "performance-testing", "documentation")
SIGNOFFS += ("load-balancers", "cdn", "logging")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path / "sbx", database=False)
    try:
        yield running
    finally:
        running.stop()


def platform_file(tmp: Path) -> Path:
    """The shipped platform with the sandbox asking for a Go and two sign-offs (the seed's
    other sign-off items removed, so that two people can give them all)."""
    path = tmp / "bva.toml"
    removed = ", ".join(f'"{i}"' for i in SIGNOFFS)
    path.write_text(
        PLATFORM.read_text()
        + "\n[environments.sandbox.checklist]\nrequire_go = true\nrequire_signoffs = true\n"
        + f"\n[checklist]\nremove = [{removed}]\n"
    )
    return path


def bva(
    sb: RunningSandbox, tmp: Path, *args: str, config: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in sb.env.items() if k != "BVA_CONFIG"}
    env |= {"BVA_JOURNAL_DIR": str(tmp / "journal"), "XDG_DATA_HOME": str(tmp / "data")}
    head = ["--config", str(platform_file(tmp))] if config else []
    return subprocess.run(
        [sys.executable, "-m", "tui", *head, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def kubectl(sb: RunningSandbox, *args: str) -> str:
    out = subprocess.run(
        ["kubectl", "-n", sb.namespace, *args],
        env=sb.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def images(sb: RunningSandbox) -> dict[str, str]:
    items = json.loads(kubectl(sb, "get", "deployments", "-o", "json"))["items"]
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in items
    }


def journal(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "journal" / "sandbox.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def start(
    sb: RunningSandbox, tmp: Path, version: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    args = ["release", "start", "--env", "sandbox", "--service", "tweet-service"]
    return bva(sb, tmp, *args, "--version", version, *extra, *FAST)


def test_no_go_refuses_an_override_is_journalled_and_the_record_rolls_back(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    before = images(sandbox)
    refused = start(sandbox, tmp_path, "1.3.0")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "checklist: NO-GO: All tests passing (unit, integration, e2e): not signed off" in (
        refused.stdout
    )
    assert "sandbox needs a Go to start" in refused.stderr
    assert "--override-reason TEXT" in refused.stderr
    assert images(sandbox) == before and not [n for n in before if n.endswith("-canary")]
    assert not [r for r in journal(tmp_path) if r["action"].startswith("release.")]

    blank = start(sandbox, tmp_path, "1.3.0", "--override-reason", "  ")
    assert blank.returncode == 2
    assert blank.stderr.strip() == "bva: error: --override-reason needs a reason: it is journalled"

    reason = "incident 4711: the hotfix cannot wait for sign-offs"
    out = start(sandbox, tmp_path, "1.3.0", "--override-reason", reason)
    assert out.returncode == 0, out.stdout + out.stderr
    assert images(sandbox)["tweet-service"] == "bharathva/tweet-service:1.3.0"
    records = journal(tmp_path)
    override = next(r for r in records if r["action"] == "checklist.override")
    assert override["details"]["reason"] == reason
    assert override["details"]["verdict"].startswith("NO-GO: All tests passing")
    first_start = next(i for i, r in enumerate(records) if r["action"] == "release.start")
    assert records.index(override) < first_start, "the override is journalled before the start"

    release_id = override["details"]["release"]
    record_json = tmp_path / "journal" / "releases" / f"{release_id}.json"
    assert f"record: {record_json.with_suffix('.md')}" in out.stdout
    shown = bva(sandbox, tmp_path, "release", "record", "--env", "sandbox", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc == json.loads(record_json.read_text())
    assert doc["schema"] == "bva.release-record/v1" and doc["release_id"] == release_id
    assert doc["outcome"] == {"state": "finished", "reason": ""}
    assert doc["who"]["actor"] and doc["started_at"] and doc["ended_at"]
    assert doc["checklist"]["override_reason"] == reason
    assert doc["checklist"]["gate"]["go"] is False and doc["checklist"]["gate"]["required"]
    signed = {i["id"]: i["state"] for i in doc["checklist"]["report"]["items"]}
    assert signed["tests-passing"] == "unsigned"
    (service,) = doc["services"]
    assert service["from_image"] == before["tweet-service"]
    assert service["now_image"] == "bharathva/tweet-service:1.3.0"
    assert doc["config_changes"]["tweet-service"] == [
        {
            "container": "tweet-service",
            "field": "image",
            "from": before["tweet-service"],
            "to": "bharathva/tweet-service:1.3.0",
        }
    ]
    assert [p["weight"] for p in doc["phases"]] == [5, 25, 50]
    for phase in doc["phases"]:
        gates = phase["gates"]["tweet-service"]
        assert gates["canary ready"]["passed"] >= 1 and gates["canary ready"]["failed"] == 0
        assert phase["ended_at"] is not None
    assert doc["database"] is None
    (command,) = doc["rollback"]["commands"]
    assert (
        command
        == f"bva rollback --env sandbox tweet-service --to-revision {service['from_revision']}"
    )
    md = bva(sandbox, tmp_path, "release", "record", release_id, "--env", "sandbox")
    assert md.stdout == record_json.with_suffix(".md").read_text()
    assert md.stdout.startswith(f"# Release {release_id} — finished")
    for heading in ("## Pre-deployment checklist", "## Database changes",
                    "## Configuration changes (pod template)", "## Phases and gates",
                    "## Rollback procedure"):  # fmt: skip
        assert heading in md.stdout
    assert f"**Started on a No-Go, overridden:** {reason}" in md.stdout
    assert command in md.stdout

    # The procedure is exact: run as the record writes it, it takes the service back.
    back = bva(sandbox, tmp_path, *shlex.split(command)[1:], "--yes", config=False)
    assert back.returncode == 0, back.stdout + back.stderr
    assert images(sandbox)["tweet-service"] == before["tweet-service"]

    bad = bva(sandbox, tmp_path, "release", "record", "r-1", "--env", "sandbox")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a release id" in bad.stderr
    missing = bva(
        sandbox, tmp_path, "release", "record", "r-20000101-000000-abcd", "--env", "sandbox"
    )
    assert missing.returncode == 1 and "no release record r-20000101-000000-abcd" in missing.stderr


def test_signoffs_from_two_processes_make_the_go_the_record_names_them(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    args = ["check", "--env", "sandbox", "--version", "1.4.0"]
    env = {k: v for k, v in sandbox.env.items() if k != "BVA_CONFIG"}
    env |= {"BVA_JOURNAL_DIR": str(tmp_path / "journal")}
    head = [sys.executable, "-m", "tui", "--config", str(platform_file(tmp_path)), *args]
    # Both at once: the second writer's compare-and-swap fails once and retries on top.
    procs = [
        subprocess.Popen(
            [*head, "--sign", item, "--as", who, "--comment", comment],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for item, who, comment in (
            ("tests-passing", "alice", "CI run 812 green"),
            ("code-reviewed", "bob", "LGTM"),
        )
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert "signed tests-passing for 1.4.0 as alice" in outs[0][0], outs[0]
    assert "signed code-reviewed for 1.4.0 as bob" in outs[1][0], outs[1]
    lease = json.loads(kubectl(sandbox, "get", "lease", "bva-checklist", "-o", "json"))
    kept = json.loads(lease["metadata"]["annotations"]["bva.io/signoffs"])
    assert json.dumps(kept).count("alice") == 1 and json.dumps(kept).count("bob") == 1

    def go() -> subprocess.CompletedProcess[str] | None:
        # A sandbox just started warms up (its traffic has error bursts): wait for a Go.
        out = bva(sandbox, tmp_path, "release", "start", "--env", "sandbox", "--service",
                  "tweet-service", "--version", "1.4.0", *FAST)  # fmt: skip
        return out if out.returncode == 0 else None

    out = wait_until(go, 120, "the release to start on a Go")
    assert "checklist: GO, checked 0 min ago (a Go is required)" in out.stdout
    assert not [r for r in journal(tmp_path) if r["action"] == "checklist.override"]
    doc = json.loads(
        bva(sandbox, tmp_path, "release", "record", "--env", "sandbox", "--json").stdout
    )
    assert doc["checklist"]["gate"]["go"] is True and doc["checklist"]["override_reason"] is None
    items = {i["id"]: i for i in doc["checklist"]["report"]["items"]}
    assert items["tests-passing"]["state"] == "signed"
    assert [(s["who"], s["comment"]) for s in items["tests-passing"]["signoffs"]] == [
        ("alice", "CI run 812 green")
    ]
    assert [s["who"] for s in items["code-reviewed"]["signoffs"]] == ["bob"]
    md = (tmp_path / "journal" / "releases" / f"{doc['release_id']}.md").read_text()
    assert "| alice " in md and "(CI run 812 green)" in md and "| bob " in md
