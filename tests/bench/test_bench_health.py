"""The Health screen benchmark: how fast `bva --sandbox` shows data, what it imports on the way,
what it costs while idle, and how the screen copes with 200 services.

Printed figures, never asserted thresholds: a test here fails only when the thing it times
never happens (no first frame, services that never come up, data that never arrives). Run with

    cd /work/main && python -m pytest tests/bench/test_bench_health.py -m bench -s \
        -p no:xdist -o addopts=""

and read the table printed at the end. Sections 1 and 3 run the real `bva --sandbox` in a
private tmux server (`tmux -L <name>`, 120 x 36) and read the pane with `capture-pane`;
section 2 imports in fresh interpreters; section 4 builds the app in-process on a generated
200-service sandbox. The module takes about 3 minutes on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backends.config.loader import load_platform
from backends.health.models import ProbeStatus
from backends.platform import Platform, open_platform
from backends.status.monitor import HealthPicture
from tests.bench.helpers import (
    Table,
    cpu_seconds,
    median,
    ms,
    percentile,
    rss_kib,
    runs,
    scale_platform,
    secs,
)
from tests.bench.tmux_pane import alive, cmdline, descendants
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state, start_sandbox
from tests.support.waiting import wait_until

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("discovery-service", "auth-service", "user-service", "tweet-service", "gateway-service")
LAUNCH_RUNS = 5
POLL_S = 0.02
FIRST_FRAME_TIMEOUT_S = 20.0
ALL_UP_TIMEOUT_S = 40.0
QUIT_TIMEOUT_S = 15.0
IDLE_WINDOW_S = 60.0
IDLE_SETTLE_S = 3.0
IMPORT_RUNS = 3
HEAVY = ("kubernetes", "docker", "psycopg")
SCALE_SERVICES = 200
SCALE_REPLICAS = 2
REDRAW_CALLS = 50
SWEEPS = 5
KEY_PRESSES = 50
KEY_GAP_S = 0.1
APP_IDLE_S = 10.0
LAG_TICK_S = 0.005
LAG_WINDOW_S = 5.0
BADGES = ("✔ UP", "✖ DOWN", "✖ OUT", "✖ UNREACH", "? UNKNOWN")  # widgets/badges.py

TABLE = Table()


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print("\n\n" + TABLE.render("bva Health screen benchmark"), flush=True)


# -- processes ------------------------------------------------------------------------------


# -- bva in tmux ----------------------------------------------------------------------------


def _bva() -> str:
    path = shutil.which("bva")
    if path is None:
        pytest.fail("`bva` is not on PATH (pip install -e /work/main)")
    return path


def _table_rows(screen: str) -> dict[str, str]:
    """service -> health badge ("✔ UP", "✖ DOWN", ...), read from the services table of a
    captured pane (the detail title below the table repeats one badge: it is not counted)."""
    lines = screen.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if "SERVICE" in line and "HEALTH" in line), None
    )
    rows: dict[str, str] = {}
    if start is None:
        return rows
    for line in lines[start + 1 :]:
        if line.startswith("─") or not line.strip():
            break
        parts = line.split()
        if len(parts) >= 3 and parts[0] in SERVICES:
            badge = f"{parts[1]} {parts[2]}"
            if badge in BADGES:
                rows[parts[0]] = badge
    return rows


def _all_up(screen: str) -> bool:
    rows = _table_rows(screen)
    return all(rows.get(s) == "✔ UP" for s in SERVICES)


def _detail_title(screen: str) -> str:
    """The line under the services table: the selected service and why it is not UP."""
    lines = screen.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("─")), None)
    return lines[rule + 1].strip() if rule is not None and rule + 1 < len(lines) else ""


def _first_frame(screen: str) -> bool:
    lines = screen.splitlines()
    return bool(lines) and "bva" in lines[0]


@dataclass
class TmuxBva:
    """`bva --sandbox` in a private tmux server, and the processes it runs."""

    tmp: Path
    socket: str = field(default_factory=lambda: f"bva-bench-{os.getpid()}-{time.monotonic_ns()}")
    session: str = "bench"
    t0: float = 0.0
    bva_pid: int = 0
    child_pids: list[int] = field(default_factory=list)
    embedded_dirs: list[str] = field(default_factory=list)
    down_detail: str = ""  # the detail line under the table the first time rows were DOWN

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )

    def launch(self) -> None:
        runtime = self.tmp / "runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        cmd = f"BVA_RUNTIME_DIR={shlex.quote(str(runtime))} exec {shlex.quote(_bva())} --sandbox"
        self.t0 = time.perf_counter()
        self.tmux("new-session", "-d", "-s", self.session, "-x", "120", "-y", "36", cmd)

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session, check=False).stdout

    def wait_for(self, pred: Callable[[str], bool], timeout: float, what: str) -> tuple[float, str]:
        """Seconds from launch to the first captured frame satisfying `pred`, and that frame."""
        last = [""]

        def matches() -> bool:
            last[0] = self.capture()
            return pred(last[0])

        wait_until(matches, timeout, what, interval=POLL_S, detail=lambda: "\n" + last[0])
        return time.perf_counter() - self.t0, last[0]

    def states_until_all_up(self, timeout: float) -> list[tuple[float, str]]:
        """Every change of the services table until all 5 are ✔ UP: (seconds from launch,
        summary like "5 ✖ DOWN" or "3 ✔ UP, 2 ? UNKNOWN"), from the first frame with 5 rows."""
        deadline = time.monotonic() + timeout
        states: list[tuple[float, str]] = []
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            rows = _table_rows(screen)
            if len(rows) == len(SERVICES):
                counts = sorted({b: list(rows.values()).count(b) for b in rows.values()}.items())
                summary = ", ".join(f"{n} {badge}" for badge, n in counts)
                if not states or states[-1][1] != summary:
                    states.append((time.perf_counter() - self.t0, summary))
                    if "DOWN" in summary and not self.down_detail:
                        self.down_detail = _detail_title(screen)
                if _all_up(screen):
                    return states
            time.sleep(POLL_S)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for all 5 UP:\n{screen}")

    def find_processes(self) -> None:
        """The bva process (the pane's, after the shell and the pyenv shim exec'd) and its
        embedded sandbox child (`bva-embedded-` in its command line)."""
        pane = int(self.tmux("display", "-p", "-t", self.session, "#{pane_pid}").stdout.strip())
        candidates = [pane, *descendants(pane)]
        self.bva_pid = next(
            p for p in candidates if "--sandbox" in cmdline(p) and "bva-embedded-" not in cmdline(p)
        )
        self.child_pids = [p for p in descendants(self.bva_pid) if "bva-embedded-" in cmdline(p)]
        cmdlines = " ".join(map(cmdline, self.child_pids))
        self.embedded_dirs = sorted(set(re.findall(r"(/\S*/bva-embedded-[^/\s]+)", cmdlines)))

    def quit(self) -> tuple[float, list[int]]:
        """Press q; seconds until bva and its sandbox child are gone, and the stragglers
        (killed by pid after QUIT_TIMEOUT_S)."""
        pids = [self.bva_pid, *self.child_pids]
        t = time.perf_counter()
        self.tmux("send-keys", "-t", self.session, "q", check=False)
        deadline = time.monotonic() + QUIT_TIMEOUT_S
        while time.monotonic() < deadline and any(alive(p) for p in pids if p):
            time.sleep(POLL_S)
        took = time.perf_counter() - t
        stragglers = [p for p in pids if p and alive(p)]
        # Anything else still running from this run's embedded sandbox dir.
        for entry in os.listdir("/proc"):
            if entry.isdigit() and any(d in cmdline(int(entry)) for d in self.embedded_dirs):
                stragglers.append(int(entry))
        for pid in set(stragglers):
            os.kill(pid, signal.SIGKILL)
        return took, sorted(set(stragglers))

    def close(self) -> None:
        for pid in [self.bva_pid, *self.child_pids]:
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.tmux("kill-server", check=False)
        # The server leaves its socket file behind; it is ours (named after this run).
        base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (base / self.socket).unlink(missing_ok=True)


@pytest.fixture
def tmux_bva(tmp_path: Path) -> Iterator[Callable[[str], TmuxBva]]:
    made: list[TmuxBva] = []

    def make(name: str) -> TmuxBva:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is required for this benchmark")
        run = TmuxBva(tmp_path / name)
        made.append(run)
        return run

    try:
        yield make
    finally:
        for run in made:
            run.close()


# -- 1. launch to first frame with data -------------------------------------------------------


def test_launch_to_first_frame(tmux_bva: Callable[[str], TmuxBva]) -> None:
    section = "1. launch (tmux 120x36)"
    # The floor under every launch: the interpreter, the pyenv shim and argparse.
    version = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([_bva(), "--version"], capture_output=True, check=True)
        version.append(time.perf_counter() - t)

    first, rows_at, probed_at, up_at, quits = [], [], [], [], []
    sequences: list[str] = []
    problems: list[str] = []
    for i in range(LAUNCH_RUNS):
        run = tmux_bva(f"launch{i}")
        run.launch()
        t_first, _ = run.wait_for(_first_frame, FIRST_FRAME_TIMEOUT_S, "the first frame")
        states = run.states_until_all_up(ALL_UP_TIMEOUT_S)
        t_rows = states[0][0]
        t_probed = next(t for t, summary in states if "UNKNOWN" not in summary)
        t_up = states[-1][0]
        run.find_processes()
        if not run.child_pids:
            problems.append(f"run {i}: no bva-embedded- child found")
        took, stragglers = run.quit()
        leftover = [d for d in run.embedded_dirs if Path(d).exists()]
        if stragglers:
            problems.append(f"run {i}: killed {len(stragglers)} process(es) left after q")
        if leftover:
            problems.append(f"run {i}: {leftover[0]} left behind")
        run.close()
        first.append(t_first)
        rows_at.append(t_rows)
        probed_at.append(t_probed)
        up_at.append(t_up)
        quits.append(took)
        sequences.append(" → ".join(summary for _, summary in states))
        print(
            f"[bench] run {i}: first frame {t_first:.2f}s, rows "
            + ", ".join(f"{summary} at {t:.2f}s" for t, summary in states)
            + f"; quit {took:.2f}s; first DOWN detail: {run.down_detail!r}",
            flush=True,
        )

    TABLE.add(
        section,
        "`bva --version` (interpreter + CLI), median of 3",
        secs(median(version)),
        runs(version),
    )
    TABLE.add(
        section,
        "launch → first frame (header with `bva`), median of 5",
        secs(median(first)),
        runs(first),
    )
    TABLE.add(
        section,
        "launch → first frame with 5 health rows, median",
        secs(median(rows_at)),
        runs(rows_at),
    )
    TABLE.add(
        section,
        "launch → first frame with all 5 probed, median",
        secs(median(probed_at)),
        f"{runs(probed_at)}; rows went " + max(set(sequences), key=sequences.count),
    )
    TABLE.add(section, "launch → all 5 services ✔ UP, median", secs(median(up_at)), runs(up_at))
    TABLE.add(
        section,
        "`q` → bva and sandbox child gone, median",
        secs(median(quits)),
        f"{runs(quits)}; " + ("; ".join(problems) if problems else "no stragglers"),
    )


# -- 2. import cost --------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, sys, time
t = time.perf_counter()
import {mods}
wall = time.perf_counter() - t
print(json.dumps({{"wall": wall, "loaded": [m for m in {watch!r} if m in sys.modules],
                  "count": len(sys.modules)}}))
"""

# What `bva --sandbox` imports before the App runs (tui/cli.py cmd_tui).
CLI_PATH = (
    "tui.cli, backends.config.loader, backends.platform, backends.sandbox.platform_settings, "
    "tui.app, tui.sandbox_child"
)
# Not forbidden, but worth knowing about on the way to the first frame: the HTTP clients and
# the sandbox's own server (which runs in the child process, not in the UI).
ALSO_WATCHED = ("httpx", "aiohttp", "backends.sandbox.runner")


def _group(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "backends" and len(parts) > 2 else parts[0]


def _importtime(mods: str) -> tuple[dict[str, Any], dict[str, int]]:
    """One fresh interpreter: its JSON report, and the importtime self µs summed per package
    (`backends.<subpackage>` kept apart, so the sandbox shows on its own)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            _IMPORT_PROBE.format(mods=mods, watch=(*HEAVY, *ALSO_WATCHED)),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    groups: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            key = _group(m.group(2))
            groups[key] = groups.get(key, 0) + int(m.group(1))
    return json.loads(proc.stdout.strip().splitlines()[-1]), groups


def test_import_cost() -> None:
    section = "2. imports"
    for label, mods in (("`import tui.app`", "tui.app"), ("cmd_tui's imports", CLI_PATH)):
        measured = [_importtime(mods) for _ in range(IMPORT_RUNS)]
        walls = [report["wall"] for report, _ in measured]
        # The per-package split of the median run.
        report, groups = sorted(measured, key=lambda m: float(m[0]["wall"]))[IMPORT_RUNS // 2]
        heaviest = sorted(groups.items(), key=lambda kv: -kv[1])[:6]
        heavy = [m for m in report["loaded"] if m in HEAVY]
        also = [m for m in report["loaded"] if m in ALSO_WATCHED]
        TABLE.add(
            section,
            f"{label}, wall, median of {IMPORT_RUNS}",
            ms(median(walls)),
            f"{runs(walls, 'ms', 1000, 0)}; {report['count']} modules in sys.modules",
        )
        TABLE.add(
            section,
            f"{label}: kubernetes / docker / psycopg loaded",
            ", ".join(heavy) or "none",
            "also loaded: " + (", ".join(also) or "none"),
        )
        TABLE.add(
            section,
            f"{label}: importtime by package (self time)",
            f"{sum(groups.values()) / 1000:.0f} ms",
            ", ".join(f"{k} {v / 1000:.0f}" for k, v in heaviest) + " ms",
        )


# -- 3. idle CPU -----------------------------------------------------------------------------


def test_idle_cpu(tmux_bva: Callable[[str], TmuxBva]) -> None:
    section = "3. idle (5 services)"
    run = tmux_bva("idle")
    run.launch()
    run.wait_for(_all_up, ALL_UP_TIMEOUT_S, "all 5 services ✔ UP")
    run.find_processes()
    assert run.child_pids, "the embedded sandbox child was not found"
    child = run.child_pids[0]
    time.sleep(IDLE_SETTLE_S)
    a0, c0, t0 = cpu_seconds(run.bva_pid), cpu_seconds(child), time.monotonic()
    time.sleep(IDLE_WINDOW_S)
    a1, c1, t1 = cpu_seconds(run.bva_pid), cpu_seconds(child), time.monotonic()
    app_rss, app_hwm = rss_kib(run.bva_pid)
    child_rss, _ = rss_kib(child)
    still_up = _all_up(run.capture())
    took, stragglers = run.quit()
    run.close()
    window = t1 - t0
    TABLE.add(
        section,
        f"bva process CPU over {window:.0f} s, Health screen open",
        f"{100 * (a1 - a0) / window:.1f} % of a core",
        f"{a1 - a0:.2f} s CPU; all UP at the end: {still_up}",
    )
    TABLE.add(
        section,
        "sandbox child CPU, same window",
        f"{100 * (c1 - c0) / window:.1f} % of a core",
        f"{c1 - c0:.2f} s CPU",
    )
    TABLE.add(
        section,
        "RSS: bva / sandbox child",
        f"{app_rss // 1024} / {child_rss // 1024} MiB",
        f"bva peak {app_hwm // 1024} MiB; quit {took:.2f} s"
        + (f", killed {len(stragglers)} straggler(s)" if stragglers else ""),
    )


# -- 4. 200 services -------------------------------------------------------------------------


@pytest.fixture
def scale_sandbox(tmp_path: Path) -> Iterator[tuple[RunningSandbox, Path]]:
    config = scale_platform(tmp_path / "health200.toml", SCALE_SERVICES, SCALE_REPLICAS, "health")
    t = time.perf_counter()
    sb = start_sandbox(tmp_path, speed=1.0, seed=7, config=config, timeout=120.0)
    TABLE.add(
        "4. 200 services",
        f"sandbox {SCALE_SERVICES} x {SCALE_REPLICAS}: launch → ready",
        secs(time.perf_counter() - t),
    )
    try:
        yield sb, config
    finally:
        sb.stop()


class LoopStall:
    """How late a 5 ms `asyncio.sleep` wakes up on the app's loop: the time a key press or a
    repaint could have waited behind whatever else the loop was doing."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.samples.append(time.perf_counter() - t - LAG_TICK_S)

    def __enter__(self) -> LoopStall:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def figure(self) -> tuple[str, str]:
        s = self.samples
        return (
            f"{ms(percentile(s, 99))} / {ms(max(s, default=math.nan))}",
            f"p50 {ms(percentile(s, 50))}; {len(s)} ticks",
        )


async def _key_to_frame(app: Any, table: Any, presses: int) -> tuple[list[float], list[float]]:
    from textual import events

    frames: list[float] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is not None:
            frames.append(time.perf_counter())

    setattr(app, "_display", display)  # noqa: B010 - an instance attribute shadows it
    moved_s: list[float] = []
    frame_s: list[float] = []
    try:
        for _ in range(presses):
            row = table.cursor_row
            key = events.Key("down", None)
            key.set_sender(app)
            t0 = time.perf_counter()
            app._driver.send_message(key)
            deadline = t0 + 10
            while table.cursor_row == row and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            t_moved = time.perf_counter()
            assert table.cursor_row != row, "the cursor never moved"
            while not frames or frames[-1] <= t_moved:
                if time.perf_counter() > deadline:
                    raise AssertionError("no frame was rendered after the cursor moved")
                await asyncio.sleep(0.001)
            t_frame = next(f for f in frames if f > t_moved)
            moved_s.append(t_moved - t0)
            frame_s.append(t_frame - t0)
            await asyncio.sleep(KEY_GAP_S)
    finally:
        delattr(app, "_display")
    return moved_s, frame_s


def _has_data(p: HealthPicture | None) -> bool:
    return (
        p is not None
        and len(p.rows) == SCALE_SERVICES
        and all(r.revision > 0 and r.probes for r in p.rows)
    )


async def test_refresh_at_200_services(scale_sandbox: tuple[RunningSandbox, Path]) -> None:
    from textual.widgets import DataTable

    from screens.health import HealthScreen
    from tui.app import AppSettings, make_app

    section = "4. 200 services"
    sandbox, config = scale_sandbox
    cfg = load_platform(config)
    state = read_sandbox_state(sandbox.runtime_dir)

    async def opener() -> Platform:
        return open_platform(cfg, "sandbox", sandbox=state, threaded_health=True)  # as `bva` does

    app = make_app(
        AppSettings(
            env="sandbox",
            poll_interval=5.0,
            platform_label=cfg.name,
            environment_label="sandbox",
            open_platform=opener,
        )
    )
    rss_before, _ = rss_kib(os.getpid())
    t_start = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        deadline = time.monotonic() + 90
        while not _has_data(screen.picture):
            if time.monotonic() > deadline:
                raise AssertionError(f"no data for {SCALE_SERVICES} services: {screen.picture}")
            await pilot.pause(0.05)
        picture = screen.picture
        assert picture is not None
        up = sum(r.health is ProbeStatus.UP for r in picture.rows)
        TABLE.add(
            section,
            f"app start → {SCALE_SERVICES} rows with data",
            secs(time.perf_counter() - t_start),
            f"{up}/{SCALE_SERVICES} UP; {screen.probe_count} sweep(s) so far",
        )

        # (a) _redraw(), called by the screen's own 0.25 s change check after a version bump.
        monitor = screen._monitor
        assert monitor is not None
        original = screen._redraw
        samples: list[float] = []

        def timed() -> None:
            t = time.perf_counter()
            original()
            samples.append(time.perf_counter() - t)

        setattr(screen, "_redraw", timed)  # noqa: B010 - an instance attribute shadows it
        try:
            deadline = time.monotonic() + 60
            while len(samples) < REDRAW_CALLS and time.monotonic() < deadline:
                monitor.version += 1
                await pilot.pause(0.26)
        finally:
            delattr(screen, "_redraw")
        assert len(samples) >= REDRAW_CALLS // 2, f"only {len(samples)} redraws in 60 s"
        TABLE.add(
            section,
            f"`_redraw()` p50 / p99 of {len(samples)}",
            f"{ms(percentile(samples, 50))} / {ms(percentile(samples, 99))}",
            f"max {ms(max(samples))}; the screen also redraws unconditionally every 1 s",
        )

        # (b) one full health sweep (the app's own sweeps keep running meanwhile).
        platform = await app.platform()
        targets = platform.health_targets()
        sweeps: list[float] = []
        with LoopStall() as sweep_stall:
            for _ in range(SWEEPS):
                t = time.perf_counter()
                results = await platform.health.sweep(targets)
                sweeps.append(time.perf_counter() - t)
                assert len(results) == SCALE_SERVICES
        n_urls = sum(len(u) for _, u in targets)
        TABLE.add(
            section,
            f"health sweep ({n_urls} URLs), p50 of {SWEEPS}",
            ms(percentile(sweeps, 50)),
            runs(sweeps, "ms", 1000, 0),
        )
        TABLE.add(section, "loop stall during the sweeps, p99 / max", *sweep_stall.figure())

        # (c) key-press round trip while the watch and the 5 s sweeps keep delivering.
        table: DataTable[Any] = screen.query_one("#services", DataTable)
        assert table.has_focus
        row0, probes0 = table.cursor_row, screen.probe_count
        keys: list[float] = []
        with LoopStall() as key_stall:
            for _ in range(KEY_PRESSES):
                t = time.perf_counter()
                await pilot.press("down")
                keys.append(time.perf_counter() - t)
        moved = table.cursor_row - row0
        TABLE.add(
            section,
            f'`pilot.press("down")` p50 / p99 of {KEY_PRESSES}',
            f"{ms(percentile(keys, 50))} / {ms(percentile(keys, 99))}",
            f"max {ms(max(keys))}; cursor moved {moved} rows; "
            f"{screen.probe_count - probes0} sweep(s) during the presses",
        )
        TABLE.add(section, "loop stall during the key presses, p99 / max", *key_stall.figure())

        # (c') what a user sees: key sent through the driver → cursor moved → the next frame
        # rendered by the compositor (App._display is called with each rendered update, also
        # headless). pilot.press above also waits for the whole process to go idle.
        moved_s, frame_s = await _key_to_frame(app, table, KEY_PRESSES)
        TABLE.add(
            section,
            f"key → next frame rendered, p50 / p99 of {len(frame_s)}",
            f"{ms(percentile(frame_s, 50))} / {ms(percentile(frame_s, 99))}",
            f"max {ms(max(frame_s))}; key → cursor moved p50 / p99 "
            f"{ms(percentile(moved_s, 50))} / {ms(percentile(moved_s, 99))}; "
            f"one key every {KEY_GAP_S * 1000:.0f} ms",
        )

        # (d) memory, and the app's CPU with 200 services on screen and nothing pressed.
        c0, s0, t0 = cpu_seconds(os.getpid()), cpu_seconds(sandbox.proc.pid), time.monotonic()
        await asyncio.sleep(APP_IDLE_S)
        c1, s1, t1 = cpu_seconds(os.getpid()), cpu_seconds(sandbox.proc.pid), time.monotonic()
        rss, hwm = rss_kib(os.getpid())
        with LoopStall() as idle_stall:
            await asyncio.sleep(LAG_WINDOW_S)
        TABLE.add(
            section,
            f"app CPU over {t1 - t0:.0f} s, nothing pressed (in-process)",
            f"{100 * (c1 - c0) / (t1 - t0):.1f} % of a core",
            f"sandbox child {100 * (s1 - s0) / (t1 - t0):.1f} % of a core",
        )
        TABLE.add(
            section,
            f"loop stall, nothing pressed ({LAG_WINDOW_S:.0f} s), p99 / max",
            *idle_stall.figure(),
        )
        TABLE.add(
            section,
            "RSS of the test process running the app",
            f"{rss // 1024} MiB",
            f"{rss_before // 1024} MiB before the app; peak {hwm // 1024} MiB",
        )
        TABLE.add(
            section,
            "kubernetes / docker / psycopg loaded after data flowed",
            ", ".join(m for m in HEAVY if m in sys.modules) or "none",
            "in-process; backends.kube.client loads kubernetes in a thread on first use",
        )
