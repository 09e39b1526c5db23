"""The rollback engine against a real sandbox (and real kubectl): crash and unhealthy releases
rolled back until healthy, named revisions, paused deployments, identical templates, pruned
revisions, a canary release in the way, the release lock, read-only, and the same history as
kubectl's own `rollout undo`."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.health.models import ProbeStatus
from backends.journal.store import Journal
from backends.metrics.scrape import ScrapeMetrics
from backends.models import RolloutState
from backends.platform import Platform, open_platform
from backends.release.control import send_control
from backends.release.driver import ReleaseDriver
from backends.release.models import ReleaseState
from backends.release.plan import make_plan
from backends.rollback.diff import template_diff
from backends.rollback.engine import RollbackEngine
from backends.rollback.models import (
    NOT_ROLLED_BACK,
    PAUSED_WARNING,
    RollbackEvent,
    UnknownService,
)
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.sandbox_release import exists, ready, release_driver
from tests.support.waiting import until

CFG = load_platform(builtin_platform_path())
AUTH, USER, TWEET = "auth-service", "user-service", "tweet-service"


def platform_on(sandbox: RunningSandbox, *, read_only: bool = False) -> Platform:
    return open_platform(
        CFG, "sandbox", sandbox=read_sandbox_state(sandbox.runtime_dir), read_only=read_only
    )


@pytest.fixture
async def platform(sandbox: RunningSandbox) -> AsyncIterator[Platform]:
    p = platform_on(sandbox)
    try:
        await ready(p)
        yield p
    finally:
        await p.aclose()


def engine_for(platform: Platform, tmp_path: Path, **kw: Any) -> tuple[RollbackEngine, Journal]:
    journal = Journal(tmp_path / "journal.jsonl", platform.env_name)
    return RollbackEngine(platform, journal, poll=0.2, **kw), journal


async def state_is(platform: Platform, deployment: str, state: RolloutState) -> None:
    async def check() -> bool:
        return (await platform.orchestrator.rollout_status(deployment)).state is state

    await until(check, 60, f"{deployment} {state}")


async def health_of(platform: Platform, service: str) -> ProbeStatus:
    targets = [t for t in platform.health_targets() if t[0] == service]
    (result,) = await platform.health.sweep(targets)
    return result.status


async def run_kubectl(sandbox: RunningSandbox, *args: str, stdin: str | None = None) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        ["kubectl", "-n", sandbox.namespace, *args],  # the `kubectl` fixture checks it exists
        env=sandbox.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


async def set_image(platform: Platform, deployment: str, tag: str, cause: str = "") -> None:
    await platform.orchestrator.set_image(
        deployment, deployment, f"bharathva/{deployment}:{tag}", cause or f"release {tag}"
    )
    await state_is(platform, deployment, RolloutState.COMPLETE)


def driver_for(
    platform: Platform, tmp_path: Path, service: str, version: str, owner: str
) -> tuple[ReleaseDriver, ScrapeMetrics]:
    plan = make_plan(CFG, "sandbox", [service], version, holds=[600.0] * 3, gate_interval=0.5)
    metrics = ScrapeMetrics(
        {service: platform.service_urls[service] + "/actuator/prometheus"}, min_window=0.5
    )
    journal = Journal(tmp_path / f"release-{service}.jsonl", "sandbox")
    return release_driver(platform, CFG, plan, metrics, journal, owner), metrics


# -- bad releases rolled back -----------------------------------------------------------------


async def test_crash_and_unhealthy_releases_are_rolled_back_until_healthy(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path
) -> None:
    await run_kubectl(
        sandbox, "patch", "deployment", AUTH, "-p", '{"spec":{"progressDeadlineSeconds":5}}'
    )
    await run_kubectl(
        sandbox, "set", "image", f"deployment/{AUTH}", f"{AUTH}=bharathva/{AUTH}:1.1.0-crash"
    )
    await run_kubectl(
        sandbox, "set", "image", f"deployment/{USER}", f"{USER}=bharathva/{USER}:1.1.0-unhealthy"
    )
    await state_is(platform, AUTH, RolloutState.FAILED)
    await state_is(platform, USER, RolloutState.COMPLETE)

    async def user_down() -> bool:
        return await health_of(platform, USER) is not ProbeStatus.UP

    await until(user_down, 30, "the unhealthy release reports DOWN")

    engine, journal = engine_for(platform, tmp_path)
    candidates = await engine.candidates()
    assert [c.service for c in candidates[:2]] == [AUTH, USER]
    assert [c.degraded for c in candidates] == [True, True, False, False, False]
    auth, user = candidates[0], candidates[1]
    assert "rollout failed" in auth.reason and auth.image_tag == "1.1.0-crash"
    assert auth.rollout_text.startswith("Failed") and auth.revision == 2
    assert "health" in user.reason and user.health != "UP"

    plan = await engine.plan([USER, AUTH])
    assert [sp.service for sp in plan.services] == [AUTH, USER], "platform start order"
    assert plan.confirmation_text() == "sandbox" and plan.not_rolled_back == NOT_ROLLED_BACK
    assert plan.release is None and plan.lock_holder is None
    for sp, tag in zip(plan.services, ("1.1.0-crash", "1.1.0-unhealthy"), strict=True):
        assert sp.action == "rollback" and not sp.paused
        assert sp.target is not None and sp.target.revision == 1 and sp.current.revision == 2
        assert [r.revision for r in sp.history] == [1, 2]
        image = next(c for c in sp.changes if c.field == "image")
        assert image.current.endswith(f":{tag}") and image.target.endswith(":1.0.0")
        assert not any(c.field.startswith("env") for c in sp.changes)
        assert any("Secret" in w and "not rolled back" in w for w in sp.warnings)
    reordered = await engine.plan([AUTH, USER], order=[USER, AUTH])
    assert [sp.service for sp in reordered.services] == [USER, AUTH]

    events: list[RollbackEvent] = []
    result = await engine.execute(plan, on_event=events.append)
    assert result.ok, result
    assert [(o.service, o.outcome, o.ok) for o in result.outcomes] == [
        (AUTH, "rolled back to revision 1 (now revision 3)", True),
        (USER, "rolled back to revision 1 (now revision 3)", True),
    ]
    assert result.journal == str(tmp_path / "journal.jsonl")
    assert result.finished >= result.started
    texts = [(e.service, e.text) for e in events]
    assert (AUTH, "health UP") in texts and (USER, "health UP") in texts
    assert ("", "release lock released") in texts
    # One after another: everything about auth-service comes before user-service starts.
    last_auth = max(i for i, e in enumerate(events) if e.service == AUTH)
    first_user = min(i for i, e in enumerate(events) if e.service == USER)
    assert last_auth < first_user
    for service in (AUTH, USER):
        workload = await platform.orchestrator.get_workload(service)
        assert workload.image_tag() == "1.0.0" and workload.revision == 3
        assert await health_of(platform, service) is ProbeStatus.UP
    assert await platform.orchestrator.read_lock() is None

    records = journal.records()
    assert journal.verify().ok
    assert [(r.action, r.stage, r.target) for r in records] == [
        ("rollback.execute", "before", f"{AUTH}@sandbox"),
        ("rollback.execute", "after", f"{AUTH}@sandbox"),
        ("rollback.execute", "before", f"{USER}@sandbox"),
        ("rollback.execute", "after", f"{USER}@sandbox"),
    ]
    after = records[1]
    assert after.result == "ok"
    assert after.details["from_revision"] == 2 and after.details["to_revision"] == 1
    assert after.details["to_images"] == {AUTH: f"bharathva/{AUTH}:1.0.0"}
    assert after.details["now_revision"] == 3 and after.details["health"] == "UP"

    # A service that is not the platform's is a clear error.
    with pytest.raises(UnknownService, match="unknown service 'nope'"):
        await engine.plan(["nope"])


async def test_to_an_older_revision(platform: Platform, tmp_path: Path) -> None:
    await set_image(platform, AUTH, "1.1.0")
    await set_image(platform, AUTH, "1.2.0")
    engine, _ = engine_for(platform, tmp_path)
    plan = await engine.plan([AUTH], to_revision=1)
    assert plan.confirmation_text() == f"{AUTH}@sandbox"
    (sp,) = plan.services
    assert sp.action == "rollback" and sp.target is not None and sp.target.revision == 1
    assert [(r.revision, r.is_current) for r in sp.history] == [(1, False), (2, False), (3, True)]
    assert sp.current.change_cause == "release 1.2.0"
    assert sp.target.change_cause == "initial release 1.0.0"
    assert [(c.field, c.current, c.target) for c in sp.changes] == [
        ("image", f"bharathva/{AUTH}:1.2.0", f"bharathva/{AUTH}:1.0.0")
    ]
    default = await engine.plan([AUTH])
    assert default.services[0].target is not None and default.services[0].target.revision == 2

    result = await engine.execute(plan)
    assert result.ok and result.outcomes[0].outcome == "rolled back to revision 1 (now revision 4)"
    workload = await platform.orchestrator.get_workload(AUTH)
    assert workload.image_tag() == "1.0.0" and workload.change_cause == "initial release 1.0.0"
    assert [r.revision for r in await platform.orchestrator.history(AUTH)] == [2, 3, 4]


async def test_paused_deployment_is_refused_unless_resumed(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path
) -> None:
    await set_image(platform, AUTH, "1.1.0")
    await platform.orchestrator.pause(AUTH)
    engine, journal = engine_for(platform, tmp_path)
    plan = await engine.plan([AUTH])
    (sp,) = plan.services
    assert sp.action == "rollback" and sp.paused and PAUSED_WARNING in sp.warnings

    refused = await engine.execute(plan)
    assert not refused.ok
    assert refused.outcomes[0].outcome == f"refused: {PAUSED_WARNING}"
    workload = await platform.orchestrator.get_workload(AUTH)
    assert workload.paused and workload.image_tag() == "1.1.0" and workload.revision == 2
    assert journal.records()[-1].result == f"refused: {PAUSED_WARNING}"

    resumed = await engine.execute(plan, resume_paused=True)
    assert resumed.ok, resumed
    workload = await platform.orchestrator.get_workload(AUTH)
    assert not workload.paused and workload.image_tag() == "1.0.0" and workload.revision == 3
    assert journal.records()[-1].details.get("resumed") is True
    assert journal.verify().ok


async def test_identical_template_is_nothing_to_do(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path
) -> None:
    await set_image(platform, AUTH, "1.1.0")
    engine, journal = engine_for(platform, tmp_path)
    plan = await engine.plan([AUTH], to_revision=2)
    (sp,) = plan.services
    assert sp.action == "nothing" and sp.changes == ()
    assert sp.message == (
        f"deployment.apps/{AUTH} skipped rollback (current template already matches revision 2)"
    )
    before = sandbox.stats()["mutations"]
    result = await engine.execute(plan)
    assert result.ok and result.outcomes[0].outcome == "nothing to do"
    assert sandbox.stats()["mutations"] == before, "nothing sent, not even the lock"
    assert journal.records() == []


async def test_pruned_revision_is_not_offered_and_refused(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path
) -> None:
    await run_kubectl(
        sandbox, "patch", "deployment", AUTH, "-p", '{"spec":{"revisionHistoryLimit":1}}'
    )
    for tag in ("1.1.0", "1.2.0"):
        await set_image(platform, AUTH, tag)

    async def pruned() -> bool:
        return [r.revision for r in await platform.orchestrator.history(AUTH)] == [2, 3]

    await until(pruned, 30, "revision 1 pruned")
    engine, _ = engine_for(platform, tmp_path)
    plan = await engine.plan([AUTH], to_revision=1)
    (sp,) = plan.services
    assert [r.revision for r in sp.history] == [2, 3]
    assert sp.action == "refused" and sp.target is None
    assert sp.message == "unable to find specified revision 1 in history"
    before = sandbox.stats()["mutations"]
    result = await engine.execute(plan)
    assert not result.ok
    assert result.outcomes[0].outcome == "refused: unable to find specified revision 1 in history"
    assert sandbox.stats()["mutations"] == before
    default = await engine.plan([AUTH])
    assert default.services[0].target is not None and default.services[0].target.revision == 2


# -- the release in the way ------------------------------------------------------------------


async def test_canary_release_is_aborted_only_when_asked(
    platform: Platform, tmp_path: Path
) -> None:
    await set_image(platform, TWEET, "1.1.0")
    driver, metrics = driver_for(platform, tmp_path, TWEET, "1.2.0", "alice@host")
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:
        engine, journal = engine_for(platform, tmp_path)
        plan = await engine.plan([TWEET])
        assert plan.release is not None and plan.release.release_id == driver.plan.release_id
        assert TWEET in plan.release.services
        assert plan.lock_holder is not None and driver.lock.me in plan.lock_holder
        assert any("canary" in w for w in plan.services[0].warnings)

        refused = await engine.execute(plan)
        assert not refused.ok
        outcome = refused.outcomes[0].outcome
        assert outcome.startswith("refused: release lock held by") and driver.lock.me in outcome
        assert await exists(platform, f"{TWEET}-canary")
        assert (await platform.orchestrator.get_workload(TWEET)).image_tag() == "1.1.0"
        assert not task.done()

        events: list[RollbackEvent] = []
        result = await engine.execute(plan, abort_release=True, on_event=events.append)
        assert result.ok, result
        assert result.outcomes[0].outcome == "rolled back to revision 1 (now revision 3)"
        assert await asyncio.wait_for(task, 30) is ReleaseState.ABORTED
        assert not await exists(platform, f"{TWEET}-canary")
        assert (await platform.orchestrator.get_workload(TWEET)).image_tag() == "1.0.0"
        assert any("traffic back on stable" in e.text for e in events)
        actions = [(r.action, r.stage, r.result) for r in journal.records()]
        assert actions[:2] == [
            ("rollback.abort_release", "before", ""),
            ("rollback.abort_release", "after", "ok"),
        ]
        assert journal.records()[0].details["release"] == driver.plan.release_id
        assert await platform.orchestrator.read_lock() is None
    finally:
        task.cancel()
        await metrics.aclose()


async def test_rollback_racing_another_driver_is_refused_with_who(
    platform: Platform, tmp_path: Path
) -> None:
    await set_image(platform, AUTH, "1.1.0")
    engine, _ = engine_for(platform, tmp_path)
    plan = await engine.plan([AUTH])
    assert plan.lock_holder is None and plan.services[0].action == "rollback"
    # Between the plan and the execution, someone starts a release elsewhere.
    driver, metrics = driver_for(platform, tmp_path, "discovery-service", "1.3.0", "bob@host")
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:
        result = await engine.execute(plan)
        assert not result.ok
        outcome = result.outcomes[0].outcome
        assert outcome.startswith("refused: release lock held by")
        assert driver.lock.me in outcome and driver.plan.release_id in outcome
        assert (await platform.orchestrator.get_workload(AUTH)).image_tag() == "1.1.0"
        assert not task.done()
        await send_control(platform.orchestrator, platform.services(), "abort")
        assert await asyncio.wait_for(task, 30) is ReleaseState.ABORTED
    finally:
        task.cancel()
        await metrics.aclose()
    # With the driver gone, the same plan goes through.
    result = await engine.execute(plan)
    assert result.ok, result


# -- read-only --------------------------------------------------------------------------------


async def test_read_only_sends_no_mutation(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path
) -> None:
    await set_image(platform, AUTH, "1.1.0")
    await platform.orchestrator.pause(AUTH)
    ro = platform_on(sandbox, read_only=True)
    try:
        engine, journal = engine_for(ro, tmp_path)
        before = sandbox.stats()["mutations"]
        assert len(await engine.candidates()) == 5
        plan = await engine.plan([AUTH, USER])
        assert plan.services[0].action == "rollback" and plan.services[1].action == "refused"
        for forced in (False, True):
            result = await engine.execute(plan, resume_paused=forced, abort_release=forced)
            assert not result.ok
            assert result.outcomes[0].outcome == (
                f"refused: read-only: refusing to roll back deployment/{AUTH} "
                f"in namespace {sandbox.namespace}"
            )
            assert result.outcomes[1].outcome.startswith("refused: no rollout history found")
        assert sandbox.stats()["mutations"] == before
        assert not journal.exists()
    finally:
        await ro.aclose()


# -- the template diff ------------------------------------------------------------------------


def test_diff_masks_secrets_and_names_changes() -> None:
    def template(image: str, env: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        container = {"name": "app", "image": image, "env": env, **extra}
        return {
            "metadata": {"labels": {"app": "a", "pod-template-hash": image[-3:]}},
            "spec": {"containers": [container]},
        }

    current = template(
        "r/app:2.0",
        [
            {"name": "SERVER_PORT", "value": "9090"},
            {"name": "DB_PASSWORD", "value": "hunter2"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t2"}}},
            {"name": "DB_URL", "value": "postgres://u:pw@db/x"},
            {"name": "EVIL", "value": "\x1b[31mred"},
        ],
        resources={"limits": {"cpu": "2"}},
        readinessProbe={"httpGet": {"path": "/h", "port": 80}, "periodSeconds": 5},
    )
    target = template(
        "r/app:1.0",
        [
            {"name": "SERVER_PORT", "value": "8080"},
            {"name": "DB_PASSWORD", "value": "hunter1"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t1"}}},
            {"name": "DB_URL", "value": "postgres://u:pw2@db/x"},
        ],
        resources={"limits": {"cpu": "1"}},
        readinessProbe={"httpGet": {"path": "/h", "port": 80}, "periodSeconds": 10},
    )
    changes = {
        (c.container, c.field): (c.current, c.target) for c in template_diff(current, target)
    }
    assert changes[("app", "image")] == ("r/app:2.0", "r/app:1.0")
    assert changes[("app", "env SERVER_PORT")] == ("9090", "8080")
    assert changes[("app", "env DB_PASSWORD")] == ("•••", "••• (changed)")
    assert changes[("app", "env API_TOKEN")] == ("secret s/t2", "secret s/t1")
    assert changes[("app", "resources.limits.cpu")] == ("2", "1")
    assert changes[("app", "readinessProbe")] == (
        "httpGet /h :80, period 5s",
        "httpGet /h :80, period 10s",
    )
    assert changes[("app", "env EVIL")] == ("\\x1b[31mred", "(absent)")
    text = repr(changes)
    assert "hunter" not in text and "pw2" not in text and ":pw@" not in text
    assert not any("pod-template-hash" in field for _, field in changes)
    assert template_diff(current, current) == ()


# -- the same history as kubectl's own rollout undo ---------------------------------------------


def _history_rows(text: str, name: str) -> list[str]:
    lines = [re.sub(r"\s+", " ", line).strip() for line in text.splitlines() if line.strip()]
    return [line.replace(name, "NAME") for line in lines]


async def test_same_history_as_kubectl_rollout_undo(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path, kubectl: str
) -> None:
    source = json.loads(await run_kubectl(sandbox, "get", "deployment", AUTH, "-o", "json"))
    for name in ("rb-a", "rb-b"):
        labels = {"app": name, "track": "stable"}
        spec = dict(source["spec"])
        spec["replicas"] = 2
        spec["selector"] = {"matchLabels": labels}
        spec["template"] = {
            "metadata": {"labels": labels},
            "spec": source["spec"]["template"]["spec"],
        }
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "labels": {"app": name},
                "annotations": {"kubernetes.io/change-cause": "created 1.0.0"},
            },
            "spec": spec,
        }
        # The sandbox serves no OpenAPI document for client-side validation.
        await run_kubectl(sandbox, "create", "--validate=false", "-f", "-", stdin=json.dumps(body))
    for tag in ("1.1.0", "1.2.0", "1.3.0"):
        # The change-cause and the image in one patch, as `kubectl set image --record` did: an
        # annotation alone would be copied onto the running ReplicaSet by the controller.
        change = {
            "metadata": {"annotations": {"kubernetes.io/change-cause": f"update to {tag}"}},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": AUTH, "image": f"bharathva/{AUTH}:{tag}"}]}
                }
            },
        }
        for name in ("rb-a", "rb-b"):
            await run_kubectl(sandbox, "patch", "deployment", name, "-p", json.dumps(change))
        for name in ("rb-a", "rb-b"):
            await run_kubectl(sandbox, "rollout", "status", f"deployment/{name}", "--timeout=60s")

    config = tmp_path / "rb.toml"
    config.write_text(
        'name = "RB"\n[environments.sandbox]\norchestrator = "kubernetes"\n'
        f'namespace = "{sandbox.namespace}"\nsandbox = true\n'
        '[[services]]\nname = "rb-b"\nimage = "bharathva/auth-service"\nport = 8081\n'
        f'container = "{AUTH}"\nhealth = ["{sandbox.services[AUTH]}/actuator/health"]\n'
    )
    rb_platform = open_platform(
        load_platform(config), "sandbox", sandbox=read_sandbox_state(sandbox.runtime_dir)
    )
    try:
        engine, _ = engine_for(rb_platform, tmp_path)
        for to_revision in (None, 1):
            flag = [] if to_revision is None else [f"--to-revision={to_revision}"]
            await run_kubectl(sandbox, "rollout", "undo", "deployment/rb-a", *flag)
            plan = await engine.plan(["rb-b"], to_revision)
            result = await engine.execute(plan)
            assert result.ok, result
            await run_kubectl(sandbox, "rollout", "status", "deployment/rb-a", "--timeout=60s")
            histories = [
                _history_rows(
                    await run_kubectl(sandbox, "rollout", "history", f"deployment/{name}"), name
                )
                for name in ("rb-a", "rb-b")
            ]
            assert histories[0] == histories[1], histories
            images = [
                await run_kubectl(
                    sandbox, "get", "deployment", name, "-o",
                    "jsonpath={.spec.template.spec.containers[0].image} "
                    "{.metadata.annotations.kubernetes\\.io/change-cause} "
                    "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
                )
                for name in ("rb-a", "rb-b")
            ]  # fmt: skip
            assert images[0] == images[1], images
        # After undo (to 1.2.0, revision 5) and undo --to-revision=1 (1.0.0, revision 6):
        assert histories[0][1:] == [
            "REVISION CHANGE-CAUSE",
            "2 update to 1.1.0",
            "4 update to 1.3.0",
            "5 update to 1.2.0",
            "6 created 1.0.0",
        ]
    finally:
        await rb_platform.aclose()
