"""`bva check` against a real sandbox: the checks answer from the cluster, the health
endpoints, the metrics and the database, a crashing rollout makes No-Go with the evidence, and
a source that is not there is unknown, never a pass."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.pki import DAY, HOUR, Pki, https_server, make_ca, make_leaf
from tests.support.sandbox_proc import RunningSandbox, start_sandbox
from tests.support.waiting import wait_until

PLATFORM = (
    Path(__file__).resolve().parents[2] / "backends" / "config" / "platforms" / "bharathva.toml"
)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path / "sbx", database=False)
    try:
        yield running
    finally:
        running.stop()


def check(
    sb: RunningSandbox, *args: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in sb.env.items() if k != "BVA_CONFIG"}
    head = ["--config", str(config)] if config is not None else []
    return subprocess.run(
        [sys.executable, "-m", "tui", *head, "check", "--env", "sandbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def items(out: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    doc = json.loads(out.stdout)
    assert doc["schema"] == "bva.check/v1"
    return {i["id"]: i for i in doc["items"]}


def test_a_healthy_sandbox_is_go_and_a_crashing_rollout_is_no_go(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    md_file = str(tmp_path / "checklist.md")

    def go() -> subprocess.CompletedProcess[str] | None:
        # A sandbox just started warms up (and its traffic has error bursts): wait for a Go.
        out = check(sandbox, "--json", "--version", "1.2.0", "--md", md_file)
        return out if json.loads(out.stdout)["verdict"]["go"] else None

    out = wait_until(go, 90, "the sandbox's checklist to say Go")
    got = items(out)
    assert got["environment-variables"]["state"] == "pass", got["environment-variables"]
    assert got["autoscaling"]["evidence"].startswith("5 HPAs as the platform file sets them")
    assert got["images"]["state"] == "pass" and ":1.2.0" in got["images"]["evidence"]
    assert got["resources"]["evidence"].startswith("5 services UP")
    assert got["resources"]["duration_s"] is not None and got["resources"]["ran_at"]
    # No database in this sandbox: unknown, and said why, not a pass.
    assert got["migrations"]["state"] == "unknown"
    assert "has no database" in got["migrations"]["evidence"]
    assert got["tests-passing"]["kind"] == "signoff" and got["tests-passing"]["required"] is False
    assert out.returncode == 3  # Go, but some sources could not be read
    md = (tmp_path / "checklist.md").read_text()
    assert md.startswith("## Pre-deployment checklist — GO") and "### Infrastructure" in md
    # Broken on purpose: a missing HPA, a Secret without the key a variable names, a crash.
    for args in (
        ["delete", "hpa", "tweet-service-hpa"],
        ["patch", "secret", "bharathva-jwt", "--type=json",
         "-p", '[{"op":"remove","path":"/data/jwt-secret"}]'],
        ["set", "image", "deployment/tweet-service",
         "tweet-service=bharathva/tweet-service:2.0.0-crash"],
    ):  # fmt: skip
        subprocess.run(
            ["kubectl", "-n", sandbox.namespace, *args],
            env=sandbox.env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def failing() -> subprocess.CompletedProcess[str] | None:
        out = check(sandbox)
        return out if out.returncode == 1 else None

    bad = wait_until(failing, 60, "the crashing rollout to fail the checklist")
    assert bad is not None
    lines = bad.stdout.splitlines()
    resources = next(line for line in lines if "Resources provisioned" in line)
    assert "✖ fail" in resources and "tweet-service" in resources
    assert lines[0] == "Code Quality:" and "verdict: NO-GO" in bad.stdout
    assert any(line.startswith("  ✖ Resources provisioned:") for line in lines)
    env_line = next(line for line in lines if "Environment variables configured" in line)
    assert "JWT_SECRET: secret bharathva-jwt has no key jwt-secret" in env_line
    hpa_line = next(line for line in lines if "Auto-scaling policies set" in line)
    assert "✖ fail" in hpa_line and "tweet-service: no HorizontalPodAutoscaler" in hpa_line
    assert "c2FuZGJveC1qd3Qt" not in bad.stdout  # no Secret value, not even encoded


def test_a_bad_version_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tui", "check", "--env", "sandbox", "--version", "bad tag!"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        out.returncode == 2
        and out.stderr.strip() == "bva: error: 'bad tag!' is not a valid image tag"
    )


def test_an_expired_certificate_a_name_that_does_not_resolve_and_an_error_spike_fail(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("bharathva internal CA")
    expired = make_leaf(ca, not_before=now - 60 * DAY, not_after=now - 3 * DAY - HOUR)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    pki = Pki(str(ca_file), {"expired": expired})
    with https_server(pki.server_context("expired", tmp_path)) as port:
        config = tmp_path / "bva.toml"
        config.write_text(
            PLATFORM.read_text()
            + f'\n[checklist]\ntls_ca_file = "{ca_file}"\n'
            + '\n[[checklist.items]]\nid = "ssl"\nsection = "Environment"\n'
            + f'title = "SSL certificates valid"\ncheck = "tls"\nurls = ["https://127.0.0.1:{port}/"]\n'
            + '\n[[checklist.items]]\nid = "dns"\nsection = "Environment"\n'
            + 'title = "DNS records configured"\ncheck = "dns"\n'
            + 'hostnames = ["localhost", "api.bharathva.invalid"]\n'
        )
        out = check(sandbox, "--json", config=config)
    got = items(out)
    assert got["ssl"]["state"] == "fail" and "expired" in got["ssl"]["evidence"], got["ssl"]
    assert got["dns"]["state"] == "fail", got["dns"]
    assert "api.bharathva.invalid" in got["dns"]["evidence"]
    assert out.returncode == 1

    # An error-rate spike: the "unhealthy" image answers 5xx to a share of its requests.
    subprocess.run(
        ["kubectl", "-n", sandbox.namespace, "set", "image", "deployment/user-service",
         "user-service=bharathva/user-service:2.0.0-unhealthy"],
        env=sandbox.env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    def spiking() -> dict[str, Any] | None:
        monitoring = items(check(sandbox, "--json"))["monitoring"]
        return monitoring if monitoring["state"] == "fail" else None

    monitoring = wait_until(spiking, 60, "the error-rate spike to fail the monitoring check")
    assert "user-service error rate" in monitoring["evidence"], monitoring


def test_a_source_that_is_down_is_unknown_never_a_pass(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    sandbox.stop_api()
    try:
        out = check(sandbox, "--json")
    finally:
        sandbox.start_api()
    got = items(out)
    for item in ("resources", "autoscaling", "environment-variables"):
        assert got[item]["state"] == "unknown", got[item]
        assert "cannot reach the Kubernetes API" in got[item]["evidence"], got[item]
    assert not json.loads(out.stdout)["verdict"]["go"] or out.returncode == 3
    assert out.returncode in (1, 3)
