"""The backup and restore benchmark: bva's `take_backup` / `restore` against plain `pg_dump -Fc`
and `pg_restore --clean --if-exists --single-transaction` on the same ~1 GB pgbench database,
and the measured RTO of "roll the services back + restore the database" in the sandbox.

Printed figures, never asserted thresholds: a test fails only when what it times did not
happen (a dump or restore that failed, a rollback that did not finish). Run with

    cd /work/main && python -m pytest -m bench -s -n0 tests/bench/test_bench_db_backup.py

`BVA_BENCH_PGBENCH_SCALE` (default 60, ~1 GB) sets `pgbench -i -s`, for both tests;
`BVA_BENCH_ROUNDS` (default 5) the rounds of section 1; `BVA_BENCH_RTO_STANDIN=1` drains the
services for the restore of section 2 on a sandbox that does not (see `DrainStandIn`).
Everything started here (PostgreSQL servers, the sandbox, temporary directories) goes away at
the end, on failure too.

1. **Backup / restore** — a primary alone (`tests/support/pg_world.start_world(replicas=0)`),
   `pgbench -i -s N` into its database. Each round times, in an order that alternates from
   round to round: bva's `take_backup()` (split at pg_dump's last `--verbose` line into the
   dump and the `pg_restore --list` verification + keep) and plain `pg_dump -Fc`; then bva's
   `plan_restore()` + `restore()` of that backup (safety backup, pg_restore, row-count check;
   its pg_restore step alone is `RestoreResult.duration_s`) and plain `pg_restore` of the
   same file. Between steps, untimed: `VACUUM (ANALYZE)` and `CHECKPOINT`, so no step pays
   for the hint bits or dirty buffers the previous one left. Medians over the rounds.
2. **RTO in the sandbox** — `bva sandbox` with its database (`start_sandbox(database=True)`,
   speed 1), the same pgbench tables loaded into it beside its seed, a verified backup
   (`bva db backup`), then a release (the three services that hold database pools set to
   image 1.0.1 with kubectl). Timed from the start of `bva rollback <the three> --yes` to the
   end of `bva db restore latest --scale-down --yes`, then to every Deployment available.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backends.config.values import resolve_secret
from backends.db.backup import Backup, Progress, take_backup
from backends.db.restore import plan_restore, restore
from backends.db.tools import find_tool
from tests.bench.helpers import CLK_TCK, Table, kube_client, median, raw_json, runs
from tests.support.pg_world import DB, PgWorld, start_world
from tests.support.sandbox_proc import RunningSandbox, read_sandbox_state, start_sandbox
from tests.support.waiting import wait_until

pytestmark = pytest.mark.bench

SCALE = int(os.environ.get("BVA_BENCH_PGBENCH_SCALE", "60"))
ROUNDS = max(2, int(os.environ.get("BVA_BENCH_ROUNDS", "5")))
# Off by default: the sandbox drains by itself since backends/sandbox/pgload.py closes a
# service's pool while it has no ready pod. 1: stand in for that on a tree without it.
STANDIN = os.environ.get("BVA_BENCH_RTO_STANDIN", "0") == "1"
ENVIRONMENT = "bench"
MB = 1_000_000
TARGET_OVERHEAD_PCT = 5.0
SEED_RTO_S = 3600.0  # the seed's recovery time objective: one hour
# The sandbox services that hold database pools (backends/sandbox/pgload.py POOLS).
DB_SERVICES = ("auth-service", "user-service", "tweet-service")
APP_ROLE = "bharathva_app"  # the role they connect as (backends/sandbox/pgschema.py)
RELEASE_TAG = "1.0.1"
STEP_TIMEOUT_S = 3600

TABLE = Table()
COMPARE: list[tuple[str, str, str, str, str]] = []  # tool, seconds, MB/s, overhead, detail


@pytest.fixture(scope="module", autouse=True)
def _print_table() -> Iterator[None]:
    yield
    if COMPARE:
        print("\n\n" + _render_compare(), flush=True)
    print("\n" + TABLE.render("bva backup / restore benchmark"), flush=True)


# -- figures ---------------------------------------------------------------------------------------


def _mbps(size: int, seconds: float) -> str:
    return "n/a" if not seconds or math.isnan(seconds) else f"{size / MB / seconds:.1f}"


def _overhead(bva: float, plain: float) -> str:
    return "n/a" if not plain or math.isnan(plain) else f"{(bva / plain - 1.0) * 100:+.1f} %"


def _render_compare() -> str:
    heads = ("tool", "seconds (median)", "MB/s", "bva overhead", "detail")
    widths = [max(len(h), *(len(r[i]) for r in COMPARE)) for i, h in enumerate(heads)]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = f"backup / restore of a pgbench -s {SCALE} database, median of {ROUNDS} rounds"
    return "\n".join([title, rule, line(heads), rule, *(line(r) for r in COMPARE), rule])


# -- clients ---------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _client_env(dsn: str, passfile: Path) -> dict[str, str]:
    """libpq variables for a DSN, its password in a 0600 passfile: the plain tools' environment
    (bva's own runs get theirs from backends/db/tools.py)."""
    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"*:*:*:{_escape(parts['user'])}:{_escape(parts.get('password', ''))}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=parts.get("host", "127.0.0.1"),
        PGPORT=parts.get("port", "5432"),
        PGUSER=parts["user"],
        PGDATABASE=parts.get("dbname", DB),
        PGPASSFILE=str(passfile),
        LC_ALL="C",
    )
    return env


def _run(cmd: Sequence[str | Path], env: Mapping[str, str], what: str) -> float:
    """Run a client program to completion; its wall time. Fails the test if it failed."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(c) for c in cmd],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
    )
    wall = time.perf_counter() - t0
    assert done.returncode == 0, f"{what} failed ({done.returncode}): {done.stderr[-400:]}"
    return wall


def _pgbench_init(env: Mapping[str, str]) -> float:
    return _run([find_tool("pgbench"), "-i", "-q", "-s", str(SCALE)], env, f"pgbench -i -s {SCALE}")


def _one(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def _settle(dsn: str) -> float:
    """VACUUM (ANALYZE) + CHECKPOINT: what the previous step left (hint bits, dirty buffers)
    is not paid by the next one. Untimed in the figures; its own wall time is returned."""
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - t0


# -- section 1: bva against pg_dump / pg_restore ---------------------------------------------------


@dataclass
class BvaBackup:
    backup: Backup
    total: float
    dump: float  # take_backup's start to pg_dump's last --verbose line
    verify: float  # from there to take_backup's return: pg_restore --list, chmod, rename, sidecar


@dataclass
class BvaRestore:
    total: float  # plan_restore() + restore()
    plan: float
    safety: float  # the safety backup, from its on_step line to the next
    step: float  # RestoreResult.duration_s: pg_restore alone
    check: float  # "restored in …; checking" to restore()'s return: the row counts
    rows: dict[str, int]


async def _bva_backup(dsn: str, directory: Path) -> BvaBackup:
    last = [math.nan]

    def progress(_: Progress) -> None:
        last[0] = time.perf_counter()

    t0 = time.perf_counter()
    backup = await take_backup(
        dsn, directory, environment=ENVIRONMENT, reason="bench", on_progress=progress
    )
    t1 = time.perf_counter()
    return BvaBackup(backup, t1 - t0, last[0] - t0, t1 - last[0])


async def _bva_restore(dsn: str, backup: Backup, directory: Path) -> BvaRestore:
    steps: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    plan = await plan_restore(dsn, backup, ENVIRONMENT)
    t1 = time.perf_counter()
    result = await restore(
        plan, dsn, directory, on_step=lambda s: steps.append((time.perf_counter(), s))
    )
    t2 = time.perf_counter()

    def at(prefix: str, nth: int = 0) -> float:
        hits = [t for t, s in steps if s.startswith(prefix)]
        return hits[nth] if len(hits) > nth else math.nan

    safety = at("safety backup", 1) - at("safety backup", 0)
    check = t2 - at("restored in")
    return BvaRestore(t2 - t0, t1 - t0, safety, result.duration_s, check, dict(result.tables))


@dataclass
class Rounds:
    bva_backup: list[BvaBackup] = field(default_factory=list)
    pg_dump: list[float] = field(default_factory=list)
    list_alone: list[float] = field(default_factory=list)  # pg_restore --list of bva's dump
    bva_restore: list[BvaRestore] = field(default_factory=list)
    pg_restore: list[float] = field(default_factory=list)
    dump_sizes: list[tuple[int, int]] = field(default_factory=list)  # bva's, plain's
    settle: list[float] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    # utime + stime of the client programs each step ran (RUSAGE_CHILDREN), by step
    cpu: dict[str, list[float]] = field(default_factory=dict)
    server_cpu: dict[str, list[float]] = field(default_factory=dict)  # the same, the server's


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _server_cpu(data_dir: Path) -> float:
    """CPU of the whole server: the postmaster's own and its reaped children's (every backend
    that has exited: cutime + cstime), plus its live children's. Seconds."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])

    def fields(pid: int) -> list[str]:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()

    own = fields(postmaster)
    total = sum(int(x) for x in own[11:15])  # utime stime cutime cstime (proc(5) 14-17)
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        with contextlib.suppress(OSError, ValueError):
            total += sum(int(x) for x in fields(int(child))[11:13])
    return total / CLK_TCK


def _one_round(
    n: int, dsn: str, env: Mapping[str, str], work: Path, data_dir: Path, out: Rounds
) -> None:
    directory = work / f"round-{n}"
    directory.mkdir(mode=0o700)
    plain_file = directory / "plain.dump"
    pg_dump, pg_restore = find_tool("pg_dump"), find_tool("pg_restore")
    bva_first = n % 2 == 0
    out.orders.append("bva first" if bva_first else "plain first")

    def bva_backup() -> None:
        out.bva_backup.append(asyncio.run(_bva_backup(dsn, directory)))

    def plain_dump() -> None:
        out.pg_dump.append(_run([pg_dump, "-Fc", "-f", plain_file, DB], env, "pg_dump -Fc"))

    def timed(step: Callable[[], None]) -> None:
        c0, s0 = _children_cpu(), _server_cpu(data_dir)
        step()
        out.cpu.setdefault(step.__name__, []).append(_children_cpu() - c0)
        out.server_cpu.setdefault(step.__name__, []).append(_server_cpu(data_dir) - s0)
        out.settle.append(_settle(dsn))

    for step in (bva_backup, plain_dump) if bva_first else (plain_dump, bva_backup):
        timed(step)
    backup = out.bva_backup[-1].backup
    out.dump_sizes.append((backup.size, plain_file.stat().st_size))
    out.list_alone.append(_run([pg_restore, "--list", backup.path], env, "pg_restore --list"))

    def bva_restore() -> None:
        out.bva_restore.append(asyncio.run(_bva_restore(dsn, backup, directory)))

    def plain_restore() -> None:
        flags = ["--clean", "--if-exists", "--single-transaction"]
        what = "pg_restore " + " ".join(flags)
        out.pg_restore.append(_run([pg_restore, *flags, "-d", DB, backup.path], env, what))

    for step in (bva_restore, plain_restore) if bva_first else (plain_restore, bva_restore):
        timed(step)
    shutil.rmtree(directory, ignore_errors=True)  # the dumps and the safety backup


@pytest.mark.timeout(4 * STEP_TIMEOUT_S)
def test_backup_and_restore_against_pg_dump_and_pg_restore() -> None:
    private = Path(tempfile.mkdtemp(prefix="bva-bench-backup-"))
    os.chmod(private, 0o700)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, private, True)
        t = time.perf_counter()
        world: PgWorld = start_world(replicas=0)
        cleanup.callback(world.cluster.stop)
        up_s = time.perf_counter() - t
        dsn = world.cluster.dsn("primary", DB)  # the owner's (superuser's) DSN, as a restore has
        env = _client_env(dsn, private / "pgpass")
        init_s = _pgbench_init(env)
        _settle(dsn)
        db_size = int(_one(dsn, f"SELECT pg_database_size('{DB}')"))
        accounts = int(_one(dsn, "SELECT count(*) FROM pgbench_accounts"))
        out = Rounds()
        for n in range(ROUNDS):
            _one_round(n, dsn, env, private, world.cluster.primary.data, out)
            print(f"[bench] round {n + 1} of {ROUNDS} done ({out.orders[-1]})", flush=True)
        after = int(_one(dsn, "SELECT count(*) FROM pgbench_accounts"))
        assert after == accounts, f"pgbench_accounts has {after} rows after the restores"
        for r in out.bva_restore:
            assert r.rows.get("public.pgbench_accounts") == accounts, r.rows
    _report_compare(up_s=up_s, init_s=init_s, db_size=db_size, accounts=accounts, out=out)


def _report_compare(
    *, up_s: float, init_s: float, db_size: int, accounts: int, out: Rounds
) -> None:
    s = "1. setup"
    TABLE.add(s, "primary up (start_world, no replica)", f"{up_s:.1f} s")
    TABLE.add(
        s,
        f"pgbench -i -q -s {SCALE}",
        f"{init_s:.1f} s",
        f"database {db_size / MB:.0f} MB (pg_database_size), {accounts:,} pgbench_accounts rows",
    )
    bva_size = median(float(a) for a, _ in out.dump_sizes)
    plain_size = median(float(b) for _, b in out.dump_sizes)
    TABLE.add(
        s,
        "dump file size, bva / plain pg_dump -Fc",
        f"{bva_size / MB:.1f} / {plain_size / MB:.1f} MB",
        f"orders: {', '.join(out.orders)}; settle (VACUUM ANALYZE + CHECKPOINT) between steps "
        f"median {median(out.settle):.1f} s",
    )

    b_total = [b.total for b in out.bva_backup]
    b_dump = [b.dump for b in out.bva_backup]
    b_verify = [b.verify for b in out.bva_backup]
    r_total = [r.total for r in out.bva_restore]
    r_step = [r.step for r in out.bva_restore]
    r_safety = [r.safety for r in out.bva_restore]
    r_check = [r.check for r in out.bva_restore]
    r_plan = [r.plan for r in out.bva_restore]
    none: list[float] = []

    def row(
        tool: str, values: list[float], base: list[float], detail: str, data: bool = True
    ) -> None:
        """`base`: the plain tool's runs, round by round. Overhead: of the medians, and the
        median of the per-round ratios (paired: drift in the machine's load hits both).
        MB/s: the database's size over the step's time, for the steps that move it."""
        m = median(values)
        rate = _mbps(db_size, m) if data else "-"
        over = ""
        if base:
            paired = median(v / p for v, p in zip(values, base, strict=True))
            over = f"{_overhead(m, median(base))} (paired {(paired - 1) * 100:+.1f} %)"
            met = (paired - 1) * 100 < TARGET_OVERHEAD_PCT
            detail += f"; target < {TARGET_OVERHEAD_PCT:.0f} % (paired): "
            detail += "met" if met else "NOT met"
        COMPARE.append((tool, f"{m:.2f}", rate, over, detail))
        TABLE.add(
            "2. backup/restore",
            tool,
            f"{m:.2f} s" + (f", {rate} MB/s" if data else ""),
            f"{runs(values)}" + (f"; overhead {over}" if over else ""),
        )

    row("pg_dump -Fc (plain)", out.pg_dump, none, "baseline")
    dump_detail = "to pg_dump's last --verbose line (incl. the version and server checks)"
    row("bva take_backup: dump step", b_dump, out.pg_dump, dump_detail)
    row(
        "bva take_backup: verify + keep",
        b_verify,
        none,
        f"pg_restore --list, chmod, rename, sidecar; --list alone {median(out.list_alone):.2f} s",
        data=False,
    )
    row("bva take_backup: total", b_total, out.pg_dump, "dump + verify + keep")
    plain = "pg_restore --clean --if-exists --single-transaction (plain)"
    row(plain, out.pg_restore, none, "baseline, the same dump file")
    row("bva restore: pg_restore step", r_step, out.pg_restore, "RestoreResult.duration_s")
    row("bva restore: safety backup", r_safety, none, "a full take_backup first")
    row("bva restore: row-count check", r_check, none, "count(*) of every user table", data=False)
    row(
        "bva plan_restore + restore: total",
        r_total,
        out.pg_restore,
        f"plan {median(r_plan) * 1000:.0f} ms + safety + restore + check",
    )
    cpu = {name: median(v) for name, v in out.cpu.items()}
    TABLE.add(
        "2. backup/restore",
        "client programs' CPU (utime + stime), median",
        f"pg_dump {cpu['plain_dump']:.2f} s vs take_backup {cpu['bva_backup']:.2f} s",
        f"pg_restore {cpu['plain_restore']:.2f} s vs restore() {cpu['bva_restore']:.2f} s "
        "(its safety backup's pg_dump included); the server's CPU is in neither",
    )
    srv = {name: median(v) for name, v in out.server_cpu.items()}
    TABLE.add(
        "2. backup/restore",
        "the server's CPU during the step, median",
        f"pg_dump {srv['plain_dump']:.2f} s vs take_backup {srv['bva_backup']:.2f} s",
        f"pg_restore {srv['plain_restore']:.2f} s vs restore() {srv['bva_restore']:.2f} s; "
        "postmaster + backends (reaped and live), from /proc",
    )


# -- section 2: the RTO in the sandbox -------------------------------------------------------------


@dataclass
class Timed:
    """A command's output lines, each with the perf_counter it was read at."""

    code: int
    start: float
    end: float
    lines: list[tuple[float, str]]

    def first(self, needle: str) -> float:
        return next((t for t, line in self.lines if needle in line), math.nan)

    def last(self, needle: str) -> float:
        hits = [t for t, line in self.lines if needle in line]
        return hits[-1] if hits else math.nan

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def _timed(cmd: Sequence[str], env: Mapping[str, str], timeout: float) -> Timed:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    lines: list[tuple[float, str]] = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter(), line.rstrip("\n")))
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Timed(code, t0, time.perf_counter(), lines)


def _bva(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui", *args]


def _drain(proc: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    """Keep reading the sandbox's output after its ready line, so it never blocks on a full
    pipe during a long benchmark."""

    def read() -> None:
        if proc.stdout is not None:
            for line in proc.stdout:
                into.append(line.rstrip("\n"))

    thread = threading.Thread(target=read, name="sandbox-output", daemon=True)
    thread.start()
    return thread


class DrainStandIn:
    """What a real service does when it is scaled to 0, which the sandbox's simulated load did
    not: its pods are gone, so are its database sessions.

    Until backends/sandbox/pgload.py closed a service's pool at 0 ready pods, `DbLoad` kept
    every pool connected whatever the replicas, so `bva db restore --scale-down` on the
    sandbox waited out its 120 s drain and failed. Only with BVA_BENCH_RTO_STANDIN=1.

    While a Deployment of `DB_SERVICES` has no pod left, this thread ends that service's
    sessions on the primary; while all of them are at 0 it also makes the app role NOLOGIN
    (the pools reconnect with backoff and would otherwise come back between bva's drain check
    and the restore's own), LOGIN again as soon as one scales back. It counts what it did, so
    the report says whether it was needed."""

    def __init__(self, sb: RunningSandbox, admin_dsn: str) -> None:
        # From the postgres database: a session on the platform's database is one more
        # "connected" that the restore would wait for.
        self._sb, self._dsn = sb, make_conninfo(admin_dsn, dbname="postgres")
        self._database = str(conninfo_to_dict(admin_dsn).get("dbname") or "bharathva")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drain-stand-in", daemon=True)
        self.terminated = 0
        self.nologin_s = 0.0
        self.errors: list[str] = []
        self._nologin_at: float | None = None

    def __enter__(self) -> DrainStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(psycopg.Error):
            self._login(True)

    def _login(self, allowed: bool) -> None:
        with psycopg.connect(self._dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"ALTER ROLE {APP_ROLE} {'LOGIN' if allowed else 'NOLOGIN'}")
        now = time.perf_counter()
        if allowed and self._nologin_at is not None:
            self.nologin_s += now - self._nologin_at
            self._nologin_at = None
        elif not allowed:
            self._nologin_at = now

    def _loop(self) -> None:
        kube = kube_client(self._sb.kubeconfig)
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=3) as conn:
                while not self._stop.wait(0.1):
                    try:
                        self._tick(kube, conn)
                    except Exception as exc:  # keep standing in; reported at the end
                        self.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                        if conn.closed:
                            return
        finally:
            kube.close()

    def _tick(self, kube: Any, conn: psycopg.Connection[Any]) -> None:
        listed = raw_json(
            kube.apps.list_namespaced_deployment(self._sb.namespace, _preload_content=False)
        )
        gone = [
            d["metadata"]["name"]
            for d in listed["items"]
            if d["metadata"]["name"] in DB_SERVICES
            and (d["spec"].get("replicas") or 0) == 0
            and (d.get("status", {}).get("replicas") or 0) == 0
        ]
        if len(gone) == len(DB_SERVICES) and self._nologin_at is None:
            self._login(False)
        elif len(gone) < len(DB_SERVICES) and self._nologin_at is not None:
            self._login(True)
        if gone:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name = ANY(%s)",
                (self._database, gone),
            ).fetchone()
            self.terminated += int(row[0]) if row else 0


def _deployments(sb: RunningSandbox) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "-n", sb.namespace, "get", "deployments", "-o", "json"],
        env=sb.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {d["metadata"]["name"]: d for d in json.loads(done.stdout)["items"]}


def _all_available(sb: RunningSandbox) -> bool:
    for d in _deployments(sb).values():
        want, status = d["spec"].get("replicas") or 0, d.get("status", {})
        if (status.get("availableReplicas") or 0) != want or (
            status.get("updatedReplicas") or 0
        ) != want:
            return False
    return True


def _images(sb: RunningSandbox) -> dict[str, str]:
    return {
        name: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, d in _deployments(sb).items()
        if name in DB_SERVICES
    }


def _kubectl(sb: RunningSandbox, *args: str) -> float:
    return _run(["kubectl", "-n", sb.namespace, *args], sb.env, f"kubectl {' '.join(args)}")


@pytest.mark.timeout(4 * STEP_TIMEOUT_S)
def test_rto_of_rollback_and_restore_in_the_sandbox() -> None:
    private = Path(tempfile.mkdtemp(prefix="bva-bench-rto-"))
    os.chmod(private, 0o700)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, private, True)
        t = time.perf_counter()
        sb = start_sandbox(private / "sandbox", database=True, speed=1.0, timeout=180)
        cleanup.callback(sb.stop)
        up_s = time.perf_counter() - t
        sandbox_out: list[str] = []
        _drain(sb.proc, sandbox_out)
        state = read_sandbox_state(sb.runtime_dir)
        assert state.database is not None, "the sandbox started without its database"
        admin_dsn = resolve_secret(str(state.database["admin_url"]))
        env = {
            **sb.env,
            "XDG_DATA_HOME": str(private / "data"),
            "BVA_JOURNAL_DIR": str(private / "journal"),
            "PYTHONUNBUFFERED": "1",  # each line as it is printed: the phases are timed by it
        }
        env.pop("BVA_CONFIG", None)
        wait_until(lambda: _all_available(sb), 60, "every Deployment available", interval=0.5)

        seed_size = int(_one(admin_dsn, "SELECT pg_database_size(current_database())"))
        init_s = _pgbench_init(_client_env(admin_dsn, private / "pgpass"))
        db_size = int(_one(admin_dsn, "SELECT pg_database_size(current_database())"))

        args = ("db", "backup", "--env", "sandbox", "--reason", "pre-1.0.1")
        backup = _timed(_bva(*args), env, STEP_TIMEOUT_S)
        assert backup.code == 0, f"bva db backup failed:\n{backup.text()}"

        t = time.perf_counter()
        before = _images(sb)
        for service in DB_SERVICES:
            image = before[service].rsplit(":", 1)[0] + ":" + RELEASE_TAG
            _kubectl(sb, "set", "image", f"deployment/{service}", f"{service}={image}")
        for service in DB_SERVICES:
            _kubectl(sb, "rollout", "status", f"deployment/{service}", "--timeout=120s")
        release_s = time.perf_counter() - t
        released = _images(sb)
        assert all(i.endswith(":" + RELEASE_TAG) for i in released.values()), released

        standin = DrainStandIn(sb, admin_dsn) if STANDIN else None
        with standin if standin is not None else contextlib.nullcontext():
            rollback = _timed(
                _bva("rollback", *DB_SERVICES, "--env", "sandbox", "--yes"), env, STEP_TIMEOUT_S
            )
            assert rollback.code == 0, f"bva rollback failed:\n{rollback.text()}"
            restored = _timed(
                _bva("db", "restore", "latest", "--env", "sandbox", "--scale-down", "--yes"),
                env,
                STEP_TIMEOUT_S,
            )
            assert restored.code == 0, f"bva db restore failed:\n{restored.text()}"
            wait_until(lambda: _all_available(sb), 120, "every Deployment back", interval=0.2)
            t_back = time.perf_counter()
        assert _images(sb) == before, f"not rolled back: {_images(sb)} (was {before})"
        rows = int(_one(admin_dsn, "SELECT count(*) FROM pgbench_accounts"))
        assert rows == SCALE * 100_000, f"pgbench_accounts has {rows} rows after the restore"

    _report_rto(
        up_s=up_s,
        seed_size=seed_size,
        init_s=init_s,
        db_size=db_size,
        backup=backup,
        release_s=release_s,
        rollback=rollback,
        restored=restored,
        t_back=t_back,
        standin=standin,
    )


def _report_rto(
    *,
    up_s: float,
    seed_size: int,
    init_s: float,
    db_size: int,
    backup: Timed,
    release_s: float,
    rollback: Timed,
    restored: Timed,
    t_back: float,
    standin: DrainStandIn | None,
) -> None:
    s = "3. RTO setup"
    TABLE.add(s, "bva sandbox with its database (speed 1) → ready", f"{up_s:.1f} s")
    TABLE.add(
        s,
        f"pgbench -i -q -s {SCALE} into the sandbox's database",
        f"{init_s:.1f} s",
        f"database {seed_size / MB:.1f} MB (seed) → {db_size / MB:.0f} MB; 2 streaming replicas",
    )
    said = next((line for _, line in backup.lines if line.startswith("backup ")), "")
    TABLE.add(
        s,
        "`bva db backup --env sandbox` (before the release)",
        f"{backup.end - backup.start:.1f} s",
        said.split(": ", 1)[-1][:90],
    )
    TABLE.add(
        s,
        f"release: {len(DB_SERVICES)} services to {RELEASE_TAG} (kubectl set image)",
        f"{release_s:.1f} s",
        ", ".join(DB_SERVICES),
    )

    s = "4. RTO"
    t0 = rollback.start
    rto = restored.end - t0
    TABLE.add(
        s,
        "rollback start → restore end (measured RTO)",
        f"{rto:.1f} s",
        f"{rto / SEED_RTO_S * 100:.1f} % of the seed's RTO of {SEED_RTO_S / 3600:.0f} h "
        f"({'met' if rto < SEED_RTO_S else 'NOT met'}); to every Deployment available again "
        f"{t_back - t0:.1f} s",
    )
    TABLE.add(
        s,
        f"`bva rollback {' '.join(DB_SERVICES)} --yes`",
        f"{rollback.end - t0:.1f} s",
        f"plan printed at {rollback.first('rollback plan for') - t0:.1f} s; {_said(rollback)}",
    )
    r0 = restored.start
    plan_at = restored.first("restore bharathva@sandbox")
    scaled = restored.last(" -> 0")
    drained = next((t for t, line in restored.lines if line.strip() == "safety backup"), math.nan)
    safety = restored.first("  safety backup bharathva")
    restoring = restored.first("  restoring ")
    checking = restored.first("; checking")
    rows_at = restored.last(" rows")
    TABLE.add(
        s,
        "`bva db restore latest --scale-down --yes`",
        f"{restored.end - r0:.1f} s",
        f"started {r0 - rollback.end:.2f} s after the rollback's exit",
    )
    phases = [
        ("start → plan printed", r0, plan_at),
        ("→ services scaled to 0", plan_at, scaled),
        ("→ drained", scaled, drained),
        ("→ safety backup", drained, safety),
        ("→ pg_restore", restoring, checking),
        ("→ row counts", checking, rows_at),
        ("→ scaled back + exit", rows_at, restored.end),
    ]
    TABLE.add(s, "restore phases", "", "; ".join(f"{name} {b - a:.1f} s" for name, a, b in phases))
    if standin is None:
        TABLE.add(s, "drain stand-in", "off", "the sandbox drains by itself")
    else:
        TABLE.add(
            s,
            "drain stand-in (sessions of services with no pod)",
            f"{standin.terminated} sessions ended",
            f"app role NOLOGIN for {standin.nologin_s:.1f} s; "
            + (f"errors: {standin.errors[:2]}" if standin.errors else "no errors")
            + ("" if standin.terminated else "; not needed: the sandbox drains by itself"),
        )


def _said(run: Timed) -> str:
    return next(
        (line.strip() for _, line in run.lines if "rollback on sandbox" in line), "no summary"
    )
