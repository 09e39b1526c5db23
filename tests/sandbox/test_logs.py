from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime

import pytest

from backends.sandbox.logs import (
    ContainerLogsNotFound,
    LogBook,
    PodLogsNotFound,
    PreviousLogsNotFound,
    kubelet_timestamp,
)
from backends.sandbox.logtext import abbreviate_logger
from backends.sandbox.view import Behaviour, LogFormat

T0 = 1_795_670_447.123  # 2026-11-26T05:20:47.123Z

PLAIN = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[ A-Z]{5}) 1 --- \[(?P<app>[^\]]+)\] "
    r"\[(?P<thread>.{15})\] (?P<logger>.{40}) : (?P<msg>.*)$"
)
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def start(
    book: LogBook,
    pod: str = "auth-service-7d9f8b6c5d-x2k4p",
    *,
    behaviour: Behaviour = "ok",
    fmt: LogFormat = "plain",
    service: str = "auth-service",
    image: str = "registry.example.com/auth-service:1.4.2",
) -> str:
    book.container_started(
        pod, service, service=service, fmt=fmt, behaviour=behaviour, image=image, port=8081
    )
    return pod


def run(book: LogBook, clock: Clock, seconds: float, step: float = 0.25) -> None:
    for _ in range(round(seconds / step)):
        clock.now += step
        book.tick()


def test_startup_lines_follow_spring_boot_layout() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock)
    pod = start(book)
    lines = book.read(pod, "auth-service")
    assert lines[0].startswith(
        "2026-11-26T05:20:47.123Z  INFO 1 --- [auth-service] [           main]"
    )
    assert "Starting AuthServiceApplication v1.4.2 using Java 17" in lines[0]
    assert "with PID 1" in lines[0]
    text = "\n".join(lines)
    for expected in (
        'The following 1 profile is active: "prod"',
        "Tomcat initialized with port 8081 (http)",
        "HikariPool-1 - Start completed.",
        "Started AuthServiceApplication in ",
    ):
        assert expected in text
    for line in lines:
        m = PLAIN.match(line)
        assert m, line
        assert m["app"] == "auth-service"


def test_logger_abbreviation_matches_logback() -> None:
    assert (
        abbreviate_logger("org.springframework.boot.web.embedded.tomcat.TomcatWebServer")
        == "o.s.b.w.embedded.tomcat.TomcatWebServer"
    )
    assert (
        abbreviate_logger(
            "org.apache.catalina.core.ContainerBase.[Tomcat].[localhost].[/].[dispatcherServlet]"
        )
        == "o.a.c.c.C.[.[.[/].[dispatcherServlet]"
    )
    assert abbreviate_logger("com.bharathva.auth.controller.AuthController") == (
        "c.b.auth.controller.AuthController"
    )


def test_running_lines_rate_levels_and_threads() -> None:
    clock = Clock()
    book = LogBook(seed=7, clock=clock)
    pod = start(book)
    before = len(book.read(pod, "auth-service"))
    run(book, clock, 600)
    lines = book.read(pod, "auth-service")[before:]
    heads = [m for line in lines if (m := PLAIN.match(line))]
    per_second = len(heads) / 600
    assert 0.8 <= per_second <= 3.5
    levels = [m["level"].strip() for m in heads]
    assert levels.count("INFO") > 0.8 * len(levels)
    assert "WARN" in levels
    errors = levels.count("ERROR")
    assert 2 <= errors <= 30  # about one a minute
    assert any(re.fullmatch(r" *n?io-8081-exec-\d+", m["thread"]) for m in heads)
    assert any(line.startswith("\tat ") for line in lines)


def test_speed_scales_line_rate() -> None:
    counts = []
    for speed in (1.0, 4.0):
        clock = Clock()
        book = LogBook(seed=3, clock=clock, speed=speed)
        pod = start(book)
        run(book, clock, 120)
        counts.append(len([x for x in book.read(pod, "auth-service") if PLAIN.match(x)]))
    assert counts[1] > 3 * counts[0]


def test_unhealthy_logs_pool_timeouts_and_errors() -> None:
    clock = Clock()
    book = LogBook(seed=5, clock=clock)
    pod = start(book, behaviour="unhealthy", image="r/auth-service:1.5.0-unhealthy")
    run(book, clock, 120)
    lines = book.read(pod, "auth-service")
    text = "\n".join(lines)
    assert "HikariPool-1 - Connection is not available, request timed out after 30000ms" in text
    heads = [m for line in lines if (m := PLAIN.match(line))]
    bad = [m for m in heads if m["level"].strip() in ("WARN", "ERROR")]
    assert len(bad) > 0.25 * len(heads)


def test_crash_writes_failure_with_stack_trace_and_nothing_more() -> None:
    clock = Clock()
    book = LogBook(seed=2, clock=clock)
    pod = start(
        book, behaviour="crash", image="r/tweet-service:2.0.0-crash", service="tweet-service"
    )
    lines = book.read(pod, "tweet-service")
    failed = next(i for i, x in enumerate(lines) if x.endswith(": Application run failed"))
    assert " ERROR 1 --- [tweet-service]" in lines[failed]
    trace = lines[failed + 1 :]
    assert trace[0] == ""
    assert "BeanCreationException" in trace[1]
    assert any(x.startswith("\tat ") for x in trace)
    assert any(x.startswith("Caused by: ") for x in trace)
    run(book, clock, 60)
    assert book.read(pod, "tweet-service") == lines


def test_json_format_is_logstash_encoder_shape() -> None:
    clock = Clock()
    book = LogBook(seed=2, clock=clock)
    pod = start(book, behaviour="crash", fmt="json", image="r/user-service:1.0.0-crash")
    docs = [json.loads(x) for x in book.read(pod, "auth-service")]
    for doc in docs:
        assert {"@timestamp", "@version", "message", "logger_name", "thread_name", "level"} <= set(
            doc
        )
        assert doc["@timestamp"] == "2026-11-26T05:20:47.123Z"
        assert doc["@version"] == "1"
        assert isinstance(doc["level_value"], int)
    failed = docs[-1]
    assert failed["message"] == "Application run failed"
    assert failed["level"] == "ERROR" and failed["level_value"] == 40000
    assert "\n\tat " in failed["stack_trace"]
    assert "Caused by: " in failed["stack_trace"]


def test_restart_keeps_previous_instance() -> None:
    clock = Clock()
    book = LogBook(seed=2, clock=clock)
    pod = start(book, behaviour="crash")
    first = book.read(pod, "auth-service")
    with pytest.raises(PreviousLogsNotFound) as err:
        book.read(pod, "auth-service", previous=True)
    assert str(err.value) == (
        f'previous terminated container "auth-service" in pod "{pod}" not found'
    )
    book.container_terminated(pod, "auth-service", exit_code=1, reason="Error")
    clock.now += 10
    start(book, behaviour="crash")
    assert book.read(pod, "auth-service", previous=True) == first
    second = book.read(pod, "auth-service")
    assert second[0].startswith("2026-11-26T05:20:57.123Z")
    assert second != first


def test_unknown_pod_container_and_deleted_pod() -> None:
    book = LogBook(seed=1, clock=Clock())
    with pytest.raises(LookupError, match="pod nope not found"):
        book.read("nope", "c")
    pod = start(book)
    with pytest.raises(ContainerLogsNotFound):
        book.read(pod, "sidecar")
    book.pod_deleted(pod)
    with pytest.raises(PodLogsNotFound):
        book.read(pod, "auth-service")


def test_timestamps_tail_since_and_limit() -> None:
    clock = Clock()
    book = LogBook(seed=4, clock=clock)
    pod = start(book)
    run(book, clock, 30)
    stamped = book.read(pod, "auth-service", timestamps=True)
    assert all(STAMP.match(x) for x in stamped)
    assert stamped[0].startswith("2026-11-26T05:20:47.123000")
    assert stamped[0][31:] == book.read(pod, "auth-service")[0]
    assert kubelet_timestamp(T0) == "2026-11-26T05:20:47.123000000Z"
    assert kubelet_timestamp(T0 + 0.000456789) == "2026-11-26T05:20:47.123457000Z"

    assert book.read(pod, "auth-service", tail_lines=3) == book.read(pod, "auth-service")[-3:]
    assert book.read(pod, "auth-service", tail_lines=0) == []

    recent = book.read(pod, "auth-service", since_seconds=5, timestamps=True)
    assert 0 < len(recent) < len(stamped)
    assert recent == stamped[-len(recent) :]
    assert book.read(pod, "auth-service", since_time=clock.now + 1) == []

    limited = book.read(pod, "auth-service", limit_bytes=100)
    assert len(limited) == 1 and len(limited[0].encode()) == 100
    exact = book.read(pod, "auth-service")[:2]
    size = sum(len(x.encode()) + 1 for x in exact)
    assert book.read(pod, "auth-service", limit_bytes=size) == exact


def test_same_seed_same_lines() -> None:
    outputs = []
    for _ in range(2):
        clock = Clock()
        book = LogBook(seed=11, clock=clock)
        pod = start(book)
        start(book, "auth-service-2", behaviour="unhealthy")
        run(book, clock, 20)
        outputs.append(book.read(pod, "auth-service") + book.read("auth-service-2", "auth-service"))
    assert outputs[0] == outputs[1]


def test_max_lines_per_container() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock, max_lines_per_container=50, speed=10)
    pod = start(book)
    run(book, clock, 30)
    assert len(book.read(pod, "auth-service")) == 50


def test_no_secret_like_text() -> None:
    clock = Clock()
    book = LogBook(seed=9, clock=clock, speed=20)
    pods: list[tuple[str, str]] = []
    for svc in ("auth-service", "gateway-service", "user-service"):
        behaviours: tuple[Behaviour, ...] = ("ok", "unhealthy", "crash")
        for i, behaviour in enumerate(behaviours):
            pods.append((start(book, f"{svc}-{i}", service=svc, behaviour=behaviour), svc))
    run(book, clock, 60)
    text = "\n".join("\n".join(book.read(pod, svc)) for pod, svc in pods)
    assert not re.search(r"(?i)(password|passwd|secret|api[_-]?key|bearer)\s*[=:]", text)
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}", text)  # JWT-looking strings


async def test_follow_streams_backlog_then_new_lines_until_terminated() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock)
    pod = start(book)
    backlog = book.read(pod, "auth-service", tail_lines=2)
    received: list[str] = []

    async def reader() -> None:
        async for batch in book.follow(pod, "auth-service", tail_lines=2):
            received.extend(batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    assert received == backlog
    run(book, clock, 10)
    await asyncio.sleep(0)
    assert len(received) > len(backlog)
    book.container_terminated(pod, "auth-service", exit_code=143, reason="Completed")
    await asyncio.wait_for(task, 1)
    assert received == book.read(pod, "auth-service")[-len(received) :]
    assert received[-1].endswith("HikariPool-1 - Shutdown completed.")


async def test_follow_ends_when_pod_deleted_and_timestamps_apply() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock)
    pod = start(book)
    stream = book.follow(pod, "auth-service", tail_lines=0, timestamps=True)
    got: list[str] = []

    async def reader() -> None:
        async for batch in stream:
            got.extend(batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    run(book, clock, 5)
    book.pod_deleted(pod)
    await asyncio.wait_for(task, 1)
    assert got and all(STAMP.match(x) for x in got)


async def test_follow_of_terminated_instance_returns_existing_lines() -> None:
    book = LogBook(seed=1, clock=Clock())
    pod = start(book, behaviour="crash")
    book.container_terminated(pod, "auth-service", exit_code=1, reason="Error")
    lines = [x async for batch in book.follow(pod, "auth-service") for x in batch]
    assert lines == book.read(pod, "auth-service")


def test_follow_raises_at_call_time_for_unknown_pod() -> None:
    book = LogBook(seed=1, clock=Clock())
    with pytest.raises(LookupError):
        book.follow("nope", "c")


async def test_slow_follower_is_bounded_and_told_what_it_missed() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock, speed=100, follow_buffer=2000)
    pod = start(book)
    stream = book.follow(pod, "auth-service", tail_lines=0)
    it = aiter(stream)

    async def next_batch() -> list[str]:
        return await anext(it)

    first_task = asyncio.create_task(next_batch())
    await asyncio.sleep(0)
    run(book, clock, 60)  # ~12k lines while the reader sleeps
    got = await first_task
    assert got
    book.container_terminated(pod, "auth-service", exit_code=1, reason="Error")
    async for batch in it:
        got.extend(batch)
    assert len(got) <= 2000 + 1
    assert "log lines skipped, reader too slow" in got[0]
    assert got[1:] == book.read(pod, "auth-service")[-(len(got) - 1) :]


async def test_many_followers_do_not_poll() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock)
    pods = [start(book, f"auth-service-{i}") for i in range(50)]
    counts = dict.fromkeys(pods, 0)

    async def reader(pod: str) -> None:
        async for batch in book.follow(pod, "auth-service", tail_lines=0):
            counts[pod] += len(batch)

    tasks = [asyncio.create_task(reader(p)) for p in pods for _ in range(4)]
    await asyncio.sleep(0.05)
    assert all(v == 0 for v in counts.values())  # idle followers are parked, not spinning
    run(book, clock, 5)
    await asyncio.sleep(0)
    for p in pods:
        book.pod_deleted(p)
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert all(v > 0 for v in counts.values())


def test_previous_during_back_off_is_the_instance_that_just_crashed() -> None:
    clock = Clock()
    book = LogBook(seed=2, clock=clock)
    pod = start(
        book, behaviour="crash", image="r/tweet-service:2.0.0-crash", service="tweet-service"
    )
    with pytest.raises(LookupError, match="previous terminated container"):
        book.read(pod, "tweet-service", previous=True)  # still running its first start
    crashed = book.read(pod, "tweet-service")
    book.container_terminated(pod, "tweet-service", exit_code=1, reason="Error")
    assert book.read(pod, "tweet-service", previous=True) == crashed
    start(
        book, pod, behaviour="crash", image="r/tweet-service:2.0.0-crash", service="tweet-service"
    )
    assert book.read(pod, "tweet-service", previous=True) == crashed


def _twin_books(max_lines: int) -> tuple[LogBook, LogBook, Clock]:
    """Two books on one clock with the same pods: ``hot`` read every tick, ``cold`` never."""
    clock = Clock()
    books = []
    for _ in range(2):
        book = LogBook(seed=13, clock=clock, max_lines_per_container=max_lines)
        start(book)
        start(book, "auth-service-sick", behaviour="unhealthy")
        books.append(book)
    return books[0], books[1], clock


def test_lines_do_not_depend_on_when_they_are_read() -> None:
    hot, cold, clock = _twin_books(max_lines=400)
    pods = ("auth-service-7d9f8b6c5d-x2k4p", "auth-service-sick")
    for _ in range(4 * 300):
        clock.now += 0.25
        hot.tick()
        cold.tick()
        for pod in pods:
            hot.read(pod, "auth-service", tail_lines=1)  # keeps its cache incremental
    for pod in pods:
        assert cold.read(pod, "auth-service", tail_lines=20) == hot.read(
            pod, "auth-service", tail_lines=20
        )
        assert cold.read(pod, "auth-service", since_seconds=30, timestamps=True) == hot.read(
            pod, "auth-service", since_seconds=30, timestamps=True
        )
        everything = hot.read(pod, "auth-service")
        assert len(everything) == 400  # five minutes is more than the book keeps
        assert cold.read(pod, "auth-service") == everything


def test_an_unread_pod_costs_nothing_and_a_tail_renders_little() -> None:
    clock = Clock()
    book = LogBook(seed=3, clock=clock)
    pod = start(book)
    for _ in range(4 * 3600):  # an hour nobody reads
        clock.now += 0.25
        book.tick()
    inst = book._instance(pod, "auth-service", previous=False)
    assert not inst.body
    assert len(book.read(pod, "auth-service", tail_lines=20)) == 20
    assert len(inst.body) < 100
    lines = book.read(pod, "auth-service", timestamps=True)
    assert len(lines) == 5000
    stamps = [line[:30] for line in lines if STAMP.match(line)]
    assert stamps == sorted(stamps)
    assert not any("Started AuthServiceApplication" in line for line in lines)  # rotated out


async def test_a_follower_gets_each_step_when_it_comes() -> None:
    clock = Clock()
    book = LogBook(seed=1, clock=clock)
    pod = start(book)
    got: list[str] = []

    async def reader() -> None:
        async for batch in book.follow(pod, "auth-service", tail_lines=0, timestamps=True):
            got.extend(batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    for _ in range(40):
        clock.now += 0.25
        seen = len(got)
        book.tick()
        await asyncio.sleep(0)
        # Stamped at the step just passed: never later than the clock, never a tick behind.
        assert all(clock.now - 0.25 < _stamp_of(x) <= clock.now for x in got[seen:])
    assert got
    assert got == book.read(pod, "auth-service", timestamps=True)[-len(got) :]
    book.pod_deleted(pod)
    await asyncio.wait_for(task, 1)


def _stamp_of(line: str) -> float:
    return datetime.fromisoformat(line[:26] + "+00:00").timestamp()


async def test_prepare_renders_a_long_history_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backends.sandbox.logs.CATCH_UP_SLICE_S", 0.0005)
    clock = Clock()
    book = LogBook(seed=3, clock=clock, max_lines_per_container=2000)
    pod = start(book)
    clock.now += 3600
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_work())
    await book.prepare(pod, "auth-service")
    task.cancel()
    assert turns > 1  # the loop ran between slices
    inst = book._instance(pod, "auth-service", previous=False)
    assert len(inst.body) == 2000
    assert len(book.read(pod, "auth-service")) == 2000
    with pytest.raises(PreviousLogsNotFound):
        await book.prepare(pod, "auth-service", previous=True)
