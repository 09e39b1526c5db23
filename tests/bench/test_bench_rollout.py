"""The Rollout screen benchmark: how soon a change in the sandbox shows on the Rollout screen
during a release, against how soon `kubectl rollout status -w` reports the same change.

Printed figures, never asserted thresholds: the test fails only when what it times never
happens (a release that does not finish, a change nobody reports). Run with

    cd /work/main && python -m pytest tests/bench/test_bench_rollout.py -m bench -s \
        -p no:xdist -o addopts=""

One sandbox (`start_sandbox`, speed 1), the app in-process (`run_test(size=(120, 36))`) on the
Rollout screen, and a few releases of auth-service driven by the app (the plan built here with
5 s holds, as `BvaApp.start_release` builds it otherwise). Meanwhile, in threads of this
process:

- a raw `kubernetes` watch on the namespace's Deployments, from the current resourceVersion:
  the receipt of each ADDED/MODIFIED event is the moment the sandbox made the change;
- `kubectl rollout status -w deployment/<name>` for the stable and the canary Deployment,
  launched whenever that Deployment's spec changes (kubectl exits once a rollout is complete,
  so it is relaunched for the canary's scale-up and the stable's promotion), every output line
  timestamped as it arrives.

`RolloutScreen.show` is wrapped on the screen instance to record (time, view) after it has
updated the widgets, and `App._display` to record the frames the compositor renders after.

Changes timed: (1) the canary's readyReplicas going up; (2) the stable Deployment's promotion:
its updated/available replicas moving, and the moment the rollout is complete. The screen
"reflects" a canary change on the first view whose progress shows that canary_ready, and the
promotion on the first FINISHED view; kubectl reports a change on its first line carrying the
status message kubectl computes for the new state (the rules of kubectl's
`DeploymentStatusViewer`, re-implemented in `kubectl_message`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backends.config.loader import builtin_platform_path, load_platform
from backends.platform import Platform, open_platform
from backends.release.models import ReleaseState, ReleaseView
from backends.release.plan import canary_name
from tests.bench.helpers import Kube, Table, kube_client, ms, percentile, raw_json, secs
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state, start_sandbox
from tests.support.waiting import until

pytestmark = pytest.mark.bench

SERVICE = "auth-service"
HOLD_S = 5.0
# (version, gate_interval): the brief's 1 s gate interval, then the sandbox's own 5 s for
# contrast (ScrapeMetrics waits for a 2 s window inside the driver's tick, see the README).
RELEASES = [
    ("1.1.0", 1.0),
    ("1.1.1", 1.0),
    ("1.1.2", 1.0),
    ("1.1.3", 5.0),
    ("1.1.4", 5.0),
]
RELEASE_TIMEOUT_S = 60.0
SETTLE_S = 1.0
WATCH_TIMEOUT_S = 30

TABLE = Table()


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print("\n\n" + TABLE.render("bva Rollout screen benchmark"), flush=True)


# -- kubectl's rules ------------------------------------------------------------------------


def kubectl_message(dep: dict[str, Any]) -> str:
    """What `kubectl rollout status` prints for this Deployment (kubectl's
    DeploymentStatusViewer.Status, without the progress-deadline error)."""
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    name = meta.get("name", "")
    if int(meta.get("generation") or 0) <= int(status.get("observedGeneration") or 0):
        updated = int(status.get("updatedReplicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        replicas = int(status.get("replicas") or 0)
        want = spec.get("replicas")
        if want is not None and updated < int(want):
            return (
                f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} '
                "new replicas have been updated..."
            )
        if replicas > updated:
            return (
                f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old '
                "replicas are pending termination..."
            )
        if available < updated:
            return (
                f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} '
                "updated replicas are available..."
            )
        return f'deployment "{name}" successfully rolled out'
    return "Waiting for deployment spec update to be observed..."


# -- the watch and kubectl, in threads ------------------------------------------------------


@dataclass
class Event:
    ts: float
    type: str
    name: str
    generation: int
    spec_replicas: int
    replicas: int
    updated: int
    ready: int
    available: int
    image: str
    message: str


def _event(ts: float, type_: str, dep: dict[str, Any]) -> Event:
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return Event(
        ts=ts,
        type=type_,
        name=str(meta.get("name", "")),
        generation=int(meta.get("generation") or 0),
        spec_replicas=int(spec.get("replicas") or 0),
        replicas=int(status.get("replicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        image=",".join(str(c.get("image", "")) for c in containers),
        message=kubectl_message(dep),
    )


@dataclass
class KubectlRun:
    name: str
    started: float
    proc: subprocess.Popen[str]
    lines: list[tuple[float, str]] = field(default_factory=list)
    ended: float = math.nan


class Kubectls:
    """`kubectl rollout status -w deployment/<name>`, one at a time per Deployment, lines
    timestamped on arrival."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self.runs: list[KubectlRun] = []
        self._threads: list[threading.Thread] = []

    def running(self, name: str) -> bool:
        with self._lock:
            return any(r.name == name and r.proc.poll() is None for r in self.runs)

    def start(self, name: str) -> None:
        if self.running(name):
            return
        cmd = [
            "kubectl",
            "rollout",
            "status",
            "-w",
            f"deployment/{name}",
            "-n",
            self._sandbox.namespace,
        ]
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=self._sandbox.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        run = KubectlRun(name, started, proc)
        with self._lock:
            self.runs.append(run)
        thread = threading.Thread(target=self._read, args=(run,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read(self, run: KubectlRun) -> None:
        assert run.proc.stdout is not None
        for line in run.proc.stdout:
            run.lines.append((time.perf_counter(), line.rstrip("\n")))
        run.proc.wait()
        run.ended = time.perf_counter()

    def idle(self) -> bool:
        with self._lock:
            return all(r.proc.poll() is not None for r in self.runs)

    def stop(self) -> None:
        with self._lock:
            runs = list(self.runs)
        for r in runs:
            if r.proc.poll() is None:
                r.proc.terminate()
                try:
                    r.proc.wait(5)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
                    r.proc.wait(5)
        for t in self._threads:
            t.join(5)


class DeploymentWatch:
    """A raw watch on the namespace's Deployments from the current resourceVersion, in a
    thread; relaunches the kubectl watchers of `names` whenever their spec changes."""

    def __init__(self, kube: Kube, namespace: str, names: set[str], kubectls: Kubectls) -> None:
        self._kube = kube
        self._ns = namespace
        self._names = names
        self._kubectls = kubectls
        self.events: list[Event] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._watch: Any = None
        self._spec: dict[str, tuple[int, int, str]] = {}
        listing = raw_json(kube.apps.list_namespaced_deployment(namespace, _preload_content=False))
        self._rv = str(listing["metadata"]["resourceVersion"])
        now = time.perf_counter()
        for dep in listing["items"]:
            ev = _event(now, "LISTED", dep)
            self.events.append(ev)
            self._spec[ev.name] = (ev.generation, ev.spec_replicas, ev.image)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from kubernetes import watch as watch_module

        watch: Any = watch_module  # unannotated

        while not self._stop.is_set():
            self._watch = watch.Watch()
            try:
                for raw_event in self._watch.stream(
                    self._kube.apps.list_namespaced_deployment,
                    self._ns,
                    resource_version=self._rv,
                    timeout_seconds=WATCH_TIMEOUT_S,
                    deserialize=False,
                ):
                    ts = time.perf_counter()
                    type_, obj = raw_event.get("type"), raw_event.get("object") or {}
                    if type_ == "ERROR":
                        self.errors.append(json.dumps(obj)[:200])
                        break
                    self._rv = str((obj.get("metadata") or {}).get("resourceVersion", self._rv))
                    self._on(ts, str(type_), obj)
                    if self._stop.is_set():
                        break
            except Exception as exc:  # the response closed under us at stop, or a hiccup
                if not self._stop.is_set():
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    time.sleep(0.1)

    def _on(self, ts: float, type_: str, obj: dict[str, Any]) -> None:
        ev = _event(ts, type_, obj)
        self.events.append(ev)
        if ev.name not in self._names:
            return
        if type_ == "DELETED":
            self._spec.pop(ev.name, None)
            return
        spec = (ev.generation, ev.spec_replicas, ev.image)
        if type_ == "ADDED" or self._spec.get(ev.name) != spec:
            self._spec[ev.name] = spec
            self._kubectls.start(ev.name)

    def stop(self) -> None:
        self._stop.set()
        w = self._watch
        if w is not None:
            w.stop()
            resp = getattr(w, "_resp", None)
            if resp is not None:
                with contextlib.suppress(Exception):
                    resp.close()
        self._thread.join(WATCH_TIMEOUT_S + 5)


# -- matching changes to reports ------------------------------------------------------------


@dataclass
class Change:
    kind: str  # "canary ready", "stable step", "stable complete"
    release: int
    gate_interval: float
    event: Event
    screen_show: float = math.nan  # seconds after the change: show() drew it
    screen_frame: float = math.nan  # ... and the next frame was rendered
    kubectl: float = math.nan  # seconds after the change: kubectl printed it
    kubectl_note: str = ""


@dataclass
class KubectlLines:
    """kubectl's lines paired with the watch's events. kubectl prints one line for its initial
    list and then one per ADDED/MODIFIED event of its Deployment, in the order the API sent
    them: the same events, in the same order, as this process's watch. A run that ended with
    "successfully rolled out" is paired from that last line backwards (timestamps alone cannot
    order a burst of events a millisecond apart against kubectl's lines)."""

    line_for: dict[int, float] = field(default_factory=dict)  # id(event) -> line time
    initial: dict[int, float] = field(default_factory=dict)  # the event kubectl listed first
    initial_ts: dict[str, list[float]] = field(default_factory=dict)  # name -> listed event ts
    unpaired_runs: int = 0

    @classmethod
    def pair(cls, events: list[Event], runs: list[KubectlRun]) -> KubectlLines:
        out = cls()
        for run in runs:
            lines = run.lines
            evs = [e for e in events if e.name == run.name and e.type in ("ADDED", "MODIFIED")]
            if not lines or not lines[-1][1].endswith("successfully rolled out"):
                out.unpaired_runs += 1
                continue
            last_ts, last_text = lines[-1]
            ends = [k for k, e in enumerate(evs) if e.message == last_text]
            ends = [k for k in ends if abs(evs[k].ts - last_ts) < 0.5]
            if not ends:
                out.unpaired_runs += 1
                continue
            k = min(ends, key=lambda j: abs(evs[j].ts - last_ts))
            n = len(lines) - 1
            if k - n < 0 or any(evs[k - j].message != lines[n - j][1] for j in range(n)):
                out.unpaired_runs += 1
                continue
            for j in range(n):
                out.line_for[id(evs[k - j])] = lines[n - j][0]
            out.initial[id(evs[k - n])] = lines[0][0]
            out.initial_ts.setdefault(run.name, []).append(evs[k - n].ts)
        return out

    def latency(self, change: Event, history: list[Event]) -> tuple[float, str]:
        before = [e for e in history if e.name == change.name and e.ts < change.ts]
        if before and before[-1].message == change.message:
            return math.nan, "kubectl's message did not change"
        if id(change) in self.line_for:
            return self.line_for[id(change)] - change.ts, ""
        if id(change) in self.initial or any(
            0 <= t - change.ts < 2.0 for t in self.initial_ts.get(change.name, [])
        ):
            return math.nan, "happened before kubectl was watching"
        return math.nan, "no kubectl line"


def first_after(times: list[float], t: float) -> float:
    return next((x for x in times if x > t), math.nan)


def trio(values: list[float]) -> str:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return "n/a"
    return f"{ms(percentile(v, 50))} / {ms(percentile(v, 99))} / {ms(max(v))}"


def count(values: list[float]) -> int:
    return sum(not math.isnan(x) for x in values)


# -- the benchmark --------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    t = time.perf_counter()
    sb = start_sandbox(tmp_path / "sb", speed=1.0, seed=7)
    TABLE.add(
        "setup", "sandbox (5 services, speed 1): launch → ready", secs(time.perf_counter() - t)
    )
    try:
        yield sb
    finally:
        sb.stop()


async def test_rollout_screen_vs_kubectl(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screens.rollout import RolloutScreen
    from tui.app import AppSettings, make_app

    monkeypatch.setenv("BVA_JOURNAL_DIR", str(tmp_path / "journal"))
    cfg = load_platform(builtin_platform_path())
    state = read_sandbox_state(sandbox.runtime_dir)
    stable_name = dict((s.name, s.deployment_name) for s in cfg.services)[SERVICE]
    canary = canary_name(stable_name)

    async def opener() -> Platform:
        return open_platform(cfg, "sandbox", sandbox=state)

    app = make_app(
        AppSettings(
            env="sandbox",
            poll_interval=5.0,
            platform_label=cfg.name,
            environment_label="sandbox",
            open_platform=opener,
        )
    )
    kube = kube_client(sandbox.kubeconfig)
    kubectls = Kubectls(sandbox)
    watcher: DeploymentWatch | None = None
    shows: list[tuple[float, ReleaseView | None]] = []
    frames: list[float] = []
    show_cost: list[float] = []
    windows: list[tuple[int, float, str, float, float, float]] = []  # i, gate, rid, t0, t1, dur
    samples: list[tuple[float, float]] = []  # (gate_interval, metrics.sample duration)
    outcomes: dict[int, tuple[int, int]] = {}  # release -> (samples passed, failed)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            platform = await app.platform()
            deadline = time.monotonic() + 30
            while True:
                w = await platform.orchestrator.get_workload(stable_name)
                if w.available == w.desired:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{stable_name} never available: {w}")
                await asyncio.sleep(0.1)
            await pilot.press("2")
            await until(
                lambda: isinstance(app.screen, RolloutScreen) and app.screen.polls > 0,
                15,
                "the Rollout screen polls",
            )
            screen = app.screen
            assert isinstance(screen, RolloutScreen)
            original_show = screen.show

            def show(view: ReleaseView | None) -> None:
                t = time.perf_counter()
                original_show(view)
                done = time.perf_counter()
                shows.append((done, view))
                show_cost.append(done - t)

            screen.show = show  # type: ignore[method-assign]
            original_display = app._display

            def display(scr: Any, renderable: Any) -> None:
                original_display(scr, renderable)
                if renderable is not None:
                    frames.append(time.perf_counter())

            setattr(app, "_display", display)  # noqa: B010 - an instance attribute shadows it

            watcher = DeploymentWatch(kube, sandbox.namespace, {stable_name, canary}, kubectls)
            watcher.start()

            session = app.release_session()
            assert session is not None
            gate_now = [0.0]
            metrics = platform.metrics
            original_sample = metrics.sample

            async def timed_sample(service: str, track: str) -> Any:
                t = time.perf_counter()
                try:
                    return await original_sample(service, track)
                finally:
                    samples.append((gate_now[0], time.perf_counter() - t))

            metrics.sample = timed_sample  # type: ignore[method-assign]
            for i, (version, gate) in enumerate(RELEASES):
                plan = session.plan([SERVICE], version, holds=[HOLD_S] * 3, gate_interval=gate)
                gate_now[0] = gate
                t0 = time.perf_counter()
                # Driven the way the console drives it: the session's driver, whose changes
                # reach the Rollout screen as ReleaseChanged messages.
                driver = await session.start(plan)
                try:
                    await asyncio.wait_for(driver.run(), RELEASE_TIMEOUT_S)
                except TimeoutError:
                    timeline = "\n".join(f"  {e.level} {e.text}" for e in driver.timeline)
                    why = f"release {version} still {driver.state}:\n{timeline}"
                    raise AssertionError(why) from None
                dur = time.perf_counter() - t0
                assert driver.state is ReleaseState.FINISHED, (driver.state, driver.reason)
                await until(kubectls.idle, 15, "kubectl rollout status exits")
                await asyncio.sleep(SETTLE_S)
                windows.append((i, gate, plan.release_id, t0, time.perf_counter(), dur))
                failures = [e.text for e in driver.timeline if e.level == "error"]
                outcomes[i] = (driver.passed, driver.failed)
                print(
                    f"[bench] release {version} (gate {gate:g} s): {dur:.1f} s, samples "
                    f"{driver.passed} passed / {driver.failed} failed {failures}",
                    flush=True,
                )
            delattr(app, "_display")
    finally:
        if watcher is not None:
            watcher.stop()
        kubectls.stop()
        kube.close()

    assert watcher is not None
    events = sorted(watcher.events, key=lambda e: e.ts)
    runs = list(kubectls.runs)
    paired = KubectlLines.pair(events, runs)
    frame_times = sorted(frames)
    changes: list[Change] = []
    promo_spans: list[tuple[float, int, int]] = []  # (frozen s, stable steps, distinct views)
    publish_gaps: list[tuple[float, float]] = []  # (gate_interval, s between distinct views)

    for i, gate, rid, t0, t1, _dur in windows:
        in_window = [e for e in events if t0 <= e.ts <= t1]
        views = [
            (t, v) for t, v in shows if t0 <= t <= t1 and v is not None and v.release_id == rid
        ]
        # (1) the canary's readiness going up
        prev = 0
        for e in (e for e in in_window if e.name == canary):
            if e.type == "DELETED":
                break
            if e.ready > prev:
                c = Change("canary ready", i, gate, e)
                hit = next(
                    (
                        t
                        for t, v in views
                        if any(
                            p.service == SERVICE and p.canary_ready >= e.ready for p in v.progress
                        )
                        and v.state is not ReleaseState.FINISHED
                    ),
                    None,
                )
                if hit is not None:
                    c.screen_show = hit - e.ts
                    c.screen_frame = first_after(frame_times, hit) - e.ts
                c.kubectl, c.kubectl_note = paired.latency(e, events)
                changes.append(c)
            prev = max(prev, e.ready)
        # (2) the stable's promotion: every updated/available step, then complete
        stable = [e for e in in_window if e.name == stable_name]
        bump = next(
            (k for k, e in enumerate(stable) if e.image.endswith(":" + RELEASES[i][0])), None
        )
        assert bump is not None, f"release {i}: the stable's image change was never seen"
        prior = [e for e in events if e.name == stable_name and e.ts < stable[bump].ts]
        last = (prior[-1].updated, prior[-1].available) if prior else (-1, -1)
        steps = 0
        complete: Event | None = None
        for e in stable[bump:]:
            if (e.updated, e.available) != last:
                last = (e.updated, e.available)
                done = e.message.endswith("successfully rolled out")
                c = Change("stable complete" if done else "stable step", i, gate, e)
                c.kubectl, c.kubectl_note = paired.latency(e, events)
                if done:
                    complete = e
                    hit = next((t for t, v in views if v.state is ReleaseState.FINISHED), None)
                    if hit is not None:
                        c.screen_show = hit - e.ts
                        c.screen_frame = first_after(frame_times, hit) - e.ts
                else:
                    steps += 1
                changes.append(c)
                if done:
                    break
        assert complete is not None, f"release {i}: the stable never completed"
        first_seen: dict[int, float] = {}
        for t, v in views:
            if v.state is ReleaseState.RUNNING:
                first_seen.setdefault(id(v), t)
        seen = sorted(first_seen.values())
        publish_gaps.extend((gate, b - a) for a, b in itertools.pairwise(seen))
        promoting = [t for t, v in views if v.state is ReleaseState.PROMOTING]
        finished = next((t for t, v in views if v.state is ReleaseState.FINISHED), math.nan)
        distinct = len(
            {(v.progress, v.state) for t, v in views if v.state is ReleaseState.PROMOTING}
        )
        if promoting:
            promo_spans.append((finished - promoting[0], steps, distinct))

    for c in changes:
        print(
            f"[change] r{c.release} gate {c.gate_interval:g}s {c.kind:15} "
            f"ready={c.event.ready} upd={c.event.updated} avail={c.event.available}: "
            f"screen {ms(c.screen_show)} (frame {ms(c.screen_frame)}), "
            f"kubectl {ms(c.kubectl)} {c.kubectl_note}".rstrip(),
            flush=True,
        )

    def notes(cs: list[Change]) -> str:
        why: dict[str, int] = {}
        for c in cs:
            if c.kubectl_note:
                why[c.kubectl_note] = why.get(c.kubectl_note, 0) + 1
        return "; ".join(f"{n} {k}" for k, n in sorted(why.items()))

    for gate in sorted({g for _, g in RELEASES}):
        section = f"gate {gate:g} s, holds {HOLD_S:g} s"
        mine = [c for c in changes if c.gate_interval == gate]
        durs = [w[5] for w in windows if w[1] == gate]
        TABLE.add(
            section,
            f"releases of {SERVICE} (5→25→50→100 %)",
            str(len(durs)),
            "durations "
            + ", ".join(f"{d:.1f}" for d in durs)
            + " s; samples passed/failed "
            + ", ".join(
                f"{outcomes[w[0]][0]}/{outcomes[w[0]][1]}" for w in windows if w[1] == gate
            ),
        )
        for kind, label in (
            ("canary ready", "canary ready ↑"),
            ("stable complete", "stable rollout complete"),
            ("", "both kinds"),
        ):
            cs = [c for c in mine if c.kind == kind or (not kind and c.kind != "stable step")]
            scr = [c.screen_show for c in cs]
            frm = [c.screen_frame for c in cs]
            kc = [c.kubectl for c in cs]
            TABLE.add(
                section,
                f"{label}: screen drawn, p50 / p99 / max",
                trio(scr),
                f"{count(scr)} of {len(cs)} changes; to the next frame {trio(frm)}",
            )
            TABLE.add(
                section,
                f"{label}: kubectl line, p50 / p99 / max",
                trio(kc),
                f"{count(kc)} of {len(cs)} changes" + (f" ({notes(cs)})" if notes(cs) else ""),
            )
        pubs = [d for g, d in publish_gaps if g == gate]
        TABLE.add(
            section,
            "driver publishes while running: interval p50 / max",
            f"{ms(percentile(pubs, 50))} / {ms(max(pubs, default=math.nan))}",
            f"{len(pubs)} intervals between distinct views (driver tick 0.5 s)",
        )
        mine_samples = [d for g, d in samples if g == gate]
        TABLE.add(
            section,
            "metrics.sample() inside the driver tick, p50 / max",
            f"{ms(percentile(mine_samples, 50))} / {ms(max(mine_samples, default=math.nan))}",
            f"{len(mine_samples)} samples (ScrapeMetrics min_window 2 s)",
        )

    section = "promotion (all releases)"
    stable_steps = [c for c in changes if c.kind == "stable step"]
    kc = [c.kubectl for c in stable_steps]
    TABLE.add(
        section,
        "stable updated/available steps: kubectl line, p50 / p99 / max",
        trio(kc),
        f"{count(kc)} of {len(stable_steps)} steps"
        + (f" ({notes(stable_steps)})" if notes(stable_steps) else ""),
    )
    TABLE.add(
        section,
        "stable steps drawn by the screen",
        f"0 of {len(stable_steps)}",
        "one PROMOTING view per release, distinct views while promoting: "
        + ", ".join(str(d) for _, _, d in promo_spans),
    )
    TABLE.add(
        section,
        "screen frozen: PROMOTING view → FINISHED view",
        ", ".join(f"{x:.1f}" for x, _, _ in promo_spans) + " s",
        "stable steps in between: " + ", ".join(str(n) for _, n, _ in promo_spans),
    )
    views_drawn = {id(v) for _, v in shows}
    TABLE.add(
        "screen",
        "show() calls per published view / cost p50 / p99",
        f"{len(shows) / max(len(views_drawn), 1):.1f} / {ms(percentile(show_cost, 50))} / "
        f"{ms(percentile(show_cost, 99))}",
        f"{len(shows)} calls, {len(views_drawn)} views, {len(frame_times)} frames rendered",
    )
    TABLE.add(
        "watch",
        "events seen / kubectl runs",
        f"{len(events)} / {len(runs)}",
        f"{paired.unpaired_runs} run(s) not paired with events; watch errors "
        f"{len(watcher.errors)}" + (f" ({watcher.errors[0]})" if watcher.errors else ""),
    )
    canaries = [c for c in changes if c.kind == "canary ready"]
    assert canaries and any(not math.isnan(c.screen_show) for c in canaries), "nothing shown"
