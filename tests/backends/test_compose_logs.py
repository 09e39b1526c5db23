"""The compose log reader against a real Docker Engine: catch-up with tail and since, a follow
that delivers what is written after it started, stdout and stderr, a line the Engine sent in
pieces, a reconnect from the resume point that neither loses nor repeats, stop() cutting a
blocked follow short, a missing container, and sanitised control characters. The frame
splitter is also fed by hand, a byte at a time."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.compose import labels as L
from backends.compose.engine import Engine
from backends.compose.log_stream import ContainerLogReader, LogLines, log_params, unix_since
from backends.logs.inbox import CaughtUp, Chunk, Ended, Inbox, StreamRequest
from backends.logs.join import Joiner, Resume
from backends.logs.models import LogLine
from backends.logs.parse import clean, parse_kubelet_time
from tests.support.dockerd import Dockerd, import_image, start_dockerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.xdist_group("dockerd")

PROJECT = "bharathva"
IMAGE = "bharathva/log-writer:1.0.0"
NAME = f"{PROJECT}-auth-service-1"
COUNTER = 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 0.1; done'
# Bursts of five lines, then a second of quiet: long enough for a short read timeout to end
# a follow the way a dropped connection does.
BURSTS = (
    'i=0; while true; do for j in 1 2 3 4 5; do echo "line $i"; i=$((i+1)); done; sleep 1; done'
)
# 9000 "é" (18000 bytes): the log driver cuts it in two partial messages at 16 KiB, which
# falls between two characters (the driver would otherwise store U+FFFD for the cut one).
LONG = "s=éééééééééé; s=$s$s$s$s$s$s$s$s$s$s; s=$s$s$s$s$s$s$s$s$s$s; s=$s$s$s$s$s$s$s$s$s"


@pytest.fixture(scope="module")
def engine() -> Iterator[Dockerd]:
    running = start_dockerd()
    try:
        with running.client() as api:
            import_image(api, IMAGE, None, ["sh"])
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(engine: Dockerd) -> Iterator[Any]:
    with engine.client() as client:
        try:
            yield client
        finally:
            for c in client.containers(all=True):
                client.remove_container(c["Id"], force=True)


def run(api: Any, script: str, *, name: str = NAME, tty: bool = False, wait: bool = False) -> str:
    """A compose-labelled container running ``sh -c script``; with ``wait``, until it exits."""
    labels = {L.PROJECT: PROJECT, L.SERVICE: "auth-service", L.NUMBER: "1", L.ONEOFF: "False"}
    c = api.create_container(IMAGE, command=["sh", "-c", script], name=name, tty=tty,
                             labels=labels, stop_signal="SIGKILL")  # fmt: skip
    api.start(c["Id"])
    if wait:
        api.wait(c["Id"], timeout=20)
    return str(c["Id"])


def written(api: Any, name: str, n: int) -> None:
    """Wait until the container has written ``n`` lines."""
    wait_until(lambda: api.logs(name).count(b"\n") >= n, 10, f"{n} lines from {name}")


class Drain:
    """One reader's items as the log source takes them: drained on the loop, the joiner
    flushed when the stream ends."""

    def __init__(self, inbox: Inbox, joiner: Joiner) -> None:
        self.inbox = inbox
        self.joiner = joiner
        self.items: list[Chunk | CaughtUp | Ended] = []
        self.lines: list[LogLine] = []
        self.ended: Ended | None = None

    @property
    def messages(self) -> list[str]:
        return [line.message for line in self.lines]

    def take(self) -> None:
        for item in self.inbox.drain():
            self.items.append(item)
            if isinstance(item, Chunk):
                self.lines.extend(item.entries)
            elif isinstance(item, Ended):
                self.ended = item
                with self.joiner.lock:
                    self.joiner.flush(self.lines)

    async def until(self, done: Callable[[Drain], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        self.take()
        while not done(self):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out waiting for {what}; got {self.messages[-20:]}, "
                            f"ended {self.ended}")  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.inbox.event.wait(), min(left, 0.2))
            self.take()

    async def end(self, timeout: float = 10.0) -> Ended:
        await self.until(lambda d: d.ended is not None, timeout, "the end of the stream")
        assert self.ended is not None
        return self.ended


def reader(
    engine: Dockerd,
    drain: Drain | None = None,
    *,
    pod: str = NAME,
    follow: bool = False,
    **options: Any,
) -> tuple[ContainerLogReader, Drain]:
    timeouts = {k: options.pop(k) for k in ("follow_read_timeout",) if k in options}
    if drain is None:
        joiner = Joiner(pod=pod, container="auth-service", service="auth-service", track="stable")
        drain = Drain(Inbox(asyncio.get_running_loop(), 10_000), joiner)
    # Namespace and container mean nothing to the Engine: the reader ignores them.
    req = StreamRequest(pod=pod, container="ignored", namespace="ignored", follow=follow,
                        **options)  # fmt: skip
    r = ContainerLogReader(1, Engine(engine.host), req, drain.inbox, drain.joiner, **timeouts)
    r.start()
    return r, drain


def numbers(messages: list[str]) -> list[int]:
    out = []
    for m in messages:
        match = re.fullmatch(r"line (\d+)", m)
        assert match, f"not a counter line: {m!r}"
        out.append(int(match.group(1)))
    return out


def stop(r: ContainerLogReader) -> None:
    r.stop()
    r.join(5)
    assert not r.is_alive()


# --- catching up -----------------------------------------------------------------------------


async def test_catch_up_reads_stdout_and_stderr_with_tail_and_since(
    engine: Dockerd, api: Any
) -> None:
    script = "; ".join(
        [
            'echo "old 0"', "sleep 0.05", 'echo "old 1" >&2', "sleep 0.05", 'echo "old 2"',
            "sleep 0.3",
            'echo "new 0"', "sleep 0.05", 'echo "new 1" >&2', "sleep 0.05", 'echo "new 2"',
        ]
    )  # fmt: skip
    run(api, script, wait=True)
    every = ["old 0", "old 1", "old 2", "new 0", "new 1", "new 2"]

    r, whole = reader(engine)
    ended = await whole.end()
    assert ended.error is None and ended.received
    assert whole.messages == every  # stderr's lines among stdout's, in order
    kinds = [type(item) for item in whole.items]
    assert kinds.index(CaughtUp) == len(kinds) - 2  # history, then CaughtUp, then Ended
    assert all(item.catch_up for item in whole.items if isinstance(item, Chunk))
    # The stamps are the Engine's own: close to now, strictly increasing.
    stamps = [line.ts for line in whole.lines]
    assert stamps == sorted(set(stamps)) and abs(time.time() - stamps[0]) < 60
    assert ended.resume == Resume(stamps[-1], 1)

    _, tail = reader(engine, tail=2)
    await tail.end()
    assert tail.messages == ["new 1", "new 2"]

    _, since = reader(engine, since_time=stamps[3])  # "new 0" itself is kept
    await since.end()
    assert since.messages == ["new 0", "new 1", "new 2"]

    _, both = reader(engine, since_time=stamps[1], tail=2)
    await both.end()
    assert both.messages == ["new 1", "new 2"]

    _, nothing = reader(engine, tail=0)
    ended = await nothing.end()
    assert nothing.messages == [] and ended.error is None and ended.resume is None
    r.join(5)


def test_the_query_says_what_to_read() -> None:
    def params(follow: bool = False, resume: Resume | None = None, **kw: Any) -> dict[str, str]:
        req = StreamRequest(pod=NAME, container="", **kw)
        return log_params(req, follow=follow, resume=resume, now=lambda: 1_800_000_100.25)

    base = {"stdout": "1", "stderr": "1", "timestamps": "1"}
    assert params() == base
    assert params(True, tail=5) == {**base, "follow": "1", "tail": "5"}
    assert params(since_seconds=100)["since"] == "1800000000.250000000"
    # A microsecond early: a line stamped at since_time itself is kept.
    assert params(since_time=1_800_000_000.5, tail=3) == {
        **base, "tail": "3", "since": "1800000000.499999000",
    }  # fmt: skip
    # A resume point replaces the window, asked a little early (Dedupe drops the repeats).
    resumed = params(True, Resume(1_800_000_000.123457, 1), tail=5)
    assert resumed == {**base, "follow": "1", "since": "1800000000.123455000"}
    stamp = "2026-12-07T12:22:37.123456789Z"
    ts = parse_kubelet_time(stamp)
    assert ts is not None
    asked = unix_since(ts, early_us=2)
    assert asked.startswith("1796646157.12345") and asked <= "1796646157.123456789"


# --- following -------------------------------------------------------------------------------


async def test_follow_delivers_what_is_written_after_it_started(engine: Dockerd, api: Any) -> None:
    run(api, COUNTER)
    written(api, NAME, 3)
    r, drain = reader(engine, follow=True, tail=2)
    try:
        await drain.until(lambda d: len(d.lines) >= 15, 10, "15 lines")
    finally:
        stop(r)
    got = numbers(drain.messages)
    assert got == list(range(got[0], got[0] + len(got)))  # none lost, none twice
    catch_up = [item for item in drain.items if isinstance(item, Chunk) and item.catch_up]
    assert sum(item.lines for item in catch_up) == 2
    assert got[-1] >= got[0] + 14  # written while the reader followed
    assert drain.ended is None  # stopped: nothing more is said


async def test_a_follow_of_a_stopped_container_ends_after_its_log(
    engine: Dockerd, api: Any
) -> None:
    # Apart: the Engine copies stdout and stderr separately, and stamps lines as they arrive.
    run(api, 'echo "first"; sleep 0.05; echo "last words" >&2', wait=True)
    t0 = time.monotonic()
    r, drain = reader(engine, follow=True)
    ended = await drain.end()
    assert ended.error is None and ended.received
    assert drain.messages == ["first", "last words"]
    assert any(isinstance(item, CaughtUp) for item in drain.items)
    assert time.monotonic() - t0 < 5
    r.join(5)


async def test_a_reconnect_from_the_resume_point_neither_loses_nor_repeats(
    engine: Dockerd, api: Any
) -> None:
    run(api, BURSTS)
    written(api, NAME, 5)
    # The follow times out in the first quiet second, as a dropped connection ends it.
    first, drain = reader(engine, follow=True, follow_read_timeout=0.5)
    ended = await drain.end()
    assert ended.error is None and ended.resume is not None
    seen = numbers(drain.messages)
    assert seen == list(range(len(seen))) and len(seen) >= 5
    # Lines are written while nothing reads; the next reader starts from the resume point.
    written(api, NAME, len(seen) + 5)
    drain.ended = None
    second, _ = reader(engine, drain, follow=False, tail=1, resume=ended.resume)
    await drain.end()
    got = numbers(drain.messages)
    assert got == list(range(len(got))), "lines lost or repeated across the reconnect"
    assert len(got) >= len(seen) + 5
    first.join(5)
    second.join(5)


async def test_stop_cuts_a_blocked_follow_short(engine: Dockerd, api: Any) -> None:
    run(api, 'echo "hello"; exec sleep 3600')
    written(api, NAME, 1)
    r, drain = reader(engine, follow=True)
    await drain.until(lambda d: any(isinstance(i, CaughtUp) for i in d.items), 10, "CaughtUp")
    # The follow request is open and its read waits for a line that never comes.
    wait_until(lambda: r._reading._response is not None, 5, "the follow to be open")
    await asyncio.sleep(0.3)
    assert r.is_alive()
    t0 = time.monotonic()
    r.stop()
    r.join(2)
    took = time.monotonic() - t0
    assert not r.is_alive() and took < 1.0, f"stop() took {took:.2f}s"
    await asyncio.sleep(0.1)
    drain.take()
    assert drain.ended is None  # stopped: nothing more is said
    with drain.joiner.lock:
        drain.joiner.flush(drain.lines)  # as the source does after a quiet moment
    assert drain.messages == ["hello"]


# --- what comes out --------------------------------------------------------------------------


@pytest.mark.parametrize("tty", [False, True], ids=["multiplexed", "tty"])
async def test_a_line_sent_in_pieces_comes_back_whole(engine: Dockerd, api: Any, tty: bool) -> None:
    run(api, f'{LONG}; echo "$s"; echo "after"', tty=tty, wait=True)
    raw = api.logs(NAME, timestamps=True)
    assert raw.count(b"Z ") >= 3, "the Engine did not cut the long line"  # its own stamps
    r, drain = reader(engine)
    await drain.end()
    assert drain.messages == ["é" * 9000, "after"]
    assert drain.lines[0].ts < drain.lines[1].ts
    r.join(5)


async def test_control_characters_are_sanitised(engine: Dockerd, api: Any) -> None:
    run(api, r"printf 'red \033[31mX\033[0m \033[2J bell \007 bidi \342\200\256 end\n'", wait=True)
    r, drain = reader(engine)
    await drain.end()
    [message] = drain.messages
    assert message == "red \\x1b[31mX\\x1b[0m \\x1b[2J bell \\x07 bidi \\u202e end"
    assert message == clean("red \x1b[31mX\x1b[0m \x1b[2J bell \x07 bidi \u202e end")
    r.join(5)


async def test_a_missing_container_ends_with_one_line(engine: Dockerd, api: Any) -> None:
    r, drain = reader(engine, pod=f"{PROJECT}-nope-1", follow=True)
    ended = await drain.end()
    assert ended.error == f"No such container: {PROJECT}-nope-1"
    assert not ended.received and ended.resume is None
    assert not any(isinstance(item, CaughtUp | Chunk) for item in drain.items)
    r.join(5)


async def test_an_engine_that_is_not_there_ends_with_one_line(tmp_path: Path) -> None:
    joiner = Joiner(pod=NAME, container="", service="", track="stable")
    drain = Drain(Inbox(asyncio.get_running_loop(), 100), joiner)
    host = f"unix://{tmp_path}/no.sock"
    r = ContainerLogReader(1, Engine(host), StreamRequest(NAME, ""), drain.inbox, joiner)
    r.start()
    ended = await drain.end()
    assert ended.error is not None and "\n" not in ended.error
    assert ended.error.startswith(f"cannot reach the Docker Engine at {host}")
    r.join(5)


# --- the frame splitter, fed by hand ---------------------------------------------------------


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def split(lines: LogLines, data: bytes, step: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(0, len(data), step):
        out.extend(lines.feed(data[i : i + step]))
    return out + lines.end()


S1 = b"2026-12-07T12:22:37.100000000Z "
S2 = b"2026-12-07T12:22:37.200000000Z "
S3 = b"2026-12-07T12:22:37.300000000Z "


@pytest.mark.parametrize("step", [1, 3, 8, 9, 40, 1 << 16])
def test_frames_become_lines_whatever_the_reads(step: int) -> None:
    data = b"".join(
        [
            frame(1, S1 + b"one\n"),
            frame(1, S2 + b"caf\xc3"),  # a line in partial messages (a character cut),
            frame(2, S2 + b"on stderr meanwhile\n"),  # another stream between its pieces,
            frame(1, S2 + b"\xa9 au lait\n"),  # the stamp repeated
            frame(1, S3 + b"no newline"),  # a message of its own, without a newline
            frame(2, S3 + b"err\r\n"),
            frame(1, S3.replace(b".3", b".4") + b"next"),
            frame(1, b""),
        ]
    )
    got = split(LogLines(multiplexed=True), data, step)
    assert got == [
        S1 + b"one",
        S2 + b"on stderr meanwhile",
        S2 + "café au lait".encode(),
        S3 + b"err\r",
        S3 + b"no newline",  # whole once the next message of its stream shows it was
        S3.replace(b".3", b".4") + b"next",
    ]


def test_overlong_lines_are_cut_and_the_rest_dropped() -> None:
    data = frame(1, S1 + b"x" * 50) + frame(1, S1 + b"y" * 50 + b"\n") + frame(1, S2 + b"ok\n")
    got = split(LogLines(multiplexed=True, max_line=64), data, 7)
    assert got == [(S1 + b"x" * 50 + b"y" * 50)[:64], S2 + b"ok"]
    raw = S1 + b"z" * 100 + b"\n" + S2 + b"ok\n"
    assert split(LogLines(multiplexed=False, max_line=64), raw, 5) == [
        (S1 + b"z" * 100)[:64], S2 + b"ok",
    ]  # fmt: skip


def test_a_raw_stream_drops_the_stamps_a_long_line_repeats() -> None:
    piece = b"a" * 16_384
    raw = S1 + piece + S1 + piece + S1 + b"end\r\n" + S2 + b"short " + S1 + b"\r\n"
    got = split(LogLines(multiplexed=False), raw, 4096)
    assert got == [S1 + piece + piece + b"end\r", S2 + b"short " + S1 + b"\r"]


def test_a_stream_that_is_not_multiplexed_is_read_raw() -> None:
    lines = LogLines(multiplexed=True)
    assert split(lines, S1 + b"tty after all\n" + S2 + b"two\n", 5) == [
        S1 + b"tty after all", S2 + b"two",
    ]  # fmt: skip
    assert not lines.multiplexed


async def test_the_reader_thread_is_a_daemon_named_after_the_container() -> None:
    joiner = Joiner(pod=NAME, container="", service="", track="stable")
    inbox = Inbox(asyncio.get_running_loop(), 10)
    r = ContainerLogReader(1, Engine("unix:///nowhere"), StreamRequest(NAME, ""), inbox, joiner)
    assert isinstance(r, threading.Thread) and r.daemon and r.name == f"bva-log-{NAME}"
    assert not r.stopped
    r.stop()  # before start: nothing to cut yet
    assert r.stopped
