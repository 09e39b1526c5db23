"""The Logs benchmark's input: deterministic Spring Boot console lines written to a file at a
fixed rate, and a record of when each line hit the file.

Lines have the layout the sandbox writes (`backends/sandbox/logtext.py` `render_plain`), one
per line (wrapped here)::

    2026-11-26T05:20:47.123Z  INFO 1 --- [auth-service] [nio-8080-exec-3]
        com.bharathva.auth.web.LoginController   : login ok user=u123 took 12ms seq=000000123

Mostly INFO, ~4 % WARN, ~1 % ERROR; a fifth of the ERRORs are followed by a blank line and a
short stack trace whose lines carry no seq. Every entry ends with a unique, increasing
`seq=%09d`, so a screen scraper can tell the newest line it sees. The templates are built once
(seeded); per line only the seq is formatted and per slice the time, so the writer stays cheap.

Run from the repository's root (it imports only the sandbox's log text helpers, so it
starts fast)::

    python -m tests.bench.log_feed --out FILE --records REC --rate 50000 --start-seq 0 \
        [--lines N] [--duration S] [--gate FILE]

It appends to FILE in slices (one `write()` + flush per ~5 ms slice) and appends one
`<last seq> <time.monotonic()>` line per slice to REC, the time taken right after the write, so
the benchmark maps a seq to the moment it was written (CLOCK_MONOTONIC is system-wide). On
SIGTERM or SIGINT it finishes the current slice and exits 0.
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backends.sandbox.logtext import abbreviate_logger, iso_millis

APP = "auth-service"
TEMPLATES = 1000  # the entry cycle; seq makes every line unique anyway
SEED = 6
SLICE_S = 0.005
MAX_BURST_S = 0.1
SEQ_TOKEN = "seq="

# (level, logger, thread kind, message) — auth-service flavoured, short enough that the
# message stays on screen after the 113-column Spring Boot prefix is scrolled past.
_INFO = (
    ("com.bharathva.auth.web.LoginController", "login ok user=u{u} took {ms}ms"),
    ("com.bharathva.auth.service.TokenService", "token issued user=u{u} ttl=900s"),
    ("com.bharathva.auth.service.TokenService", "token refreshed user=u{u}"),
    ("com.bharathva.auth.web.SessionController", "session check user=u{u} ok"),
    ("com.bharathva.auth.service.UserLookupService", "user loaded id=u{u} took {ms}ms"),
    ("org.springframework.web.servlet.DispatcherServlet", "Completed 200 OK"),
    ("com.bharathva.auth.web.LogoutController", "logout user=u{u}"),
    ("com.bharathva.auth.client.OrderClient", "order lookup user=u{u} took {ms}ms"),
)
_WARN = (
    ("com.bharathva.auth.web.LoginController", "login failed user=u{u} bad password"),
    ("com.zaxxer.hikari.pool.HikariPool", "HikariPool-1 - Thread starvation or clock leap"),
    ("com.bharathva.auth.service.TokenService", "token expired user=u{u}"),
)
_ERROR = (
    ("com.bharathva.auth.web.LoginController", "login error user=u{u}: db timeout"),
    ("org.hibernate.engine.jdbc.spi.SqlExceptionHelper", "Connection is not available"),
    ("com.bharathva.auth.client.OrderClient", "order service unreachable user=u{u}"),
)
_TRACE = (
    "org.springframework.dao.DataAccessResourceFailureException: Unable to acquire JDBC Connection",
    "\tat com.bharathva.auth.service.UserLookupService.load(UserLookupService.java:{a})",
    "\tat com.bharathva.auth.web.LoginController.login(LoginController.java:{b})",
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not "
    "available, request timed out after 30000ms.",
)


@dataclass(frozen=True)
class Template:
    """One entry without its time: `head` goes after the timestamp, up to and including
    `seq=`; `tail` (stack trace lines, each ending in a newline) after the seq's newline."""

    level: str
    head: str
    tail: str
    lines: int  # physical lines, the head line included


def _templates(seed: int = SEED, count: int = TEMPLATES) -> list[Template]:
    rng = random.Random(seed)
    out: list[Template] = []
    for _ in range(count):
        roll = rng.random()
        level: str = "INFO"
        pool: tuple[tuple[str, str], ...] = _INFO
        if roll < 0.01:
            level, pool = "ERROR", _ERROR
        elif roll < 0.05:
            level, pool = "WARN", _WARN
        logger, message = rng.choice(pool)
        text = message.format(u=rng.randrange(1, 5000), ms=rng.randrange(2, 250))
        thread = f"nio-8080-exec-{rng.randrange(1, 11)}"
        head = (
            f" {level:>5} 1 --- [{APP}] [{thread[-15:]:>15}] "
            f"{abbreviate_logger(logger)[-40:]:<40} : "
            f"{text} {SEQ_TOKEN}"
        )
        tail = ""
        lines = 1
        if level == "ERROR" and rng.random() < 0.2:
            depth = rng.randrange(3, 6)
            trace = [t.format(a=rng.randrange(40, 200), b=rng.randrange(40, 200)) for t in _TRACE]
            tail = "\n" + "\n".join(trace[:depth]) + "\n"  # a blank line, then the trace
            lines += 1 + depth
        out.append(Template(level, head, tail, lines))
    return out


TEMPLATE_CYCLE = _templates()


def prefix_columns() -> int:
    """Columns before the message: timestamp (24) + the head up to ' : '."""
    head = TEMPLATE_CYCLE[0].head
    return 24 + head.index(" : ") + 3


def entry(seq: int, stamp: str) -> tuple[str, int]:
    """The text of entry `seq` (with its newline and any trace) and its physical line count."""
    t = TEMPLATE_CYCLE[seq % TEMPLATES]
    return f"{stamp}{t.head}{seq:09d}\n{t.tail}", t.lines


def lines_text(start_seq: int, count: int, ts: float | None = None) -> str:
    """`count` entries from `start_seq`, all stamped `ts` (default now)."""
    stamp = iso_millis(time.time() if ts is None else ts)
    return "".join(entry(s, stamp)[0] for s in range(start_seq, start_seq + count))


# -- the writer ---------------------------------------------------------------------------


@dataclass
class Feed:
    """What one writer run did, read back from its records file."""

    seqs: list[int]  # last seq of each slice, increasing
    times: list[float]  # time.monotonic() right after that slice's write

    @classmethod
    def load(cls, path: Path) -> Feed:
        seqs: list[int] = []
        times: list[float] = []
        try:
            text = path.read_text()
        except OSError:
            return cls(seqs, times)
        for row in text.splitlines():
            parts = row.split()
            if len(parts) == 2:
                seqs.append(int(parts[0]))
                times.append(float(parts[1]))
        return cls(seqs, times)

    def written_at(self, seq: int) -> float | None:
        """When `seq` was written: the first slice whose last seq is ≥ it (None if never)."""
        i = bisect.bisect_left(self.seqs, seq)
        return self.times[i] if i < len(self.seqs) else None

    def seq_at(self, t: float) -> int:
        """The last seq written at or before monotonic time `t` (-1 if none)."""
        i = bisect.bisect_right(self.times, t)
        return self.seqs[i - 1] if i else -1

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else -1


def _read_gate(gate: Path | None, current: int | None) -> int | None:
    if gate is None:
        return None
    try:
        return int(gate.read_text())
    except (OSError, ValueError):
        return current  # not written yet, or caught mid-replace: keep the last value


def write_feed(
    out: Path,
    records: Path,
    rate: float,
    start_seq: int,
    max_lines: int | None,
    duration: float | None,
    stop: list[bool],
    gate: Path | None = None,
) -> int:
    """Append entries to `out` at `rate` physical lines/s until `max_lines` entries or
    `duration` seconds or `stop[0]`. With `gate`, never write a seq above the number in that
    file (re-read every slice): the reader paces the writer. A writer held back (by the gate
    or the CPU) catches up at most MAX_BURST_S worth of lines at once. Returns the next seq."""
    seq = start_seq
    written = 0
    entries = 0
    limit = _read_gate(gate, None)
    burst = max(1, int(rate * MAX_BURST_S))
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rec = open(records, "a", buffering=1, encoding="ascii")  # noqa: SIM115 - closed below
    cycle = TEMPLATE_CYCLE
    n_templates = TEMPLATES
    try:
        t0 = time.monotonic()
        next_slice = t0
        last_millis = -1
        stamp = ""
        while not stop[0]:
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            due = int((now - t0) * rate)
            if due - written > burst:
                written = due - burst  # forgive the debt beyond one burst
            want = due - written
            limit = _read_gate(gate, limit)
            if want > 0:
                wall = time.time()
                millis = int(wall * 1000)
                if millis != last_millis:
                    stamp = iso_millis(wall)
                    last_millis = millis
                parts: list[str] = []
                n = 0
                while n < want:
                    if max_lines is not None and entries >= max_lines:
                        break
                    if gate is not None and (limit is None or seq > limit):
                        break
                    t = cycle[seq % n_templates]
                    parts.append(f"{stamp}{t.head}{seq:09d}\n{t.tail}")
                    n += t.lines
                    seq += 1
                    entries += 1
                if parts:
                    os.write(fd, "".join(parts).encode())
                    rec.write(f"{seq - 1} {time.monotonic():.6f}\n")
                    written += n
                if max_lines is not None and entries >= max_lines:
                    break
            next_slice += SLICE_S
            delay = next_slice - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_slice = time.monotonic()  # behind: catch up in the next, bigger slice
    finally:
        os.close(fd)
        rec.close()
    return seq


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--records", type=Path, required=True)
    p.add_argument("--rate", type=float, required=True, help="physical lines per second")
    p.add_argument("--start-seq", type=int, default=0)
    p.add_argument("--lines", type=int, default=None, help="stop after this many entries")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--gate", type=Path, default=None, help="never write a seq above this file's")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    stop = [False]

    def on_signal(_sig: int, _frame: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    write_feed(
        args.out,
        args.records,
        args.rate,
        args.start_seq,
        args.lines,
        args.duration,
        stop,
        args.gate,
    )
    return 0


def iter_seqs(screen: str) -> Iterator[int]:
    """Every `seq=NNNNNNNNN` on a captured screen."""
    pos = 0
    while (pos := screen.find(SEQ_TOKEN, pos)) != -1:
        digits = screen[pos + 4 : pos + 13]
        if len(digits) == 9 and digits.isdigit():
            yield int(digits)
        pos += 4


if __name__ == "__main__":
    sys.exit(main())
