"""The release engine against a real sandbox: canary phases, gates, controls from another
process, the release lock, a killed driver resumed, read-only refusals, the journal."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.errors import ReadOnlyError
from backends.journal.store import Journal
from backends.metrics.scrape import ScrapeMetrics
from backends.platform import Platform, open_platform
from backends.release.control import read_release, send_control
from backends.release.driver import ReleaseDriver
from backends.release.lock import LockHeld
from backends.release.models import ReleaseState, ReleaseView
from backends.release.plan import make_plan
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state
from tests.support.sandbox_release import exists, ready, release_driver
from tests.support.waiting import until

CFG = load_platform(builtin_platform_path())


def platform_on(sandbox: RunningSandbox, *, read_only: bool = False) -> Platform:
    state = read_sandbox_state(sandbox.runtime_dir)
    return open_platform(CFG, "sandbox", sandbox=state, read_only=read_only)


@pytest.fixture
async def platform(sandbox: RunningSandbox) -> AsyncIterator[Platform]:
    p = platform_on(sandbox)
    try:
        yield p
    finally:
        await p.aclose()


def driver_for(
    platform: Platform,
    tmp_path: Path,
    services: list[str],
    version: str,
    *,
    hold: float = 1.5,
    interval: float = 0.5,
    owner: str = "tester@test",
    on_change: Callable[[ReleaseView], None] | None = None,
    **kw: Any,
) -> tuple[ReleaseDriver, ScrapeMetrics, Journal]:
    plan = make_plan(
        CFG, "sandbox", services, version, holds=[hold] * 3, gate_interval=interval, **kw
    )
    urls = {s: platform.service_urls[s] + "/actuator/prometheus" for s in services}
    metrics = ScrapeMetrics(urls, min_window=0.5)
    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    driver = release_driver(platform, CFG, plan, metrics, journal, owner, on_change)
    return driver, metrics, journal


async def image_of(platform: Platform, deployment: str) -> str:
    return (await platform.orchestrator.get_workload(deployment)).image


async def test_good_version_goes_all_the_way(platform: Platform, tmp_path: Path) -> None:
    await ready(platform)
    seen_phases: list[int] = []
    driver, metrics, journal = driver_for(
        platform,
        tmp_path,
        ["auth-service"],
        "1.1.0",
        on_change=lambda v: seen_phases.append(v.weight),
    )
    await driver.start()
    state = await driver.run()
    await metrics.aclose()
    assert state is ReleaseState.FINISHED, driver.reason
    assert [w for i, w in enumerate(seen_phases) if i == 0 or w != seen_phases[i - 1]] == [
        5,
        25,
        50,
        100,
    ]
    assert await image_of(platform, "auth-service") == "bharathva/auth-service:1.1.0"
    assert not await exists(platform, "auth-service-canary")
    workload = await platform.orchestrator.get_workload("auth-service")
    assert workload.change_cause and driver.plan.release_id in workload.change_cause
    actions = [(r.action, r.stage) for r in journal.records()]
    assert ("release.start", "before") in actions and ("release.finish", "after") in actions
    assert ("release.phase", "after") in actions and ("release.promote", "after") in actions
    assert journal.verify().ok
    assert await platform.orchestrator.read_lock() is None


async def test_an_observer_sees_the_gates_tallies_and_trends(
    platform: Platform, tmp_path: Path
) -> None:
    """What another terminal reads from the cluster: the same gates, counted and with their
    recent values, as the driving process shows."""
    await ready(platform)
    driver, metrics, _ = driver_for(platform, tmp_path, ["user-service"], "1.4.0", hold=600)
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:

        async def sampled_twice() -> bool:
            view = await read_release(platform.orchestrator, platform.services())
            gates = view.progress[0].gates if view is not None and view.progress else ()
            return bool(gates) and all(g.passed + g.failed + g.inconclusive >= 2 for g in gates)

        await until(sampled_twice, 30, "two samples in the canary's marks")
        observed = await read_release(platform.orchestrator, platform.services())
        assert observed is not None
        mine = {g.gate: g for g in driver.view().progress[0].gates}
        theirs = {g.gate: g for g in observed.progress[0].gates}
        assert set(theirs) == set(mine) == {
            "error rate", "p95 latency", "canary ready", "restarts",
        }  # fmt: skip
        for gate, tally in theirs.items():
            assert tally.last is not None and tally.last.gate == gate
            # The driver may have sampled once more since it wrote the marks.
            assert mine[gate].passed - 1 <= tally.passed <= mine[gate].passed
            if tally.last.value is not None:
                assert tally.history, f"{gate}: no trend for the observer"
        await send_control(platform.orchestrator, platform.services(), "abort")
        assert await asyncio.wait_for(task, 30) is ReleaseState.ABORTED
    finally:
        task.cancel()
        await metrics.aclose()


@pytest.mark.parametrize(
    ("version", "gates"),
    # An unhealthy canary is slow and fails requests; which of the two trips the last sample
    # is chance, so either counts.
    [("2.0.0-unhealthy", ("error rate", "p95 latency")), ("2.0.0-crash", ("canary ready",))],
)
async def test_bad_versions_are_aborted_and_stable_untouched(
    platform: Platform, tmp_path: Path, version: str, gates: tuple[str, ...]
) -> None:
    await ready(platform)
    before = await platform.orchestrator.get_workload("user-service")
    driver, metrics, journal = driver_for(platform, tmp_path, ["user-service"], version, hold=30)
    await driver.start()
    state = await driver.run()
    await metrics.aclose()
    assert state is ReleaseState.ABORTED
    assert any(gate in driver.reason for gate in gates)
    after = await platform.orchestrator.get_workload("user-service")
    assert after.image == before.image and after.revision == before.revision
    assert not await exists(platform, "user-service-canary")
    failures = [r for r in journal.records() if r.action == "release.gate_failed"]
    assert len(failures) == 3
    assert any(r.action == "release.abort" and r.stage == "after" for r in journal.records())


async def test_pause_holds_and_promote_skips_the_hold(platform: Platform, tmp_path: Path) -> None:
    await ready(platform)
    published: list[ReleaseView] = []
    driver, metrics, _ = driver_for(
        platform, tmp_path, ["gateway-service"], "1.3.0", hold=2, on_change=published.append
    )
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:
        await send_control(platform.orchestrator, platform.services(), "pause", "looking at logs")
        await until(lambda: driver.state is ReleaseState.PAUSED, 20, "the pause to be taken")
        # Seven ticks (0.5 s each, two views published per tick) since the pause: past the
        # hold (2 s) and a gate interval, a release not paused would have moved on.
        ticks = len(published)
        await until(
            lambda: len(published) >= ticks + 14 or driver.phase != 0, 30, "seven driver ticks"
        )
        assert driver.phase == 0 and driver.state is ReleaseState.PAUSED
        view = await read_release(platform.orchestrator, platform.services())
        assert view is not None and view.state is ReleaseState.PAUSED
        await send_control(platform.orchestrator, platform.services(), "resume")
        await until(lambda: driver.phase >= 1, 20, "phase 2 after resume")
        # A long hold, skipped by promote.
        # From now on the holds are ten minutes: only promote can move the release on.
        driver.plan = dataclasses.replace(driver.plan, holds=(600.0,) * 3)
        phase, samples = driver.phase, driver.passed + driver.failed
        # Four samples (the gate interval is 0.5 s), each followed by the check that would
        # end the old 2 s hold: not a fixed sleep, so a slow machine waits for them all.
        await until(
            lambda: driver.passed + driver.failed >= samples + 4 or driver.phase != phase,
            20,
            "four more gate samples",
        )
        assert driver.phase == phase
        await send_control(platform.orchestrator, platform.services(), "promote")
        await until(
            lambda: driver.phase > phase or driver.state.over,
            20,
            "promote moves to the next phase",
        )
        await send_control(platform.orchestrator, platform.services(), "promote-full")
        assert await asyncio.wait_for(task, 60) is ReleaseState.FINISHED
    finally:
        task.cancel()
        await metrics.aclose()
    assert await image_of(platform, "gateway-service") == "bharathva/gateway-service:1.3.0"


async def test_second_driver_is_refused_and_abort_from_elsewhere(
    platform: Platform, tmp_path: Path
) -> None:
    await ready(platform)
    first, m1, _ = driver_for(
        platform, tmp_path, ["tweet-service"], "1.4.0", hold=60, owner="alice@host"
    )
    await first.start()
    task = asyncio.create_task(first.run())
    second, m2, _ = driver_for(platform, tmp_path / "b", ["discovery-service"], "9.9.9")
    (tmp_path / "b").mkdir()
    try:
        with pytest.raises(LockHeld) as refused:
            await second.start()
        assert "release lock held by" in str(refused.value)
        assert first.plan.release_id in str(refused.value)
        await send_control(platform.orchestrator, platform.services(), "abort")
        assert await asyncio.wait_for(task, 20) is ReleaseState.ABORTED
    finally:
        task.cancel()
        await m1.aclose()
        await m2.aclose()
    assert not await exists(platform, "tweet-service-canary")
    assert await image_of(platform, "tweet-service") == "bharathva/tweet-service:1.0.0"


async def test_read_only_sends_no_mutation(sandbox: RunningSandbox, tmp_path: Path) -> None:
    platform = platform_on(sandbox, read_only=True)
    try:
        before = sandbox.stats()["mutations"]
        driver, metrics, _ = driver_for(platform, tmp_path, ["auth-service"], "1.1.0")
        with pytest.raises(ReadOnlyError):
            await driver.start()
        for action in ("pause", "resume", "promote", "abort"):
            try:
                await send_control(platform.orchestrator, platform.services(), action)
            except Exception as exc:
                assert "no release" in str(exc) or isinstance(exc, ReadOnlyError)
        await metrics.aclose()
        assert sandbox.stats()["mutations"] == before
    finally:
        await platform.aclose()


def bva(sandbox: RunningSandbox, tmp_path: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    env = {**sandbox.env, "BVA_JOURNAL_DIR": str(tmp_path / "journal")}
    return subprocess.Popen(
        [sys.executable, "-m", "tui", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


async def test_killed_driver_is_resumed_from_a_new_process(
    sandbox: RunningSandbox, platform: Platform, tmp_path: Path
) -> None:
    await ready(platform)
    proc = bva(
        sandbox,
        tmp_path,
        "release",
        "start",
        "--env",
        "sandbox",
        "--service",
        "auth-service",
        "--version",
        "1.5.0",
        "--hold",
        "3",
        "--interval",
        "0.5",
        "--yes",
    )
    try:

        async def in_phase_two() -> bool:
            view = await read_release(platform.orchestrator, platform.services())
            return view is not None and view.phase_index >= 1

        await until(in_phase_two, 40, "the driver reaches phase 2")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

        async def lost() -> bool:
            view = await read_release(platform.orchestrator, platform.services())
            return view is not None and view.state is ReleaseState.DRIVER_LOST

        await until(lost, 30, "the release shows the driver lost")
        status = bva(sandbox, tmp_path, "release", "status", "--env", "sandbox")
        out, _ = status.communicate(timeout=60)
        assert "driver lost" in out
        resume = bva(sandbox, tmp_path, "release", "resume", "--env", "sandbox")
        out, _ = resume.communicate(timeout=120)
        assert resume.returncode == 0, out
        assert "resumed by" in out and "finished" in out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert await image_of(platform, "auth-service") == "bharathva/auth-service:1.5.0"
    assert not await exists(platform, "auth-service-canary")
    journal = Journal(tmp_path / "journal" / "sandbox.jsonl", "sandbox")
    assert journal.verify().ok
    assert any(r.action == "release.resume" for r in journal.records())
    # One record for the release: the new driver carried on the one the killed driver began.
    (record,) = (tmp_path / "journal" / "releases").glob("r-*.json")
    doc = json.loads(record.read_text())
    assert doc["outcome"]["state"] == "finished" and doc["checklist"]["report"] is not None
    assert [p["phase"] for p in doc["phases"]] == [1, 2, 3]
    assert doc["phases"][0]["gates"]["auth-service"]["canary ready"]["passed"] >= 1
    assert doc["services"][0]["now_image"] == "bharathva/auth-service:1.5.0"
    assert doc["rollback"]["commands"] == [
        "bva rollback --env sandbox auth-service --to-revision 1"
    ]


def test_cli_usage_errors(tmp_path: Path) -> None:
    env = {**os.environ, "BVA_RUNTIME_DIR": str(tmp_path)}
    for args, needle in (
        (
            [
                "release",
                "start",
                "--service",
                "nope",
                "--version",
                "1",
                "--env",
                "staging",
                "--yes",
            ],
            "unknown service 'nope'",
        ),
        (
            [
                "release",
                "start",
                "--service",
                "auth-service",
                "--version",
                "bad tag!",
                "--env",
                "staging",
                "--yes",
            ],
            "not a valid image tag",
        ),
        (["release", "start", "--version", "1"], "--service"),
        (["release"], "release needs an action"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "tui", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 2, out.stderr
        assert needle in out.stderr and len(out.stderr.strip().splitlines()) == 1


async def test_manual_approval_waits_for_promote(platform: Platform, tmp_path: Path) -> None:
    await ready(platform)
    published: list[ReleaseView] = []
    driver, metrics, _ = driver_for(
        platform,
        tmp_path,
        ["discovery-service"],
        "1.8.0",
        hold=0.5,
        manual_approval=True,
        on_change=published.append,
    )
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:
        await until(
            lambda: driver.state is ReleaseState.AWAITING_APPROVAL,
            20,
            "awaiting approval after the first hold",
        )
        # Four driver ticks (two views published each): it waits, it does not move on.
        ticks = len(published)
        await until(
            lambda: len(published) >= ticks + 8 or driver.phase != 0, 20, "four driver ticks"
        )
        assert driver.phase == 0 and driver.state is ReleaseState.AWAITING_APPROVAL
        view = await read_release(platform.orchestrator, platform.services())
        assert view is not None and view.state is ReleaseState.AWAITING_APPROVAL
        await send_control(platform.orchestrator, platform.services(), "promote")
        await until(lambda: driver.phase == 1, 20, "approved: phase 2")
        await send_control(platform.orchestrator, platform.services(), "abort")
        assert await asyncio.wait_for(task, 20) is ReleaseState.ABORTED
    finally:
        task.cancel()
        await metrics.aclose()


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.9.0", ReleaseState.FINISHED), ("1.9.0-crash", ReleaseState.FAILED)],
)
async def test_rolling_strategy(
    platform: Platform,
    sandbox: RunningSandbox,
    tmp_path: Path,
    version: str,
    expected: ReleaseState,
) -> None:
    await ready(platform)
    patch = json.dumps({"spec": {"progressDeadlineSeconds": 3}})
    await asyncio.to_thread(
        subprocess.run,
        ["kubectl", "patch", "deployment/user-service", "--type=merge", "-p", patch],
        env=sandbox.env,
        check=True,
        capture_output=True,
    )
    driver, metrics, journal = driver_for(
        platform, tmp_path, ["user-service"], version, strategy="rolling"
    )
    await driver.start()
    state = await driver.run()
    await metrics.aclose()
    assert state is expected, driver.reason
    workload = await platform.orchestrator.get_workload("user-service")
    assert workload.image == f"bharathva/user-service:{version}"
    if expected is ReleaseState.FAILED:
        assert "exceeded its progress deadline" in driver.reason
    assert not await exists(platform, "user-service-canary")
    assert journal.verify().ok


async def metrics_endpoint(handler: Any) -> tuple[Any, str]:
    """A service's /actuator/prometheus served by ``handler`` on a local port: the runner to
    clean up and the URL."""
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/actuator/prometheus", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/actuator/prometheus"


async def test_a_thin_sample_waits_for_traffic_and_is_never_a_failure(
    platform: Platform, tmp_path: Path
) -> None:
    """A canary that sees three requests between scrapes, one of them failing (33 %): with
    a minimum of 1,000 requests no round is a verdict. The rounds wait while the hold runs;
    after it the release pauses for a human; no gate failure is ever counted."""
    from aiohttp import web

    scrapes = 0

    async def thin(_request: web.Request) -> web.Response:
        nonlocal scrapes
        scrapes += 1
        ok, bad = 2 * scrapes, scrapes
        text = "".join(
            f'http_server_requests_seconds_count{{status="{code}",track="canary"}} {n}\n'
            f'http_server_requests_seconds_bucket{{status="{code}",track="canary",le="+Inf"}} {n}\n'
            for code, n in (("200", ok), ("500", bad))
        )
        return web.Response(text=text, content_type="text/plain")

    runner, url = await metrics_endpoint(thin)
    await ready(platform)
    plan = make_plan(CFG, "sandbox", ["auth-service"], "1.6.0", holds=[3.0] * 3, gate_interval=0.5)
    plan = dataclasses.replace(plan, min_requests=1000)
    metrics = ScrapeMetrics({"auth-service": url}, min_window=0.2)
    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    driver = release_driver(platform, CFG, plan, metrics, journal, "tester@test")
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:
        await until(lambda: driver.state is ReleaseState.PAUSED, 30, "paused after the hold")
        assert driver.reason.startswith("inconclusive: too few requests (auth-service "), (
            driver.reason
        )
        assert driver.failed == 0
        waits = [e.text for e in driver.timeline if e.text.startswith("waiting for traffic")]
        assert waits, [e.text for e in driver.timeline]
        await send_control(platform.orchestrator, platform.services(), "abort")
        assert await asyncio.wait_for(task, 20) is ReleaseState.ABORTED
    finally:
        task.cancel()
        await metrics.aclose()
        await runner.cleanup()


async def test_no_data_is_inconclusive_and_pauses_for_a_human(
    platform: Platform, tmp_path: Path
) -> None:
    """A metrics endpoint that answers but has no canary series: no data, not a pass."""
    from aiohttp import web

    async def empty(_request: web.Request) -> web.Response:
        return web.Response(text="# no http_server_requests yet\n", content_type="text/plain")

    runner, url = await metrics_endpoint(empty)
    await ready(platform)
    plan = make_plan(CFG, "sandbox", ["auth-service"], "1.6.0", holds=[30.0] * 3, gate_interval=0.5)
    metrics = ScrapeMetrics({"auth-service": url}, min_window=0.5)
    journal = Journal(tmp_path / "journal.jsonl", "sandbox")
    driver = release_driver(platform, CFG, plan, metrics, journal, "tester@test")
    await driver.start()
    task = asyncio.create_task(driver.run())
    try:
        await until(lambda: driver.state is ReleaseState.PAUSED, 30, "paused on inconclusive gates")
        assert driver.reason.startswith("inconclusive")
        assert driver.failed == 0
        view = await read_release(platform.orchestrator, platform.services())
        assert view is not None and view.state is ReleaseState.PAUSED
        await send_control(platform.orchestrator, platform.services(), "abort")
        assert await asyncio.wait_for(task, 20) is ReleaseState.ABORTED
    finally:
        task.cancel()
        await metrics.aclose()
        await runner.cleanup()
