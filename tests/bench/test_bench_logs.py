"""The Logs screen benchmark: bva's Logs screen against toolong (`tl`) tailing the same lines,
side by side, in one run.

Printed figures, never asserted thresholds: a test here fails only when something it needs
never happens (the tool never shows a line, tmux or the tool dies). Run with

    cd /work/main && python -m pytest tests/bench/test_bench_logs.py -m bench -s \
        -p no:xdist -o addopts=""

and read the side-by-side table printed at the end. Each tool runs on its own, one after the
other, in a private tmux server (120 x 36), and is read with `capture-pane`:

- bva: a headless `python -m tui sandbox --log-dir DIR` (private runtime dir), the console
  `python -m tui --env sandbox` on it, Logs screen (`4`), include filter (`/`, the regex, Enter);
  the lines are appended to `DIR/auth-service.log` and spread over auth-service's 3 pods.
- toolong 1.5 (its own venv, it pins Textual 0.58): `tl FILE`, tailing, scrolled right so the
  messages are on screen, find (`/`) with the Regex checkbox on.

The input (`tests/bench/log_feed.py`) is the same deterministic Spring Boot stream for both,
written by a separate process at 1,000, 10,000 and 50,000 lines/s, then 1,000,000 lines at
50,000 lines/s for the memory figures. See tests/bench/README.md for the method. The module
takes about 5 minutes on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bench.helpers import Table, cpu_seconds, default_platform, percentile, rss_kib
from tests.bench.log_feed import Feed, iter_seqs, lines_text
from tests.bench.tmux_pane import PaneGone, TmuxPane, alive, cmdline, descendants
from tests.support.sandbox_proc import STOP_GRACE, RunningSandbox, start_sandbox
from tests.support.waiting import wait_until
from tui.sandbox_child import terminate

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "auth-service"  # 3 replicas in the built-in platform

RATES = (1_000, 10_000, 50_000)
# BVA_BENCH_LOGS_ONLY=50000 (or "memory", or "1000,memory") runs just those parts.
ONLY = {x.strip() for x in os.environ.get("BVA_BENCH_LOGS_ONLY", "").split(",") if x.strip()}
# Matches ~90 % of the entries (seq not ending in 9) and needs real regex work per line.
PATTERN = r"seq=\d*[0-8]\b"
PREFILL = 300  # lines in the file before the tool starts (toolong needs them to scroll right)
FIRST_LINE_TIMEOUT_S = 20.0
WARMUP_S = 2.0
LAG_WINDOW_S = 12.0
SAMPLE_S = 0.1
KEY_PRESSES = 200
KEY_GAP_S = 0.15
KEY_TIMEOUT_S = 5.0
KEY_PHASE_MAX_S = 90.0
KEY_POLL_S = 0.002
KEY_TARGET_S = 0.050  # the key p99 target: presses slower than it are counted
DRAIN_MAX_S = 4.0
CAUGHT_UP_SLACK = 20  # seqs: the newest line may be filtered out or cropped
# BVA_BENCH_LOGS_MEMORY_LINES=5000000 makes the memory run a soak (marks at each quarter).
MEMORY_LINES = int(os.environ.get("BVA_BENCH_LOGS_MEMORY_LINES", "1000000"))
MEMORY_LABEL = f"{MEMORY_LINES / 1e6:g}M"
MEMORY_RATE = 50_000
MEMORY_MARKS = tuple(MEMORY_LINES * k // 4 for k in (1, 2, 3, 4))
MEMORY_AHEAD = 100_000  # the writer waits while this far ahead of the newest line on screen
# toolong passes ~8k lines/s: the full 1M takes it ~2 min. The default cap keeps the module
# near 6 minutes; set BVA_BENCH_LOGS_MEMORY_S=200 for every mark.
MEMORY_MAX_S = float(os.environ.get("BVA_BENCH_LOGS_MEMORY_S", "60"))
MEMORY_EVERY_S = 5.0
TOOLONG_VERSION = "1.5.0"
TOOLONG_CACHE_VENV = Path.home() / ".cache" / "bva-bench" / "toolong-venv"
TOOL_TIMEOUT_S = 480

TABLE = Table()


# -- the side-by-side table -----------------------------------------------------------------


@dataclass
class SideBySide:
    """metric -> tool -> value; printed as one table with a column per tool."""

    tools: tuple[str, ...] = ("bva", "toolong")
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def put(self, tool: str, metric: str, value: str, detail: str = "") -> None:
        self.rows.setdefault(metric, {})[tool] = value
        TABLE.add(tool, metric, value, detail)

    def render(self, title: str) -> str:
        if not self.rows:
            return f"{title}: no figures were measured"
        heads = ("metric", *self.tools)
        cells = [(m, *(v.get(t, "—") for t in self.tools)) for m, v in self.rows.items()]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

        def line(vals: tuple[str, ...]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([title, rule, line(heads), rule, *(line(c) for c in cells), rule])


SIDE = SideBySide()


@pytest.fixture(scope="module", autouse=True)
def _print_tables() -> Iterator[None]:
    yield
    print("\n\n" + TABLE.render("bva Logs screen benchmark: every figure"), flush=True)
    print(
        "\n"
        + SIDE.render(
            f"bva Logs screen vs toolong {TOOLONG_VERSION}, same input, filter /{PATTERN}/ "
            "(tmux 120x36)"
        ),
        flush=True,
    )


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def _lag_triple(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{_ms(percentile(values, 50))} / {_ms(percentile(values, 99))} / {_ms(max(values))} ms"


def _pct(cpu: float, wall: float) -> str:
    return f"{100 * cpu / wall:.0f} %" if wall > 0 else "n/a"


def _rate(rate: int) -> str:
    return f"{rate // 1000}k/s"


# -- the writer ------------------------------------------------------------------------------


@dataclass
class Writer:
    proc: subprocess.Popen[bytes]
    records: Path

    @classmethod
    def start(
        cls,
        out: Path,
        records: Path,
        rate: int,
        start_seq: int,
        lines: int | None = None,
        gate: Path | None = None,
    ) -> Writer:
        cmd = [
            sys.executable,
            "-m",
            "tests.bench.log_feed",
            "--out",
            str(out),
            "--records",
            str(records),
            "--rate",
            str(rate),
            "--start-seq",
            str(start_seq),
        ]
        if lines is not None:
            cmd += ["--lines", str(lines)]
        if gate is not None:
            cmd += ["--gate", str(gate)]
        return cls(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, cwd=ROOT), records)

    def done(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> Feed:
        terminate(self.proc, STOP_GRACE)
        return Feed.load(self.records)


# -- the tools -------------------------------------------------------------------------------


_SEQ = re.compile(r"seq=\d{9}")


def _seq_lines(screen: str) -> list[str]:
    """The rows showing a log line of the flood (not the filter text, not a cropped seq)."""
    return [line for line in screen.splitlines() if _SEQ.search(line)]


def _max_seq(screen: str) -> int | None:
    return max(iter_seqs(screen), default=None)


class Tool:
    """One program under test in its own tmux pane."""

    name = ""
    key = ""  # the toggle pressed for the key round trip (tmux key name)
    key_label = ""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.pane = TmuxPane(self.name)

    @property
    def pid(self) -> int:
        return self.pane.pane_pid

    def side_pids(self) -> dict[str, int]:
        """Other processes whose CPU and memory are shown beside this tool's (bva's sandbox:
        the cluster, not the tool)."""
        return {}

    def helper_pids(self) -> dict[str, int]:
        """Processes that are part of the tool (bva's log reader): counted in its figures."""
        return {}

    def own_pids(self) -> dict[str, int]:
        return {self.name: self.pid, **self.helper_pids()}

    def feed_file(self) -> Path:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def toggled(self, screen: str) -> bool | None:
        """The state the toggle key flips, as the screen shows it; None while unclear."""
        raise NotImplementedError

    def check_filter(self) -> None:
        """Called during the first warm-up: fail if the regex filter is not in effect."""

    def progress(self, screen: str) -> int | None:
        """How many lines have passed through the tool so far, as its screen tells."""
        return _max_seq(screen)

    def notes(self) -> list[str]:
        return []

    def close(self) -> None:
        self.pane.close()


def _counter(screen: str, name: str) -> int | None:
    """A counter of the Logs screen's status line, which shortens big ones (12.3k, 1.23M:
    good to a tenth of a percent)."""
    m = re.search(r"([\d.,]+)([kM]?) " + name, screen)
    if m is None:
        return None
    scale = {"": 1, "k": 1_000, "M": 1_000_000}[m.group(2)]
    return round(float(m.group(1).replace(",", "")) * scale)


class BvaTool(Tool):
    name = "bva"
    key = "t"
    key_label = "`t` (timestamp column)"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.sandbox: RunningSandbox | None = None
        self.feed_dir = tmp / "feed"

    def feed_file(self) -> Path:
        return self.feed_dir / f"{SERVICE}.log"

    def side_pids(self) -> dict[str, int]:
        return {"sandbox": self.sandbox.proc.pid} if self.sandbox is not None else {}

    def helper_pids(self) -> dict[str, int]:
        readers = [p for p in descendants(self.pid) if "backends.logs.worker" in cmdline(p)]
        return {"log reader": readers[0]} if readers else {}

    def start(self) -> None:
        self.feed_dir.mkdir(parents=True, exist_ok=True)
        config = str(default_platform())
        self.sandbox = sandbox = start_sandbox(self.tmp, speed=1.0, log_dir=self.feed_dir)
        # The sandbox tails the file from where it first sees it: the prefill is not fed.
        self.feed_file().write_text(lines_text(0, PREFILL))
        self.pane.launch(
            [sys.executable, "-m", "tui", "--config", config, "--env", "sandbox"],
            {
                "BVA_RUNTIME_DIR": str(sandbox.runtime_dir),
                "KUBECONFIG": str(sandbox.kubeconfig),
                "BVA_JOURNAL_DIR": str(self.tmp / "journal"),
                "BVA_LOG_SAVE_DIR": str(self.tmp),
            },
            self.tmp,
        )
        pane = self.pane
        pane.wait_for(lambda s: "bva" in s.partition("\n")[0], 30, "bva's first frame")
        pane.send("4")
        pane.wait_for(lambda s: "received" in s and "streams" in s, 20, "the Logs screen")
        pane.send("/")
        pane.wait_for(lambda s: "keep lines matching" in s, 10, "the include prompt")
        pane.type(PATTERN)
        pane.wait_for(lambda s: PATTERN in s, 10, "the pattern in the prompt")
        pane.send("Enter")
        # The status line lists the filter last ("· /pattern/"), maybe cut off at 120
        # columns: the filter is listed, or the prompt has closed. check_filter() confirms the
        # filter on the flood.
        pane.wait_for(
            lambda s: f"/{PATTERN}/" in s or (PATTERN not in s and "received" in s),
            10,
            "the include filter to apply",
        )
        # Up to 79c80df showing the prompt paused following (the view took the shrink for the
        # reader scrolling up); `f` makes sure the view follows.
        pane.send("f")
        pane.wait_for(lambda s: "● following" in s, 10, "the view following again")

    def toggled(self, screen: str) -> bool | None:
        lines = _seq_lines(screen)
        if not lines:
            return None
        stamped = sum(bool(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line)) for line in lines)
        if stamped == len(lines):
            return True
        if stamped == 0:
            return False
        return None

    def check_filter(self) -> None:
        screen = self.pane.capture()
        shown = [s for s in iter_seqs(screen)]
        nines = [s for s in shown if s % 10 == 9]
        if nines:
            raise AssertionError(f"bva shows lines its filter should hide: {nines[:5]}\n{screen}")

    def progress(self, screen: str) -> int | None:
        """The Logs screen's own count of lines received (it may drop lines when behind,
        so the newest seq on screen would overstate what passed through)."""
        received = _counter(screen, "received")
        if received is None:
            return None
        # Lines skipped to keep up passed through too (counted, not shown).
        return received + (_counter(screen, "skipped") or 0)

    def status(self) -> str:
        """The Logs screen's status line (counters), from a fresh capture."""
        for line in self.pane.capture().splitlines():
            if "received" in line:
                return line.strip()
        return ""

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.sandbox is not None:
                self.sandbox.stop()


def _toolong_versions(venv: Path) -> tuple[str, str] | None:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "tl").exists() or not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('toolong'), m.version('textual'))"
    proc = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    parts = proc.stdout.split()
    return (parts[0], parts[1]) if proc.returncode == 0 and len(parts) == 2 else None


def toolong_venv() -> tuple[Path, str]:
    """A venv with toolong 1.5.0 (and the Textual 0.58 it pins): $BVA_BENCH_TOOLONG_VENV,
    the cached one, /opt/toolong-venv, or a new one under ~/.cache/bva-bench."""
    override = os.environ.get("BVA_BENCH_TOOLONG_VENV")
    candidates = [Path(override)] if override else []
    candidates += [TOOLONG_CACHE_VENV, Path("/opt/toolong-venv")]
    for venv in candidates:
        found = _toolong_versions(venv)
        if found is not None and found[0] == TOOLONG_VERSION:
            return venv, f"toolong {found[0]}, Textual {found[1]} ({venv})"
    venv = TOOLONG_CACHE_VENV
    print(f"[bench] creating {venv} (pip install toolong=={TOOLONG_VERSION})", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"toolong=={TOOLONG_VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = _toolong_versions(venv)
    if pip.returncode != 0 or found is None:
        pytest.fail(f"could not install toolong {TOOLONG_VERSION} in {venv}:\n{pip.stderr}")
    return venv, f"toolong {found[0]}, Textual {found[1]} ({venv}, created by this run)"


_DIM = re.compile(r"\x1b\[(?:0;)?2m")
_GUTTER = re.compile(r"^\W?\d{3,} ")  # toolong's line numbers: "┃5269 8080-exec-8] …"


class ToolongTool(Tool):
    name = "toolong"
    key = "C-l"
    key_label = "ctrl+l (line numbers)"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.version = ""

    def feed_file(self) -> Path:
        return self.tmp / f"{SERVICE}.log"

    def start(self) -> None:
        venv, self.version = toolong_venv()
        self.feed_file().write_text(lines_text(0, PREFILL))
        self.pane.launch([str(venv / "bin" / "tl"), str(self.feed_file())], {}, self.tmp)
        pane = self.pane
        pane.wait_for(lambda s: "TAIL" in s, 30, "toolong tailing the file (TAIL in its footer)")
        # The messages start at column 113, past the 120-column pane: scroll right as far
        # as the longest line allows (one column per `l`), so every message and its seq shows.
        pane.send("-N", "200", "l")
        pane.wait_for(
            lambda s: len(list(iter_seqs(s))) >= 10, 10, "the seq column after scrolling right"
        )
        # Find, then the Regex checkbox. Typed before the box is ticked: with Regex ticked,
        # toolong 1.5 keeps reading the (hidden) plain-text input (it tests the class
        # "find-regex" but sets "-find-regex"), so the pattern must be in that one.
        pane.send("/")
        pane.wait_for(lambda s: "Case sensitive" in s, 10, "toolong's find bar")
        pane.type(PATTERN)
        pane.wait_for(lambda s: PATTERN in s, 10, "the pattern in the find bar")
        pane.send("Tab")
        pane.wait_for(
            lambda s: "\x1b[4mCase sensitive" in s, 5, "focus on Case sensitive", ansi=True
        )
        pane.send("Tab")
        pane.wait_for(lambda s: "\x1b[4mRegex" in s, 5, "focus on the Regex checkbox", ansi=True)
        pane.send("Space")

    def check_filter(self) -> None:
        """The newest lines: those whose seq ends in 9 dimmed, the others not (toolong's find
        highlights and dims, it does not hide)."""
        last = [""]

        def highlighted() -> bool:
            last[0] = self.pane.capture(ansi=True)
            return bool(_toolong_regex_verdict(last[0]))

        wait_until(
            highlighted,
            10,
            "toolong's find to highlight the regex matches (Regex checkbox not ticked?)",
            interval=0.2,
            detail=lambda: "\n" + re.sub(r"\x1b\[[0-9;]*m", "", last[0]),
        )

    def toggled(self, screen: str) -> bool | None:
        lines = _seq_lines(screen)
        if not lines:
            return None
        numbered = sum(bool(_GUTTER.match(line)) for line in lines)
        if numbered == len(lines):
            return True
        if numbered == 0:
            return False
        return None

    def notes(self) -> list[str]:
        return [self.version]


def _toolong_regex_verdict(ansi_screen: str) -> bool:
    rows = [line for line in ansi_screen.splitlines() if "seq=\x1b" in line or _SEQ.search(line)]
    rows = rows[-12:]
    dim_nine, clear_other, dim_other = 0, 0, 0
    for row in rows:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", row)
        seqs = list(iter_seqs(plain))
        if not seqs:
            continue
        dim = bool(_DIM.search(row))
        if seqs[0] % 10 == 9:
            dim_nine += dim
        elif dim:
            dim_other += 1
        else:
            clear_other += 1
    return dim_nine > 0 and clear_other >= 5 and dim_other == 0


# -- the measurements ------------------------------------------------------------------------


@dataclass
class Process:
    label: str
    pid: int


def _cpu(procs: list[Process]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in procs:
        try:
            out[p.label] = cpu_seconds(p.pid)
        except OSError:
            out[p.label] = math.nan
    return out


def _check_alive(tool: Tool) -> None:
    if not alive(tool.pid) or tool.pane.dead():
        screen = ""
        with contextlib.suppress(PaneGone):
            screen = tool.pane.capture()
        raise PaneGone(f"{tool.name} died during the run; last screen:\n{screen}")


def _wait_first_line(tool: Tool, min_seq: int, timeout: float) -> float | None:
    """Seconds until the screen shows a line of the flood; None if not within `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (_max_seq(tool.pane.capture()) or -1) >= min_seq:
            return time.monotonic() - t0
        _check_alive(tool)
        time.sleep(0.02)
    return None


def _key_presses(tool: Tool) -> tuple[list[float], int, int]:
    """(round trips of the presses that showed, timeouts, presses) within KEY_PHASE_MAX_S."""
    pane = tool.pane
    trips: list[float] = []
    timeouts = pressed = 0
    phase_end = time.monotonic() + KEY_PHASE_MAX_S
    while pressed < KEY_PRESSES and time.monotonic() < phase_end:
        state: bool | None = None
        settle = time.monotonic() + KEY_TIMEOUT_S
        while state is None and time.monotonic() < settle:
            state = tool.toggled(pane.capture())
            if state is None:
                time.sleep(KEY_POLL_S)
        if state is None:
            break  # nothing readable on screen: no press can be judged
        t0 = time.monotonic()
        pane.send(tool.key)
        pressed += 1
        while True:
            now_state = tool.toggled(pane.capture())
            t = time.monotonic()
            if now_state is not None and now_state != state:
                trips.append(t - t0)
                break
            if t - t0 > KEY_TIMEOUT_S:
                timeouts += 1
                # Let the late flip land before the next press, so presses don't overlap.
                late_end = min(t + 2 * KEY_TIMEOUT_S, max(phase_end, t))
                while time.monotonic() < late_end:
                    if tool.toggled(pane.capture()) not in (None, state):
                        break
                    time.sleep(0.05)
                break
            time.sleep(KEY_POLL_S)
        time.sleep(KEY_GAP_S)
    return trips, timeouts, pressed


def _drain(tool: Tool, last_seq: int) -> float:
    """Seconds after the writer stopped until the tool shows (nearly) the last line; nan if
    not within DRAIN_MAX_S."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < DRAIN_MAX_S:
        seq = _max_seq(tool.pane.capture())
        if seq is not None and seq >= last_seq - CAUGHT_UP_SLACK:
            return time.monotonic() - t0
        time.sleep(0.05)
    return math.nan


def _run_rate(tool: Tool, records: Path, rate: int, start_seq: int) -> None:
    """One rate on a freshly started tool: warm-up, the lag window, the key presses, then how
    long it takes to catch up once the writer stops; figures into SIDE."""
    label = _rate(rate)
    writer = Writer.start(tool.feed_file(), records, rate, start_seq)
    own = tool.own_pids()
    procs = [Process(k, v) for k, v in {**own, **tool.side_pids()}.items()]
    procs.append(Process("writer", writer.proc.pid))
    try:
        # Only the first rate must show a line (else the set-up is broken); at a higher rate a
        # tool that shows nothing is a figure, not a failure.
        first = rate == RATES[0]
        took = _wait_first_line(tool, start_seq, FIRST_LINE_TIMEOUT_S if first else 10.0)
        if took is None and first:
            raise AssertionError(
                f"{tool.name} never showed a line of the flood at {label}:\n{tool.pane.capture()}"
            )
        shown = "nothing within 10 s" if took is None else f"after {took:.2f} s"
        print(
            f"[bench] {tool.name} @ {label}: first line of the flood on screen {shown}", flush=True
        )
        time.sleep(WARMUP_S)
        if took is not None:
            tool.check_filter()
        samples: list[tuple[float, int | None]] = []
        c0, t0 = _cpu(procs), time.monotonic()
        tick = t0
        while time.monotonic() - t0 < LAG_WINDOW_S:
            screen = tool.pane.capture()
            samples.append((time.monotonic(), _max_seq(screen)))
            tick += SAMPLE_S
            time.sleep(max(0.0, tick - time.monotonic()))
        c1, t1 = _cpu(procs), time.monotonic()
        _check_alive(tool)
        trips, timeouts, pressed = _key_presses(tool)
        _check_alive(tool)
    finally:
        feed = writer.stop()
    drained = _drain(tool, feed.last_seq)

    lags: list[float] = []
    blank = 0
    for t, seq in samples:
        written = feed.written_at(seq) if seq is not None else None
        if written is None:
            blank += 1
        else:
            lags.append(t - written)
    wall = t1 - t0
    written_lines = feed.seq_at(t1) - feed.seq_at(t0)
    lag = _lag_triple(lags)
    if not lags and samples and feed.times:
        lag = f"nothing shown (lag > {samples[-1][0] - feed.times[0]:.1f} s)"
    SIDE.put(
        tool.name,
        f"display lag p50 / p99 / max @ {label}",
        lag,
        f"{len(samples)} samples over {wall:.1f} s; writer actually wrote "
        f"{written_lines / wall:,.0f} entries/s",
    )
    SIDE.put(
        tool.name,
        f"samples with no seq on screen @ {label}",
        f"{100 * blank / max(len(samples), 1):.0f} %",
        f"{blank} of {len(samples)}",
    )
    used = {k: c1[k] - c0[k] for k in own}
    SIDE.put(
        tool.name,
        f"CPU, tool @ {label}",
        _pct(sum(used.values()), wall),
        " + ".join(f"{k} {_pct(v, wall)}" for k, v in used.items()) if len(used) > 1 else "",
    )
    for side in tool.side_pids():
        SIDE.put(tool.name, f"CPU, bva {side} process @ {label}", _pct(c1[side] - c0[side], wall))
    SIDE.put(tool.name, f"CPU, writer @ {label}", _pct(c1["writer"] - c0["writer"], wall))
    SIDE.put(
        tool.name,
        f"key round-trip p50 / p99 @ {label}",
        f"{_ms(percentile(trips, 50))} / {_ms(percentile(trips, 99))} ms"
        + (f", {timeouts} timeout(s)" if timeouts else ""),
        f"{tool.key_label}; {len(trips)} of {pressed} presses shown within "
        f"{KEY_TIMEOUT_S:.0f} s; max {_ms(max(trips, default=math.nan))} ms; "
        f"{sum(1 for t in trips if t > KEY_TARGET_S)} over {KEY_TARGET_S * 1000:.0f} ms",
    )
    SIDE.put(
        tool.name,
        f"caught up after the writer stopped @ {label}",
        f"{drained:.2f} s" if not math.isnan(drained) else f"not within {DRAIN_MAX_S:.0f} s",
        f"last seq {feed.last_seq}",
    )
    if isinstance(tool, BvaTool):
        # What the figures cost: a live tail skips what it is too far behind on, and says so.
        SIDE.put(tool.name, f"status line after {label}", tool.status(), "")


def _run_memory(tool: Tool, records: Path, start_seq: int) -> None:
    """1,000,000 more lines at up to 50k/s, the writer held at most MEMORY_AHEAD lines ahead
    of the newest line on screen; RSS when 250k, 500k, 750k, 1M lines have passed through."""
    own = tool.own_pids()
    procs = [Process(k, v) for k, v in {**own, **tool.side_pids()}.items()]

    def rss() -> dict[str, int]:
        out: dict[str, int] = {}
        for p in procs:
            try:
                out[p.label] = rss_kib(p.pid)[0]
            except OSError:
                out[p.label] = 0
        return out

    def total(r: dict[str, int]) -> int:
        return sum(r[k] for k in own)

    def fmt(r: dict[str, int]) -> str:
        text = f"{total(r) / 1024:.0f} MiB"
        if len(own) > 1:
            text += " (" + " + ".join(f"{k} {r[k] / 1024:.0f}" for k in own) + ")"
        for side in tool.side_pids():
            text += f" (+ {side} {r[side] / 1024:.0f})"
        return text

    gate = tool.tmp / "gate"

    def open_gate(seq: int) -> None:
        tmp = gate.with_suffix(".tmp")
        tmp.write_text(str(seq))
        tmp.replace(gate)

    screen = tool.pane.capture()
    base = tool.progress(screen)
    newest = _max_seq(screen) or start_seq
    if base is None:
        raise AssertionError(f"{tool.name}: no progress readable on screen:\n{screen}")
    open_gate(newest + MEMORY_AHEAD)
    before = rss()
    writer = Writer.start(
        tool.feed_file(), records, MEMORY_RATE, start_seq, MEMORY_LINES, gate=gate
    )
    t0 = time.monotonic()
    marks = list(MEMORY_MARKS)
    seen: list[tuple[int, float, dict[str, int]]] = []
    timeline: list[tuple[float, int, dict[str, int]]] = []  # (seconds, lines passed, RSS)
    passed = 0
    try:
        while marks and time.monotonic() - t0 < MEMORY_MAX_S:
            screen = tool.pane.capture()
            seq, progress = _max_seq(screen), tool.progress(screen)
            if seq is not None and seq > newest:
                newest = seq
                open_gate(newest + MEMORY_AHEAD)
            if progress is not None:
                passed = max(passed, progress - base)
            if time.monotonic() - t0 >= len(timeline) * MEMORY_EVERY_S:
                timeline.append((time.monotonic() - t0, passed, rss()))
            # bva's counters are shortened on screen (1.00M): good to half a percent.
            while marks and passed >= marks[0] - max(CAUGHT_UP_SLACK, marks[0] // 200):
                seen.append((marks.pop(0), time.monotonic() - t0, rss()))
            _check_alive(tool)
            time.sleep(0.1)
    finally:
        feed = writer.stop()
    end, took = rss(), time.monotonic() - t0
    timeline.append((took, passed, end))
    SIDE.put(tool.name, f"RSS before the {MEMORY_LABEL} lines", fmt(before))
    for mark, at, r in seen:
        SIDE.put(
            tool.name, f"RSS after {mark // 1000}k lines passed through", fmt(r), f"at {at:.1f} s"
        )
    for mark in marks:
        SIDE.put(
            tool.name,
            f"RSS after {mark // 1000}k lines passed through",
            "not reached",
            f"{passed:,} lines in {took:.0f} s; RSS then {fmt(end)}",
        )
    # Growth once the first 100k lines have passed (bva's ring buffer is full from there).
    later = [(n, total(r)) for _, n, r in timeline if n >= 100_000]
    if len(later) >= 2 and later[-1][0] - later[0][0] >= 50_000:
        slope = (later[-1][1] - later[0][1]) / 1024 / (later[-1][0] - later[0][0]) * 100_000
        growth = f"{slope:+.1f} MiB"
    else:
        growth = "n/a"
    SIDE.put(
        tool.name,
        "RSS growth per 100k lines, after the first 100k",
        growth,
        "RSS MiB @ lines passed, every "
        + f"{MEMORY_EVERY_S:.0f} s: "
        + ", ".join(f"{total(r) / 1024:.0f}@{n // 1000}k" for _, n, r in timeline),
    )
    SIDE.put(
        tool.name,
        f"{MEMORY_LABEL} run: lines passed through per second",
        f"{passed / took:,.0f} lines/s",
        f"{passed:,} lines in {took:.1f} s (cap {MEMORY_MAX_S:.0f} s); the writer (≤ "
        f"{MEMORY_RATE // 1000}k/s, ≤ {MEMORY_AHEAD // 1000}k lines ahead of the screen) wrote "
        f"{feed.last_seq - start_seq + 1:,}",
    )
    if isinstance(tool, BvaTool):
        TABLE.add(tool.name, f"status line at the end of the {MEMORY_LABEL} run", tool.status())


def _run_tool(make: Callable[[Path], Tool], tmp: Path) -> None:
    """Each rate, and then the memory run, on a freshly started tool with a fresh file, so a
    backlog left by one rate does not count against the next."""
    runs: list[tuple[str, int | None]] = [(_rate(rate), rate) for rate in RATES]
    runs.append(("memory", None))
    if ONLY:
        runs = [(label, rate) for label, rate in runs if str(rate or "memory") in ONLY]
    for i, (label, rate) in enumerate(runs):
        tool = make(tmp / label)
        try:
            t0 = time.monotonic()
            tool.start()
            print(
                f"\n[bench] {tool.name} ({label}): launch → filter set in "
                f"{time.monotonic() - t0:.1f} s",
                flush=True,
            )
            if i == 0:
                for note in tool.notes():
                    print(f"[bench] {tool.name}: {note}", flush=True)
            if rate is None:
                _run_memory(tool, tool.tmp / "records", PREFILL)
            else:
                _run_rate(tool, tool.tmp / "records", rate, PREFILL)
        finally:
            tool.close()
            tool.feed_file().unlink(missing_ok=True)


# -- the tests -------------------------------------------------------------------------------


def _need_tmux() -> None:
    if subprocess.run(["tmux", "-V"], capture_output=True).returncode != 0:
        pytest.fail("tmux is required for this benchmark")


@pytest.mark.timeout(TOOL_TIMEOUT_S)
def test_bva_logs_screen(tmp_path: Path) -> None:
    _need_tmux()
    _run_tool(BvaTool, tmp_path)


@pytest.mark.timeout(TOOL_TIMEOUT_S)
def test_toolong(tmp_path: Path) -> None:
    _need_tmux()
    _run_tool(ToolongTool, tmp_path)
