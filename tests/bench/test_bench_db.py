"""The database refresh benchmark (issue 14): bva's one-statement refresh against the psql
floor and against pg_activity, on the same PostgreSQL primary under pgbench load, and the
console's key latency while its database panel refreshes every 2 s.

Printed figures, never asserted thresholds: the test fails only when a measurement itself
did not happen (a refresh that read nothing, a psql that printed no timing, a pg_activity that
would not install or start, a cursor that never moved). Run with

    cd /work/main && python -m pytest -m bench -s -n0 tests/bench/test_bench_db.py

and read the table printed at the end. Everything runs in one test, in phases, while one
pgbench run keeps the primary busy: (1 + 2) bva's refresh back to back taking turns with the
same SQL through psql, and bva's statement under EXPLAIN ANALYZE, (3) pg_activity in tmux
for 30 s next to bva at the same 2 s cadence, attributed per role with pg_stat_statements,
(4) the Textual app with the real database panel, keys pressed every 100 ms. About 1.5
minutes on 2 cores (pg_activity's venv is installed afresh each run).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backends.db.models import DatabasePicture, Role, ServerState
from backends.db.queries import (
    _FLYWAY,
    _FLYWAY_STATE,
    _REPLICA,
    _SERVER,
    _SESSIONS,
    _STANDBYS,
    refresh_sql,
)
from backends.db.source import DbServer, PgDatabase
from backends.sandbox.pgbin import find_bin, reachable_bin, server_user, server_version
from backends.sandbox.pgcluster import wait_streaming
from tests.bench.helpers import Table, cpu_seconds, median, ms, percentile
from tests.bench.tmux_pane import TmuxPane, alive, cmdline, descendants
from tests.support.pg_world import DB, PgWorld, start_world
from tests.support.waiting import pilot_until

pytestmark = pytest.mark.bench

FLYWAY_TABLE = "public.flyway_schema_history"
ROUNDS = 5  # bva and psql take turns, PER_ROUND runs each, so load drift hits both alike
PER_ROUND = 10  # back to back; 50 refreshes at the console's 2 s cadence would take 100 s
WARM_REFRESHES = 6  # psycopg prepares a statement on its 5th run: measure the steady state
BURST_REFRESHES = 50
EXPLAINS = 30
PART_EXPLAINS = 15
PSQL_C_RUNS = 20
POOL_SIZE = 20
CADENCE_S = 2.0  # the console's database refresh, and pg_activity's --refresh
PGA_ROLE = "pga"
PGA_SETTLE_S = 4.0
PGA_WINDOW_S = 30.0
PGA_START_TIMEOUT_S = 30.0
KEY_WINDOW_S = 20.0
DRIVER_KEY_WINDOW_S = 10.0
KEY_GAP_S = 0.1
REDRAW_AFTER_S = 0.3
PGBENCH_SCALE = 5
PGBENCH_CLIENTS = 4
PGBENCH_THREADS = 2
PGBENCH_MAX_S = 1200  # an upper bound: it is stopped once the measurements are done
SAMPLE_S = 0.02  # pg_stat_activity sampling, only when pg_stat_statements is missing
TARGET_RATIO = 1.5
TARGET_KEY_P99_S = 0.050

TABLE = Table()


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    print("\n\n" + TABLE.render("bva database refresh benchmark (issue 14)"), flush=True)


# -- figures ---------------------------------------------------------------------------------------


def _p(values: Sequence[float], *pcts: float) -> str:
    """'p50 / p95 / max' style: the given percentiles in ms, joined by ' / '."""
    if not values:
        return "n/a"
    return " / ".join(f"{percentile(values, pct) * 1000:.1f}" for pct in pcts) + " ms"


def _ratio(a: float, b: float) -> str:
    return "n/a" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}x"


# -- the binaries, a passfile and client environments ----------------------------------------------


def _bin_dir() -> Path:
    found = find_bin(None)
    return reachable_bin(found, server_user(), server_version(found))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _write_passfile(path: Path, entries: Mapping[str, str]) -> Path:
    """A libpq passfile (mode 0600) for 127.0.0.1: how every tool here gets its password."""
    text = "".join(f"127.0.0.1:*:*:{_escape(u)}:{_escape(p)}\n" for u, p in entries.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _client_env(passfile: Path, port: int) -> dict[str, str]:
    """The test's environment without any PG* variable of its own, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSFILE=str(passfile), PGHOST="127.0.0.1", PGPORT=str(port), LC_ALL="C")
    return env


# -- bva's source ----------------------------------------------------------------------------------


class TimedDb(PgDatabase):
    """PgDatabase recording when each refresh ran (perf_counter start and end): the app's
    refreshes are told apart from the key presses with it."""

    def __init__(self, servers: Sequence[DbServer]) -> None:
        super().__init__(servers, pool_size=POOL_SIZE, lag_limit_s=1.0)
        self.spans: list[tuple[float, float]] = []

    async def refresh(self) -> DatabasePicture:
        t0 = time.perf_counter()
        try:
            return await super().refresh()
        finally:
            self.spans.append((t0, time.perf_counter()))


def _source(world: PgWorld, *, replica: bool = True) -> TimedDb:
    servers = [DbServer("primary", Role.PRIMARY, world.dsn("primary"))]
    if replica:
        servers.append(DbServer("replica-1", Role.REPLICA, world.dsn("replica-1")))
    return TimedDb(servers)


def _check(picture: DatabasePicture) -> None:
    """The refresh read every server (DEGRADED is fine under load, DOWN is not a reading)."""
    down = [(s.name, s.error) for s in picture.servers if s.state is ServerState.DOWN]
    assert not down, f"the refresh read nothing from {down}"


@dataclass
class RefreshRun:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    round_trip_ms: list[float] = field(default_factory=list)  # the primary's (execute + fetch)


@dataclass
class Floors:
    """bva's refresh and the psql floor, measured in turns (ROUNDS x PER_ROUND each)."""

    both: RefreshRun = field(default_factory=RefreshRun)  # primary + replica
    alone: RefreshRun = field(default_factory=RefreshRun)  # primary only
    psql_in: list[float] = field(default_factory=list)
    psql_prep: list[float] = field(default_factory=list)
    burst: tuple[int, float, float, float] | None = None  # pg_stat_statements, back to back


async def _refreshes(db: TimedDb, n: int, run: RefreshRun | None) -> None:
    for _ in range(n):
        c0, t0 = time.process_time(), time.perf_counter()
        picture = await db.refresh()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        _check(picture)
        primary = picture.primary
        if run is not None:
            run.wall.append(wall)
            run.cpu.append(cpu)
            if primary is not None and primary.round_trip_ms is not None:
                run.round_trip_ms.append(primary.round_trip_ms / 1000.0)


async def _floors(
    world: PgWorld, psql: Path, env: Mapping[str, str], sql: str, statements: bool
) -> Floors:
    out = Floors()
    both, alone = _source(world), _source(world, replica=False)
    try:
        # Connect, probe the Flyway table, and get past psycopg's prepare threshold.
        await _refreshes(both, WARM_REFRESHES, None)
        await _refreshes(alone, WARM_REFRESHES, None)
        for _ in range(ROUNDS):
            await _refreshes(both, PER_ROUND, out.both)
            await _refreshes(alone, PER_ROUND, out.alone)
            out.psql_in += await asyncio.to_thread(_psql_session, psql, env, sql, PER_ROUND)
            out.psql_prep += await asyncio.to_thread(
                _psql_session, psql, env, sql, PER_ROUND, prepared=True
            )
        if statements:  # bva's statement alone in pg_stat_statements (psql's would merge in)
            await asyncio.to_thread(world.sql, "SELECT pg_stat_statements_reset()")
            await _refreshes(alone, BURST_REFRESHES, None)
            out.burst = _refresh_statement(await asyncio.to_thread(_statements, world))
    finally:
        await both.aclose()
        await alone.aclose()
    return out


# -- EXPLAIN ANALYZE as bva_monitor ----------------------------------------------------------------


def _explain(conn: psycopg.Connection[Any], sql: str, n: int) -> tuple[list[float], list[float]]:
    """(execution, planning) times in seconds of n EXPLAIN (ANALYZE, FORMAT JSON) runs."""
    execs: list[float] = []
    plans: list[float] = []
    for _ in range(n):
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchone()
        assert row is not None, "EXPLAIN returned nothing"
        plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
        execs.append(float(plan[0]["Execution Time"]) / 1000.0)
        plans.append(float(plan[0]["Planning Time"]) / 1000.0)
    return execs, plans


def _parts() -> list[tuple[str, str]]:
    """bva's statement cut into its json_build_object parts, each a statement of its own."""
    state = _FLYWAY_STATE.format(flyway=FLYWAY_TABLE)
    parts = {
        "server": _SERVER.format(state=state),
        "sessions": _SESSIONS,
        "standbys": _STANDBYS,
        "replica": _REPLICA,
        "flyway": _FLYWAY.format(flyway=FLYWAY_TABLE),
    }
    return [(name, f"SELECT json_build_object({part})") for name, part in parts.items()]


# -- psql ------------------------------------------------------------------------------------------


def _psql_c(psql: Path, env: Mapping[str, str], sql: str, n: int) -> list[float]:
    """Wall time of n `psql -X -A -t -c SQL` runs: process start, connect, query, exit."""
    walls: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        done = subprocess.run(
            [str(psql), "-X", "-A", "-t", "-U", "bva_monitor", "-d", DB, "-c", sql],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        walls.append(time.perf_counter() - t)
        assert done.returncode == 0 and done.stdout.lstrip().startswith("{"), (
            f"psql -c failed: {done.stderr.strip()[:200]}"
        )
    return walls


def _psql_session(
    psql: Path, env: Mapping[str, str], sql: str, n: int, *, prepared: bool = False
) -> list[float]:
    """psql's own `Time:` lines for the statement run n times in one session (\\timing on);
    with `prepared`, PREPAREd once and EXECUTEd n times (the PREPARE's own line dropped)."""
    if prepared:
        script = f"PREPARE bva_refresh AS {sql};\n\\timing on\n" + "EXECUTE bva_refresh;\n" * n
    else:
        script = "\\timing on\n" + f"{sql};\n" * n
    done = subprocess.run(
        [str(psql), "-X", "-A", "-t", "-U", "bva_monitor", "-d", DB, "-f", "-"],
        input=script,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    times = [float(m) / 1000.0 for m in re.findall(r"^Time: ([\d.]+) ms", done.stdout, re.M)]
    assert done.returncode == 0 and len(times) == n, (
        f"psql session: exit {done.returncode}, {len(times)} of {n} Time: lines; "
        f"{done.stderr.strip()[:200]}"
    )
    return times


# -- pgbench ---------------------------------------------------------------------------------------


@dataclass
class Pgbench:
    """`pgbench -P 1` in the background; tps read from its progress lines per window."""

    bin_dir: Path
    env: Mapping[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    t0: float = 0.0

    def init(self) -> None:
        done = subprocess.run(
            [str(self.bin_dir / "pgbench"), "-i", "-q", "-s", str(PGBENCH_SCALE),
             "-U", "postgres", DB],
            env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"pgbench -i failed: {done.stderr.strip()[-300:]}"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "pgbench"), "-c", str(PGBENCH_CLIENTS),
                 "-j", str(PGBENCH_THREADS), "-T", str(PGBENCH_MAX_S), "-P", "1",
                 "-U", "postgres", DB],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.t0 = time.perf_counter()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def progress(self) -> list[tuple[float, float]]:
        """(perf_counter of the line, tps) of every `progress:` line so far."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        found = re.findall(r"^progress: ([\d.]+) s, ([\d.]+) tps", text, re.M)
        return [(self.t0 + float(t), float(tps)) for t, tps in found]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tps(progress: Sequence[tuple[float, float]], start: float, end: float) -> list[float]:
    return [tps for t, tps in progress if start < t <= end]


def _history_rows(world: PgWorld) -> int:
    """pgbench_history grows by one row per committed tpcb-like transaction."""
    row = world.sql("SELECT count(*) FROM pgbench_history")
    assert isinstance(row, int)
    return row


# -- pg_stat_statements (or, without it, sampling pg_stat_activity) --------------------------------


def _has_pg_stat_statements(bin_dir: Path) -> bool:
    done = subprocess.run(
        [str(bin_dir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, timeout=10
    )
    libdir = Path(done.stdout.strip()) if done.returncode == 0 else bin_dir.parent / "lib"
    return (libdir / "pg_stat_statements.so").is_file()


def _enable_pg_stat_statements(world: PgWorld) -> None:
    with world.admin() as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
    world.cluster.stop_server("primary")
    world.cluster.start_server("primary")
    wait_streaming(world.cluster)
    with world.admin() as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


@dataclass
class RoleCost:
    calls: int = 0
    exec_s: float = 0.0
    plan_s: float = 0.0
    # calls, total exec, min and max exec per call, text
    statements: list[tuple[int, float, float, float, str]] = field(default_factory=list)


def _statements(world: PgWorld) -> dict[str, RoleCost]:
    out: dict[str, RoleCost] = {"bva_monitor": RoleCost(), PGA_ROLE: RoleCost()}
    with world.admin() as conn:
        rows: list[tuple[Any, ...]] = conn.execute(
            "SELECT r.rolname, s.calls, s.total_exec_time, s.total_plan_time, s.min_exec_time, "
            "s.max_exec_time, s.query "
            "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
            "WHERE r.rolname IN ('bva_monitor', %s)",
            (PGA_ROLE,),
        ).fetchall()
    for rolname, calls, exec_ms, plan_ms, min_ms, max_ms, query in rows:
        cost = out[str(rolname)]
        cost.calls += int(calls)
        cost.exec_s += float(exec_ms) / 1000.0
        cost.plan_s += float(plan_ms) / 1000.0
        text = " ".join(str(query).split())
        cost.statements.append(
            (
                int(calls),
                float(exec_ms) / 1000.0,
                float(min_ms) / 1000.0,
                float(max_ms) / 1000.0,
                text,
            )
        )
    for cost in out.values():
        cost.statements.sort(key=lambda s: -s[1])
    return out


def _refresh_statement(costs: dict[str, RoleCost]) -> tuple[int, float, float, float] | None:
    """bva's refresh statement (json_build_object) as pg_stat_statements saw it:
    calls, mean, min and max execution time per call."""
    for calls, total, low, high, text in costs["bva_monitor"].statements:
        if "json_build_object" in text and calls:
            return calls, total / calls, low, high
    return None


def _stmt_figure(found: tuple[int, float, float, float] | None) -> str:
    if found is None:
        return "n/a"
    calls, mean, low, high = found
    return f"{mean * 1000:.2f} ms mean of {calls} (min {low * 1000:.2f}, max {high * 1000:.2f})"


class ActiveSampler:
    """Without pg_stat_statements: how often each role's backend is seen `active` in
    pg_stat_activity, sampled every SAMPLE_S by the superuser; samples x SAMPLE_S estimates
    its active time (coarse: a statement shorter than the interval is mostly missed)."""

    def __init__(self, world: PgWorld) -> None:
        self._world = world
        self._stop = threading.Event()
        self.seen: dict[str, int] = {"bva_monitor": 0, PGA_ROLE: 0}
        self.samples = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._world.admin() as conn:
            while not self._stop.is_set():
                rows: list[tuple[Any, ...]] = conn.execute(
                    "SELECT usename, count(*) FROM pg_stat_activity "
                    "WHERE state = 'active' AND usename IN ('bva_monitor', %s) GROUP BY 1",
                    (PGA_ROLE,),
                ).fetchall()
                self.samples += 1
                for user, n in rows:
                    self.seen[str(user)] += int(n)
                self._stop.wait(SAMPLE_S)

    def __enter__(self) -> ActiveSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- pg_activity -----------------------------------------------------------------------------------


def _install_pg_activity(venv: Path) -> Path:
    """pg_activity and psycopg in a venv of their own; the bench fails if that cannot be done."""
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300
    )
    assert made.returncode == 0, f"python -m venv failed: {made.stderr.strip()[-300:]}"
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         "pg_activity", "psycopg[binary]"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    exe = venv / "bin" / "pg_activity"
    if pip.returncode != 0 or not exe.is_file():
        pytest.fail(f"could not install pg_activity: {pip.stderr.strip()[-500:]}")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, f"pg_activity --version failed: {version.stderr[-300:]}"
    return exe


def _pg_activity_pid(pane: TmuxPane) -> int:
    """The pg_activity process: the pane's own (the shell and env exec'd) or a descendant."""
    for pid in [pane.pane_pid, *descendants(pane.pane_pid)]:
        if alive(pid) and "pg_activity" in cmdline(pid):
            return pid
    raise AssertionError(f"no pg_activity process under the pane:\n{pane.capture()}")


# -- the console -----------------------------------------------------------------------------------


@dataclass
class KeyRun:
    pilot: list[tuple[float, float]] = field(default_factory=list)  # (sent, cursor moved)
    driver: list[tuple[float, float]] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # the app's refreshes
    reads: int = 0
    window_s: float = 0.0


def _near(press: tuple[float, float], spans: Sequence[tuple[float, float]]) -> bool:
    """Whether the press overlapped a refresh or the screen's redraw after it: the answer is
    applied when the refresh returns and drawn by the screen's next 0.25 s change check."""
    return any(press[0] < b + REDRAW_AFTER_S and a < press[1] for a, b in spans)


async def _moved(table: Any, row: int, since: float, what: str) -> float:
    deadline = since + 10.0
    while table.cursor_row == row:
        if time.perf_counter() > deadline:
            raise AssertionError(f"the cursor never moved after {what}")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def _key_latency(world: PgWorld) -> KeyRun:
    from textual import events
    from textual.widgets import DataTable

    from tests.screens.conftest import fake_app, health_settled
    from tests.support.fake_platform import scenario

    db = _source(world)
    platform = dataclasses.replace(scenario("healthy"), database=db)
    app = fake_app("healthy", platform=platform, db_poll=CADENCE_S)
    run = KeyRun()
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            screen = await health_settled(pilot, timeout=30)

            def primary_read() -> bool:
                p = screen.picture
                d = p.database if p is not None else None
                return d is not None and d.primary is not None and d.primary.last_good is not None

            await pilot_until(pilot, primary_read, 20, "the database panel's first reading")
            table: DataTable[Any] = screen.query_one("#services", DataTable)
            if not table.has_focus:
                table.focus()
                await pilot.pause()
            reads0 = screen.db_reads
            t_start = time.perf_counter()

            # (a) pilot.press, one key every 100 ms (down and up on the first two rows).
            next_at = t_start
            while time.perf_counter() < t_start + KEY_WINDOW_S:
                row = table.cursor_row
                name = "down" if row == 0 else "up"
                t0 = time.perf_counter()
                await pilot.press(name)
                run.pilot.append((t0, await _moved(table, row, t0, f"pilot.press({name!r})")))
                next_at += KEY_GAP_S
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

            # (b) the same keys handed to the driver, timed to the cursor moving: no pilot idle
            # waits in the figure.
            t_driver = time.perf_counter()
            next_at = t_driver
            while time.perf_counter() < t_driver + DRIVER_KEY_WINDOW_S:
                row = table.cursor_row
                key_name = "down" if row == 0 else "up"
                key = events.Key(key_name, None)
                key.set_sender(app)
                t0 = time.perf_counter()
                driver = app._driver
                assert driver is not None
                driver.send_message(key)
                run.driver.append((t0, await _moved(table, row, t0, f"driver key {key_name}")))
                next_at += KEY_GAP_S
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            run.window_s = time.perf_counter() - t_start
            run.reads = screen.db_reads - reads0
            run.spans = [s for s in db.spans if s[1] >= t_start]
    finally:
        await db.aclose()
    return run


# -- the benchmark ---------------------------------------------------------------------------------


@dataclass
class Phases:
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.spans[name] = (t0, time.perf_counter())
            print(f"[bench] phase {name}: {time.perf_counter() - t0:.1f} s", flush=True)


@dataclass
class Window:
    """The pg_activity window: its length, bva's refresh count, each client's CPU."""

    seconds: float
    bva_refreshes: int
    bva_cpu: float
    pga_cpu: float


async def _pga_window(world: PgWorld, pga_pid: int, statements: bool) -> Window:
    """bva at its 2 s cadence for PGA_WINDOW_S while pg_activity runs at its own 2 s."""
    db = _source(world)
    try:
        _check(await db.refresh())  # connected (and the Flyway probe sent) before the window
        if statements:
            world.sql("SELECT pg_stat_statements_reset()")
        pga0, me0, t0 = cpu_seconds(pga_pid), time.process_time(), time.perf_counter()
        n = await _cadence(db, PGA_WINDOW_S)
        return Window(
            time.perf_counter() - t0,
            n,
            time.process_time() - me0,
            cpu_seconds(pga_pid) - pga0,
        )
    finally:
        await db.aclose()


async def _cadence(db: TimedDb, window_s: float) -> int:
    """bva's refresh every CADENCE_S for window_s, as the console does; the count."""
    n = 0
    t_end = time.perf_counter() + window_s
    next_at = time.perf_counter()
    while next_at < t_end:
        _check(await db.refresh())
        n += 1
        next_at += CADENCE_S
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return n


@pytest.mark.timeout(900)
def test_database_refresh_against_psql_and_pg_activity() -> None:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is required for this benchmark")
    private = Path(tempfile.mkdtemp(prefix="bva-bench-db-"))
    os.chmod(private, 0o700)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, private, True)

        t = time.perf_counter()
        pga_exe = _install_pg_activity(private / "venv")
        install_s = time.perf_counter() - t

        t = time.perf_counter()
        world = start_world(replicas=1)
        cleanup.callback(world.cluster.stop)
        world_s = time.perf_counter() - t

        bin_dir = _bin_dir()
        pga_password = secrets.token_urlsafe(12)
        with world.admin() as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(PGA_ROLE), psycopg.sql.Literal(pga_password)
                )
            )
            conn.execute(psycopg.sql.SQL("GRANT pg_monitor TO {}").format(
                psycopg.sql.Identifier(PGA_ROLE)))  # fmt: skip
        statements = _has_pg_stat_statements(bin_dir)
        if statements:
            _enable_pg_stat_statements(world)

        passfile = _write_passfile(
            private / "pgpass",
            {
                "postgres": world.cluster.password,
                "bva_monitor": world.monitor_password,
                PGA_ROLE: pga_password,
            },
        )
        env = _client_env(passfile, world.cluster.primary.port)
        pgbench = Pgbench(bin_dir, env, private / "pgbench.log")
        pgbench.init()
        pgbench.start()
        cleanup.callback(pgbench.stop)
        time.sleep(2.0)  # let the load settle
        assert pgbench.running(), f"pgbench exited: {pgbench.log.read_text()[-300:]}"
        history0, t_hist0 = _history_rows(world), time.perf_counter()
        phases = Phases()
        sql = refresh_sql(flyway_table=FLYWAY_TABLE, with_flyway=True)

        # 1 + 2. bva's refresh and the psql floor, in turns; bva's statement on the server.
        psql = bin_dir / "psql"
        with phases.phase("bva+psql"):
            floors = asyncio.run(_floors(world, psql, env, sql, statements))
            psql_c = _psql_c(psql, env, sql, PSQL_C_RUNS)
            with psycopg.connect(world.dsn("primary"), autocommit=True) as conn:
                exec_s, plan_s = _explain(conn, sql, EXPLAINS)
                part_exec = {
                    name: _explain(conn, part, PART_EXPLAINS)[0] for name, part in _parts()
                }

        # 3. pg_activity in tmux next to bva at the same cadence.
        pane = TmuxPane("pg-activity", width=120, height=36)
        cleanup.callback(pane.close)
        pane.launch(
            [str(pga_exe), "--refresh", str(int(CADENCE_S)), "-h", "127.0.0.1",
             "-p", str(world.cluster.primary.port), "-U", PGA_ROLE, "-d", DB],
            {"PGPASSFILE": str(passfile), "TERM": "xterm-256color"},
            private,
        )  # fmt: skip
        pane.wait_for(lambda s: "Ref.:" in s, PGA_START_TIMEOUT_S, "pg_activity's header")
        pga_pid = _pg_activity_pid(pane)
        time.sleep(PGA_SETTLE_S)
        with phases.phase("pg_activity"):
            sampler = ActiveSampler(world) if not statements else None
            with sampler if sampler is not None else contextlib.nullcontext():
                win = asyncio.run(_pga_window(world, pga_pid, statements))
            costs = _statements(world) if statements else None
            pga_screen = pane.capture()
            assert not pane.dead(), f"pg_activity exited during the window:\n{pga_screen}"
        pane.close()

        # 4. the console's keys while its database panel refreshes every 2 s.
        with phases.phase("keys"):
            keys = asyncio.run(_key_latency(world))

        t_hist1 = time.perf_counter()
        history1 = _history_rows(world)
        assert pgbench.running(), f"pgbench ended early: {pgbench.log.read_text()[-300:]}"
        progress = pgbench.progress()  # before the log goes with the private directory
        load_tps = _tps(progress, phases.spans["bva+psql"][0], t_hist1)
        assert load_tps, "pgbench printed no progress line during the measurements"

    _report(
        install_s=install_s,
        world_s=world_s,
        floors=floors,
        exec_s=exec_s,
        plan_s=plan_s,
        part_exec=part_exec,
        psql_c=psql_c,
        win=win,
        costs=costs,
        sampler=sampler,
        pga_screen=pga_screen,
        keys=keys,
        progress=progress,
        phases=phases,
        load_tps=load_tps,
        history_tps=(history1 - history0) / (t_hist1 - t_hist0),
    )


def _report(
    *,
    install_s: float,
    world_s: float,
    floors: Floors,
    exec_s: list[float],
    plan_s: list[float],
    part_exec: dict[str, list[float]],
    psql_c: list[float],
    win: Window,
    costs: dict[str, RoleCost] | None,
    sampler: ActiveSampler | None,
    pga_screen: str,
    keys: KeyRun,
    progress: list[tuple[float, float]],
    phases: Phases,
    load_tps: list[float],
    history_tps: float,
) -> None:
    s = "0. setup"
    TABLE.add(
        s, "pg_activity venv install / primary + replica up", f"{install_s:.1f} / {world_s:.1f} s"
    )

    both, alone, burst = floors.both, floors.alone, floors.burst
    psql_in, psql_prep = floors.psql_in, floors.psql_prep
    s = "1. bva refresh"
    TABLE.add(
        s,
        f"`PgDatabase.refresh()` primary + replica, p50 / p95 / max of {len(both.wall)}",
        _p(both.wall, 50, 95, 100),
        f"back to back, {ROUNDS} rounds of {PER_ROUND} taking turns with psql, after "
        f"{WARM_REFRESHES} warm-up refreshes; both servers at once",
    )
    TABLE.add(
        s,
        f"`refresh()` primary only, p50 / p95 / max of {len(alone.wall)}",
        _p(alone.wall, 50, 95, 100),
        f"the primary's round trip (execute + fetch) p50 {ms(median(alone.round_trip_ms))}",
    )
    cpu_both, cpu_alone = median(both.cpu), median(alone.cpu)
    TABLE.add(
        s,
        "client CPU per refresh (process_time), p50",
        f"{cpu_both * 1000:.2f} ms",
        f"primary only {cpu_alone * 1000:.2f} ms; at 0.5 refresh/s: "
        f"{cpu_both * 0.5 * 100:.2f} % of a core",
    )
    TABLE.add(
        s,
        f"server: EXPLAIN ANALYZE exec p50 / p95 of {len(exec_s)} (as bva_monitor)",
        _p(exec_s, 50, 95),
        f"planning p50 {ms(median(plan_s))} (psycopg prepares the statement after 5 runs, "
        "so a steady refresh skips it)",
    )
    TABLE.add(
        s,
        f"server: exec p50 per part of the statement ({PART_EXPLAINS} each)",
        f"{sum(median(v) for v in part_exec.values()) * 1000:.2f} ms summed",
        ", ".join(f"{k} {median(v) * 1000:.2f}" for k, v in part_exec.items()) + " ms",
    )

    s = "2. psql floor"
    floor = median(psql_in)
    TABLE.add(
        s,
        f"`psql -X -A -t -c SQL`, wall p50 / p95 of {len(psql_c)}",
        _p(psql_c, 50, 95),
        "process start + connect + query + exit",
    )
    TABLE.add(
        s,
        f"one psql session, `\\timing` p50 / p95 of {len(psql_in)}",
        _p(psql_in, 50, 95),
        "simple protocol: the server parses and plans the 3 KB statement every time",
    )
    prep = median(psql_prep)
    TABLE.add(
        s,
        f"one psql session, PREPARE once + EXECUTE, p50 / p95 of {len(psql_prep)}",
        _p(psql_prep, 50, 95),
        "what psycopg does after 5 runs of the same statement (prepare_threshold)",
    )
    for label, base in (("psql in-session", floor), ("psql PREPARE/EXECUTE", prep)):
        ratio = median(alone.wall) / base if base else math.nan
        TABLE.add(
            s,
            f"ratio bva refresh / {label}, p50",
            _ratio(median(alone.wall), base),
            f"primary only; target ≤ {TARGET_RATIO}x: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}; "
            f"primary + replica {_ratio(median(both.wall), base)}",
        )

    s = "3. vs pg_activity"
    win_s, bva_refreshes = win.seconds, win.bva_refreshes
    if costs is not None:
        bva, pga = costs["bva_monitor"], costs[PGA_ROLE]
        pga_refreshes = max(
            (c for c, _, _, _, q in pga.statements if "dbinfo" in q),
            default=round(win_s / CADENCE_S),
        )
        bva_per = (bva.exec_s + bva.plan_s) / max(1, bva_refreshes)
        pga_per = (pga.exec_s + pga.plan_s) / max(1, pga_refreshes)
        TABLE.add(
            s,
            "bva's statement exec (pg_stat_statements): at the 2 s cadence vs back to back",
            _stmt_figure(_refresh_statement(costs)),
            f"back to back (section 1, primary only): {_stmt_figure(burst)}",
        )
        TABLE.add(
            s,
            f"server time per refresh (pg_stat_statements exec + plan), {win_s:.0f} s window",
            f"bva {bva_per * 1000:.2f} ms vs pg_activity {pga_per * 1000:.2f} ms",
            f"target bva cheaper: {'met' if bva_per < pga_per else 'NOT met'}; "
            f"{bva_refreshes} bva refreshes ({bva.calls} statements, plan "
            f"{bva.plan_s * 1000:.1f} ms in all), {pga_refreshes} pg_activity refreshes "
            f"({pga.calls} statements in {len(pga.statements)} kinds, plan "
            f"{pga.plan_s * 1000:.1f} ms in all)",
        )
        for who, cost in (("bva", bva), ("pg_activity", pga)):
            top = "; ".join(
                f"{c}x {e / max(1, c) * 1000:.2f} (max {m * 1000:.2f}) ms `{q[:50]}`"
                for c, e, _, m, q in cost.statements[:4]
            )
            TABLE.add(s, f"{who}'s statements: calls, mean (max) exec per call", "", top)
    elif sampler is not None:
        seen = sampler.seen
        TABLE.add(
            s,
            f"active time per refresh (pg_stat_activity sampled every {SAMPLE_S * 1000:.0f} ms)",
            f"bva {seen['bva_monitor'] * SAMPLE_S / max(1, bva_refreshes) * 1000:.1f} ms vs "
            f"pg_activity {seen[PGA_ROLE] * SAMPLE_S / (win_s / CADENCE_S) * 1000:.1f} ms",
            f"no pg_stat_statements in this build; {sampler.samples} samples, coarse",
        )
    TABLE.add(
        s,
        "client CPU per second at a 2 s refresh",
        f"bva {win.bva_cpu / win_s * 100:.2f} % vs "
        f"pg_activity {win.pga_cpu / win_s * 100:.2f} % of a core",
        f"bva measured over the window (test process); from section 1: "
        f"{cpu_both * 0.5 * 100:.2f} %; pg_activity /proc/<pid>/stat utime+stime",
    )
    lines = [ln for ln in pga_screen.splitlines() if ln.strip()]
    TABLE.add(s, "pg_activity's header at the end", "", (lines[0] if lines else "")[:100])

    s = "4. load"
    per_phase = ", ".join(
        f"{name} {median(tps):.0f}"
        for name, (a, b) in phases.spans.items()
        if (tps := _tps(progress, a, b))
    )
    TABLE.add(
        s,
        f"pgbench -c {PGBENCH_CLIENTS} -j {PGBENCH_THREADS} (scale {PGBENCH_SCALE}) tps, p50",
        f"{median(load_tps):.0f} tps",
        f"min {min(load_tps):.0f} over {len(load_tps)} s; per phase {per_phase}; "
        f"committed (pgbench_history) {history_tps:.0f}/s",
    )

    s = "5. console keys"
    pilot = [b - a for a, b in keys.pilot]
    driver = [b - a for a, b in keys.driver]
    busy = [b - a for a, b in keys.driver if _near((a, b), keys.spans)]
    calm = [b - a for a, b in keys.driver if not _near((a, b), keys.spans)]
    pilot_busy = [b - a for a, b in keys.pilot if _near((a, b), keys.spans)]
    p99 = percentile(pilot, 99)
    TABLE.add(
        s,
        f"`pilot.press` → cursor moved, p50 / p99 / max of {len(pilot)}",
        _p(pilot, 50, 99, 100),
        f"target p99 < {TARGET_KEY_P99_S * 1000:.0f} ms: "
        f"{'met' if p99 < TARGET_KEY_P99_S else 'NOT met'}; includes the pilot's idle waits "
        f"(≥ 20 ms each); {len(pilot_busy)} near a refresh, p99 {ms(percentile(pilot_busy, 99))}",
    )
    dp99 = percentile(driver, 99)
    TABLE.add(
        s,
        f"driver key → cursor moved, p50 / p99 / max of {len(driver)}",
        _p(driver, 50, 99, 100),
        f"target p99 < {TARGET_KEY_P99_S * 1000:.0f} ms: "
        f"{'met' if dp99 < TARGET_KEY_P99_S else 'NOT met'}; "
        f"{len(busy)} during a refresh or the {REDRAW_AFTER_S * 1000:.0f} ms after it: p50 / p99 "
        f"{_p(busy, 50, 99)}; the other {len(calm)}: {_p(calm, 50, 99)}",
    )
    spans = [b - a for a, b in keys.spans]
    TABLE.add(
        s,
        "database refreshes in the app during the keys",
        f"{keys.reads} in {keys.window_s:.0f} s",
        f"refresh wall p50 / max {_p(spans, 50, 100)}",
    )
