"""KubeAdapter's checklist reads (autoscalers, pod-template environment, Secret and ConfigMap
keys) against the real sandbox through the real kubernetes client, and that no secret value
ever comes out of them."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.errors import NotFound
from backends.kube.adapter import KubeAdapter
from backends.models import EnvRef
from tests.support.sandbox_proc import RunningSandbox

AUTH = "auth-service"


def kubectl(sb: RunningSandbox, *args: str) -> str:
    proc = subprocess.run(
        ["kubectl", *args], env=sb.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
async def adapter(sandbox: RunningSandbox) -> AsyncIterator[KubeAdapter]:
    kube = KubeAdapter(
        namespace=sandbox.namespace,
        kubeconfig=str(sandbox.kubeconfig),
        services=[(s, s) for s in sandbox.services],
    )
    try:
        yield kube
    finally:
        await kube.close()


async def test_autoscalers_are_the_seed_guides(adapter: KubeAdapter) -> None:
    hpas = await adapter.list_autoscalers()
    assert [a.name for a in hpas] == sorted(f"{s}-hpa" for s in (
        "discovery-service", "auth-service", "user-service", "tweet-service", "gateway-service"
    ))  # fmt: skip
    auth = next(a for a in hpas if a.name == "auth-service-hpa")
    assert (auth.target_kind, auth.target_name) == ("Deployment", AUTH)
    assert (auth.min_replicas, auth.max_replicas) == (2, 10)
    assert auth.metrics == ("cpu 70% utilization",)


async def test_autoscaler_status_follows_the_deployment(adapter: KubeAdapter) -> None:
    async def auth_hpa() -> tuple[int, int]:
        found = {a.name: a for a in await adapter.list_autoscalers()}["auth-service-hpa"]
        return found.current_replicas, found.desired_replicas

    await _wait(auth_hpa, (3, 3))
    await adapter.scale(AUTH, 1)
    await _wait(auth_hpa, (1, 2))  # below minReplicas: the HPA wants 2 (and never acts)
    found = {a.name: a for a in await adapter.list_autoscalers()}["auth-service-hpa"]
    limited = found.condition("ScalingLimited")
    assert limited is not None and limited.reason == "TooFewReplicas"
    assert found.condition("AbleToScale") is not None


async def test_workload_env_names_sources_not_values(adapter: KubeAdapter) -> None:
    env = await adapter.workload_env(AUTH)
    by_name = {e.name: e for e in env}
    assert by_name["SERVER_PORT"] == EnvRef(AUTH, "SERVER_PORT", "literal")
    assert by_name["DB_PASSWORD"] == EnvRef(
        AUTH, "DB_PASSWORD", "secret", "bharathva-db", "db-password"
    )
    assert by_name["JWT_SECRET"].ref_name == "bharathva-jwt"
    assert by_name["SMTP_HOST"].source == "configmap"
    assert by_name["*"] == EnvRef(AUTH, "*", "configmap", "bharathva-logging")
    assert by_name["POD_NAME"] == EnvRef(AUTH, "POD_NAME", "field", "metadata.name")
    assert by_name["MEMORY_LIMIT_MI"].source == "resource"
    # Every variable the platform file requires is there, directly or through envFrom.
    required = set(load_platform(builtin_platform_path()).service(AUTH).env)
    provided = {e.name for e in env if not e.whole}
    for whole in (e for e in env if e.whole):
        keys = await adapter.config_map_keys(whole.ref_name)
        assert keys is not None
        provided |= {whole.name.removesuffix("*") + key for key in keys}
    assert required <= provided, required - provided
    with pytest.raises(NotFound):
        await adapter.workload_env("no-such-deployment")


async def test_secret_and_config_map_keys(sandbox: RunningSandbox, adapter: KubeAdapter) -> None:
    assert await adapter.secret_keys("bharathva-db") == frozenset(
        {"db-url", "db-username", "db-password"}
    )
    assert await adapter.config_map_keys("bharathva-smtp") == frozenset({"smtp-host", "smtp-port"})
    assert await adapter.secret_keys("missing") is None
    assert await adapter.config_map_keys("missing") is None
    patch = '[{"op":"remove","path":"/data/db-password"}]'
    kubectl(sandbox, "patch", "secret", "bharathva-db", "--type=json", "-p", patch)
    assert await adapter.secret_keys("bharathva-db") == frozenset({"db-url", "db-username"})
    kubectl(sandbox, "delete", "configmap", "bharathva-smtp")
    assert await adapter.config_map_keys("bharathva-smtp") is None


async def test_no_secret_value_leaves_the_adapter(
    sandbox: RunningSandbox, adapter: KubeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    # A secret pasted inline as a literal, beside the seeded Secrets' dummy values.
    inline = "pasted-inline-s3cr3t"
    kubectl(sandbox, "set", "env", f"deployment/{AUTH}", f"INLINE_TOKEN={inline}")
    values = {inline}
    for name in ("bharathva-db", "bharathva-jwt", "bharathva-smtp"):
        raw = kubectl(sandbox, "get", "secret", name, "-o", "jsonpath={.data}")
        for encoded in json.loads(raw).values():
            values.add(base64.b64decode(encoded).decode())
            values.add(encoded)
    assert len(values) > 6

    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    env = await adapter.workload_env(AUTH)
    assert any(e.name == "INLINE_TOKEN" and e.source == "literal" for e in env)
    seen += [repr(e) for e in env] + [str(e) for e in env]
    for name in ("bharathva-db", "bharathva-jwt", "bharathva-smtp"):
        seen.append(repr(await adapter.secret_keys(name)))
    seen.append(repr(await adapter.list_autoscalers()))
    seen.append(caplog.text)
    text = "\n".join(seen)
    leaked = [v for v in values if v in text]
    assert not leaked, leaked


async def _wait(
    probe: Callable[[], Awaitable[tuple[int, int]]], want: tuple[int, int], within: float = 30.0
) -> None:
    deadline = time.monotonic() + within
    got: tuple[int, int] | None = None
    while time.monotonic() < deadline:
        got = await probe()
        if got == want:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"wanted {want}, last saw {got}")
