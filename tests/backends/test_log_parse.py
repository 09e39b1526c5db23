"""Log parsing without a cluster: Spring Boot's plain pattern, logstash JSON, levels,
multi-line stack traces, kubelet timestamps, unparsed text, hostile input, the filter, and
the resume bookkeeping of a reader."""

from __future__ import annotations

import dataclasses
import gc
import json
import random
import re

import pytest

from backends.kube.log_stream import log_query
from backends.logs import models as log_models
from backends.logs.inbox import StreamRequest
from backends.logs.join import Dedupe, Joiner, Resume, parse_lines
from backends.logs.models import (
    FilterError,
    LogFilter,
    LogLine,
    level_rank,
    line_row,
    normalize_level,
)
from backends.logs.parse import (
    MAX_EXTRA_LINES,
    MAX_LINE_CHARS,
    Classifier,
    Kind,
    classify,
    parse_kubelet_time,
)
from backends.sandbox.loglife import crash_events
from backends.sandbox.logs import kubelet_timestamp
from backends.sandbox.logtext import render, running_event
from backends.sandbox.logvocab import app_context
from backends.sandbox.view import LogFormat
from backends.sanitize import _UNSAFE, is_printable

T0 = 1_795_670_447.123  # 2026-11-26T05:20:47.123Z
STAMP = "2026-11-26T05:20:47.123456789Z"
BOOT3 = (
    "2026-11-26T05:20:47.123Z  INFO 1 --- [auth-service] [nio-8081-exec-3] "
    "c.b.auth.controller.AuthController       : Login succeeded for user id=42"
)

# Nothing a terminal could act on may survive: C0 (but the text has no newline left), DEL,
# C1, the Unicode line separators, bidi controls, lone surrogates.
UNSAFE = _UNSAFE


def stamped(*lines: str, ts: str = STAMP) -> list[str]:
    return [f"{ts} {line}" for line in lines]


def fields(line: LogLine) -> list[str]:
    return [
        line.pod,
        line.container,
        line.service,
        line.level,
        line.logger,
        line.thread,
        line.message,
        *line.extra,
    ]


def assert_inert(line: LogLine) -> None:
    for text in fields(line):
        assert UNSAFE.search(text) is None, repr(text)
        assert "\n" not in text and "\t" not in text


# --- Spring Boot's plain pattern ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level", "thread", "logger", "message"),
    [
        (BOOT3, "INFO", "nio-8081-exec-3", "c.b.auth.controller.AuthController", None),
        # Spring Boot 3.0/3.1: no application name; the thread is padded to 15.
        (
            "2023-01-01T10:00:00.000+00:00  WARN 12345 --- [           main] "
            "o.s.b.Application                        : a : message with : colons",
            "WARN",
            "main",
            "o.s.b.Application",
            "a : message with : colons",
        ),
        # Spring Boot 2: a space between date and time, no offset.
        (
            "2026-11-26 05:20:47.123 ERROR 1 --- [exec-3] com.example.Thing : boom",
            "ERROR",
            "exec-3",
            "com.example.Thing",
            "boom",
        ),
        # Tracing on: a correlation id before the logger.
        (
            "2026-11-26T05:20:47.123Z DEBUG 1 --- [app] [main] [4bf92f3577b34da6-00f067aa0ba902b7] "
            "o.s.web.Filter : traced",
            "DEBUG",
            "main",
            "o.s.web.Filter",
            "traced",
        ),
        (
            "2026-11-26T05:20:47.123Z TRACE 1 --- [app] [main] o.h.SQL : select 1",
            "TRACE",
            "main",
            "o.h.SQL",
            "select 1",
        ),
        (
            "2026-11-26T05:20:47.123Z FATAL 1 --- [app] [main] o.h.SQL : gone",
            "FATAL",
            "main",
            "o.h.SQL",
            "gone",
        ),
        # Logger names Tomcat builds with brackets, cut to 40 columns from the left.
        (
            "2026-11-26T05:20:47.123Z  INFO 1 --- [app] [main] "
            "o.a.c.c.C.[Tomcat].[localhost].[/]       : Initializing Spring",
            "INFO",
            "main",
            "o.a.c.c.C.[Tomcat].[localhost].[/]",
            "Initializing Spring",
        ),
    ],
)
def test_plain_pattern(
    text: str, level: str, thread: str, logger: str, message: str | None
) -> None:
    [line] = parse_lines(stamped(text), pod="auth-1", service="auth-service")
    assert line.raw_format == "plain"
    assert (line.level, line.thread, line.logger) == (level, thread, logger)
    assert line.message == (message or "Login succeeded for user id=42")
    assert line.ts == pytest.approx(T0 + 0.000456789, abs=1e-6)
    assert (line.pod, line.service, line.track) == ("auth-1", "auth-service", "stable")


def test_sandbox_plain_and_json_layouts_parse_to_the_same_entries() -> None:
    ctx = app_context("auth-service", 8081)
    rng = random.Random(5)
    events = [running_event(ctx, rng, sick=False, p_error=0.2, p_warn=0.2) for _ in range(300)]
    out: dict[str, list[LogLine]] = {}
    formats: tuple[LogFormat, ...] = ("plain", "json")
    for fmt in formats:
        raw = [
            f"{kubelet_timestamp(T0 + i)} {text}"
            for i, event in enumerate(events)
            for text in render(event, T0 + i, fmt, "auth-service")
        ]
        out[fmt] = parse_lines(raw)
    plain, as_json = out["plain"], out["json"]
    assert len(plain) == len(as_json) == len(events)
    assert {line.raw_format for line in plain} == {"plain"}
    assert {line.raw_format for line in as_json} == {"json"}
    for p, j, event in zip(plain, as_json, events, strict=True):
        assert p.level == j.level == event.level
        assert p.message == j.message == event.message
        assert j.logger == event.logger and j.thread == event.thread
        # Plain text keeps the trace as printed: tabs become four spaces.
        assert p.extra == j.extra == tuple(t.replace("\t", "    ") for t in event.trace)
        assert p.ts == j.ts
    assert any(p.extra for p in plain), "no stack trace in 300 events: raise p_error"


# --- JSON events ------------------------------------------------------------------------------


def test_logstash_json_fields_level_and_stack_trace() -> None:
    doc = {
        "@timestamp": "2026-11-26T05:20:47.123Z",
        "@version": "1",
        "message": "Failed to send email",
        "logger_name": "com.bharathva.auth.service.EmailService",
        "thread_name": "task-2",
        "level": "ERROR",
        "level_value": 40000,
        "stack_trace": "jakarta.mail.MessagingException: timeout\n\tat a.B.c(B.java:1)\n"
        "Caused by: java.net.SocketTimeoutException: Read timed out\n\t... 12 more\n",
    }
    [line] = parse_lines(stamped(json.dumps(doc)))
    assert line.raw_format == "json"
    assert (line.level, line.logger, line.thread) == (
        "ERROR",
        "com.bharathva.auth.service.EmailService",
        "task-2",
    )
    assert line.message == "Failed to send email"
    assert line.extra == (
        "jakarta.mail.MessagingException: timeout",
        "    at a.B.c(B.java:1)",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "    ... 12 more",
    )


@pytest.mark.parametrize(
    ("doc", "level"),
    [
        ({"message": "m", "level": "warning"}, "WARN"),
        ({"message": "m", "level": "Fatal"}, "FATAL"),
        ({"message": "m", "level_value": 30000}, "WARN"),
        ({"message": "m", "level_value": 10000}, "DEBUG"),
        ({"message": "m", "level_value": 5000}, "TRACE"),
        ({"message": "m", "log.level": "error"}, "ERROR"),
        ({"message": "m", "level": "LOUD"}, ""),
        ({"message": "m"}, ""),
    ],
)
def test_json_levels(doc: dict[str, object], level: str) -> None:
    [line] = parse_lines([json.dumps(doc)], timestamps=False)
    assert line.level == level and line.raw_format == "json"


def test_json_multiline_message_and_odd_values() -> None:
    doc = {"message": "\n\nError starting ApplicationContext.\nsecond", "level": "INFO"}
    [line] = parse_lines([json.dumps(doc)], timestamps=False)
    assert line.message == "Error starting ApplicationContext."
    assert line.extra == ("second",)
    [line] = parse_lines(
        [json.dumps({"message": {"k": [1, 2]}, "logger_name": 7, "level": "INFO"})],
        timestamps=False,
    )
    assert line.message == '{"k": [1, 2]}' and line.logger == "7"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"unrelated": 1}', "{}"])
def test_json_lookalikes_pass_through_unparsed(text: str) -> None:
    [line] = parse_lines([text], timestamps=False)
    assert line.raw_format == "unparsed" and line.level == "" and line.message == text


# --- multi-line entries ----------------------------------------------------------------------


TRACE = [
    "2026-11-26T05:20:48.000Z ERROR 1 --- [auth-service] [nio-8081-exec-1] "
    "o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() threw exception",
    "",
    "java.lang.IllegalStateException: token store unavailable",
    "\tat com.bharathva.auth.TokenStore.save(TokenStore.java:42)",
    "\tat java.base/java.lang.Thread.run(Thread.java:840)",
    "Caused by: org.postgresql.util.PSQLException: Connection refused",
    "\t... 27 common frames omitted",
    "Detected failed migration to version 14 (add user handle index).",
    "... 3 more",
    "",
    "",
]


def test_plain_stack_trace_stays_with_its_entry() -> None:
    raw = stamped(BOOT3) + stamped(*TRACE, ts="2026-11-26T05:20:48.000000001Z")
    raw += stamped(BOOT3.replace("id=42", "id=43"), ts="2026-11-26T05:20:49Z")
    first, trace, last = parse_lines(raw)
    assert first.extra == () and last.message.endswith("id=43")
    assert trace.level == "ERROR" and trace.message == "Servlet.service() threw exception"
    # The blank line Spring prints before the trace and the trailing blanks are layout.
    assert trace.extra == (
        "java.lang.IllegalStateException: token store unavailable",
        "    at com.bharathva.auth.TokenStore.save(TokenStore.java:42)",
        "    at java.base/java.lang.Thread.run(Thread.java:840)",
        "Caused by: org.postgresql.util.PSQLException: Connection refused",
        "    ... 27 common frames omitted",
        "Detected failed migration to version 14 (add user handle index).",
        "... 3 more",
    )
    assert trace.ts == pytest.approx(T0 + 0.877, abs=1e-3)
    assert first.seq < trace.seq < last.seq


def test_sandbox_crash_keeps_the_whole_trace_in_one_error() -> None:
    ctx = app_context("auth-service", 8081)
    for seed in range(6):
        events = crash_events(ctx, "v1.2.0-crash", random.Random(seed))
        raw = [f"{STAMP} {t}" for e in events for t in render(e, T0, "plain", "auth-service")]
        lines = parse_lines(raw)
        assert len(lines) == len(events)
        failed = lines[-1]
        assert failed.level == "ERROR" and failed.message == "Application run failed"
        assert failed.extra == tuple(t.replace("\t", "    ") for t in events[-1].trace)
        assert not any(line.raw_format == "unparsed" for line in lines)
        # A message that starts with line breaks is shown by its first words.
        report = lines[-2]
        assert report.message.startswith("Error starting ApplicationContext")


def test_unparsed_text_and_orphan_trace_fragments() -> None:
    raw = stamped(
        "\tat a.B.c(B.java:1)",  # a tail cut into a trace: kept together, unparsed
        "\tat a.B.d(B.java:2)",
        "Picked up JAVA_TOOL_OPTIONS: -Xmx512m",
        "plain stdout",
        "",
        BOOT3,
    )
    frag, picked, stdout, blank, head = parse_lines(raw)
    assert (frag.raw_format, frag.level) == ("unparsed", "")
    assert frag.message == "    at a.B.c(B.java:1)" and frag.extra == ("    at a.B.d(B.java:2)",)
    assert picked.message == "Picked up JAVA_TOOL_OPTIONS: -Xmx512m" and picked.extra == ()
    assert stdout.message == "plain stdout"
    assert blank.message == "" and blank.raw_format == "unparsed"
    assert head.raw_format == "plain"


def test_exception_head_after_an_entry_starts_its_trace() -> None:
    raw = stamped(BOOT3, "java.lang.NullPointerException", "\tat x.Y.z(Y.java:3)")
    [line] = parse_lines(raw)
    assert line.extra == ("java.lang.NullPointerException", "    at x.Y.z(Y.java:3)")


def test_json_entries_do_not_swallow_following_text() -> None:
    raw = [json.dumps({"message": "m", "level": "INFO"}), "stray text", "\tat a.b(c)"]
    j, stray = parse_lines(raw, timestamps=False)
    assert j.raw_format == "json" and j.extra == ()
    assert stray.message == "stray text" and stray.extra == ("    at a.b(c)",)


def test_huge_traces_and_lines_are_bounded() -> None:
    raw = stamped(BOOT3, *["\tat x.Y.z(Y.java:1)"] * (MAX_EXTRA_LINES + 50))
    [line] = parse_lines(raw)
    assert len(line.extra) == MAX_EXTRA_LINES + 1
    assert line.extra[-1] == "… 50 more lines"
    [long] = parse_lines(stamped("x" * (MAX_LINE_CHARS * 3)))
    assert len(long.message) == MAX_LINE_CHARS and long.message.endswith("…")


def test_joiner_holds_an_entry_until_the_next_head_or_a_flush() -> None:
    classifier = Classifier()
    joiner = Joiner(pod="p", container="c", service="s", track="canary")
    out: list[LogLine] = []
    joiner.feed(classifier.piece(f"{STAMP} {BOOT3}"), 1.0, out)
    assert out == [] and joiner.pending and joiner.idle_since == 1.0
    assert joiner.pending_ts == pytest.approx(T0 + 0.000456789, abs=1e-6)
    joiner.feed(classifier.piece(f"{STAMP} \tat a.b(c)"), 1.2, out)
    assert out == [] and joiner.idle_since == 1.2
    joiner.flush(out)
    [line] = out
    assert line.extra == ("    at a.b(c)",) and line.track == "canary"
    assert not joiner.pending and joiner.idle_since is None and joiner.pending_ts is None


# --- kubelet timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-26T05:20:47.123456789Z", T0 - 0.123 + 0.123456789),
        ("2026-11-26T05:20:47.5Z", T0 - 0.123 + 0.5),  # RFC3339Nano drops trailing zeros
        ("2026-11-26T05:20:47Z", T0 - 0.123),
        ("2026-11-26T06:20:47.25+01:00", T0 - 0.123 + 0.25),
        ("2026-11-26T05:20:47", None),
        ("2026-13-26T05:20:47Z", None),
        ("yesterday", None),
    ],
)
def test_kubelet_time(stamp: str, expected: float | None) -> None:
    got = parse_kubelet_time(stamp)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


def test_lines_without_a_stamp_keep_their_text_and_borrow_the_last_time() -> None:
    lines = parse_lines([f"{STAMP} {BOOT3}", "no stamp here", "2026-11-26T05:20 oops"])
    assert [line.message for line in lines[1:]] == ["no stamp here", "2026-11-26T05:20 oops"]
    assert lines[1].ts == lines[2].ts == lines[0].ts


def test_crlf_line_endings() -> None:
    [line] = parse_lines([f"{STAMP} {BOOT3}\r"])
    assert line.message == "Login succeeded for user id=42"


# --- hostile input ---------------------------------------------------------------------------

HOSTILE = [
    "\x1b[2J\x1b[H wiped",  # clear screen, cursor home
    "\x1b]52;c;cm0gLXJmIH4=\x07 clipboard",  # OSC 52: set the clipboard
    "\x1bP+q544e\x1b\\ dcs",  # DCS request
    "\x9b31m c1 csi",  # 8-bit CSI as a character
    "nul\x00byte and bell\x07 and del\x7f",
    "[red]red[/red] [@click=app.quit]quit[/] [bold]",
    "bidi \u202eevil\u202c and line\u2028sep",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_text_is_inert_in_every_format(payload: str) -> None:
    # The pattern's own delimiters ("]" in a thread name, spaces in a logger) would make
    # the line unparsed; control characters inside those fields are tested separately.
    plain = f"2026-11-26T05:20:47.123Z ERROR 1 --- [app] [main] c.b.Logger : {payload}"
    doc = json.dumps(
        {
            "message": payload,
            "logger_name": payload,
            "thread_name": payload,
            "level": "ERROR",
            "stack_trace": f"x.Y: {payload}\n\tat {payload}",
        }
    )
    raw = stamped(plain, f"\tat {payload}", doc, payload)
    lines = parse_lines(raw, pod=f"pod{payload}", service=payload)
    assert [line.raw_format for line in lines] == ["plain", "json", "unparsed"]
    for line in lines:
        assert_inert(line)
    # Markup is not ours to interpret: it stays literal text, for the renderer to show.
    if "[red]" in payload:
        assert "[red]red[/red] [@click=app.quit]quit[/]" in lines[0].message
        assert "[@click=app.quit]" in lines[1].message
    if payload.startswith("\x1b[2J"):
        assert lines[0].message.startswith("\\x1b[2J\\x1b[H")


def test_control_characters_in_plain_thread_and_logger() -> None:
    [line] = parse_lines(
        stamped("2026-11-26T05:20:47.123Z  WARN 1 --- [app] [ma\x1b[2Jin] c.b\x9bX\x00 : m")
    )
    assert line.raw_format == "plain"
    assert line.thread == "ma\\x1b[2Jin" and line.logger == "c.b\\x9bX\\x00"
    assert_inert(line)


def test_invalid_utf8_and_raw_c1_bytes_are_replaced() -> None:
    raw = [
        STAMP.encode() + b" \xff\xfe broken \x9b31m \xc3( ok \xe2\x82 end",
        STAMP.encode() + b" \xc2\x9b2J encoded C1",
    ]
    bad, c1 = parse_lines(raw)
    assert "\ufffd" in bad.message and bad.message.endswith("end")
    assert c1.message == "\\x9b2J encoded C1"
    assert_inert(bad)
    assert_inert(c1)


def test_is_printable_agrees_with_the_sanitiser() -> None:
    # The fast path must never call a line clean that sanitize_text would change.
    for code in range(0x110000):
        char = chr(code)
        if UNSAFE.match(char):
            assert not is_printable(f"a{char}b"), hex(code)
    assert is_printable("plain ascii — and ünïcödé ✔")


def test_classify_kinds() -> None:
    assert classify("").kind == Kind.BLANK
    assert classify("   ").kind == Kind.BLANK
    assert classify("\tat x").kind == Kind.CONT
    assert classify("Caused by: x").kind == Kind.CONT
    assert classify("Suppressed: x").kind == Kind.CONT
    assert classify("org.example.BadThingException: no").kind == Kind.CONT
    assert classify('Exception in thread "main" java.lang.Error').kind == Kind.CONT
    assert classify("Error: no qualified class").kind == Kind.OTHER
    assert classify(BOOT3).kind == Kind.HEAD


# --- levels and the filter -------------------------------------------------------------------


def line_of(level: str = "INFO", **kw: object) -> LogLine:
    base = LogLine(
        ts=T0,
        pod="auth-service-abc-1",
        container="auth-service",
        service="auth-service",
        track="stable",
        level=level,
        logger="c.b.Auth",
        thread="main",
        message="Login succeeded",
        extra=("java.lang.IllegalStateException: Boom",),
        raw_format="plain",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_levels() -> None:
    assert normalize_level(" warning ") == "WARN"
    assert normalize_level("severe") == "ERROR"
    assert normalize_level("nonsense") == ""
    assert level_rank("TRACE") < level_rank("INFO") < level_rank("FATAL")
    assert level_rank("") == -1


def test_filter_by_level_track_service_and_pod() -> None:
    f = LogFilter.build(min_level="warn")
    assert not f.matches(line_of("INFO"))
    assert f.matches(line_of("WARN")) and f.matches(line_of("FATAL"))
    assert not f.matches(line_of("")), "unknown levels cannot be ranked: hidden"
    assert LogFilter.build(min_level="trace").matches(line_of(""))
    assert LogFilter().matches(line_of("")) and not LogFilter().active
    f = LogFilter.build(services=["user-service"], track="canary")
    assert f.active and not f.matches(line_of())
    assert f.matches(line_of(service="user-service", track="canary"))
    assert not LogFilter.build(pods=["x"]).matches(line_of())
    assert LogFilter.build(pods=["auth-service-abc-1"]).matches(line_of())


def test_filter_regexes_search_message_logger_and_trace_with_smart_case() -> None:
    assert LogFilter.build(include="illegalstate").matches(line_of())  # in the trace
    assert not LogFilter.build(include="IllegalState$").matches(line_of())
    assert not LogFilter.build(include="login SUCCEEDED").matches(line_of())  # has capitals
    assert LogFilter.build(include="c\\.b\\.auth").matches(line_of())  # the logger
    assert not LogFilter.build(exclude="boom").matches(line_of())
    assert LogFilter.build(include="login", exclude="logout").matches(line_of())


def test_a_row_is_the_line_and_the_collector_lets_it_go() -> None:
    """A LineRow holds LogLine's fields by the named positions, filters judge it as they
    judge the line, and the collector stops tracking it (the Logs screen's buffer of
    100,000 costs no collector passes)."""
    line = line_of("WARN", extra=("a", "b"))
    row = line_row(line)
    names = [f.name for f in dataclasses.fields(LogLine)]
    assert [getattr(log_models, name.upper()) for name in names] == list(range(len(names)))
    assert type(row) is tuple and LogLine(*row) == line
    for f in (
        LogFilter.build(min_level="warn", include="succeeded"),
        LogFilter.build(track="canary"),
        LogFilter.build(exclude="^b$"),
        LogFilter.build(services=["auth-service"], pods=["nope"]),
    ):
        assert f.matches_row(row) == f.matches(line)
    gc.collect()
    assert not gc.is_tracked(row)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"include": "(unclosed"}, "bad --grep regex '(unclosed': missing ), unterminated"),
        ({"exclude": "a**"}, "bad --exclude regex 'a**': multiple repeat at position 2"),
        ({"min_level": "loud"}, "unknown level 'loud': use one of trace, debug"),
    ],
)
def test_filter_errors_are_one_line(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(FilterError) as err:
        LogFilter.build(**kwargs)  # type: ignore[arg-type]
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# --- resuming a stream -----------------------------------------------------------------------


def test_resume_asks_from_the_second_and_skips_what_it_has() -> None:
    req = StreamRequest("pod-1", "app", namespace="ns", tail=10, since_seconds=600)
    assert log_query(req, follow=False, resume=None) == [
        ("container", "app"),
        ("timestamps", "true"),
        ("tailLines", "10"),
        ("sinceSeconds", "600"),
    ]
    resume = Resume(ts=T0, same=2)
    q = dict(log_query(req, follow=True, resume=resume))
    assert q["sinceTime"] == "2026-11-26T05:20:47Z" and q["follow"] == "true"
    assert "tailLines" not in q and "sinceSeconds" not in q
    dedupe = Dedupe(resume)
    kept = [dedupe.keep(ts) for ts in (T0 - 0.1, T0, T0, T0, T0 + 0.5, None)]
    assert kept == [False, False, False, True, True, True]
    assert dedupe.resume() == Resume(T0 + 0.5, 1)


def test_since_time_wins_over_since_seconds_on_the_wire() -> None:
    req = StreamRequest("p", "c", namespace="ns", since_seconds=60, since_time=T0, previous=True)
    q = dict(log_query(req, follow=False, resume=None))
    assert q["sinceTime"] == "2026-11-26T05:20:47Z" and "sinceSeconds" not in q
    assert q["previous"] == "true"


def test_timestamps_of_the_sandbox_round_trip() -> None:
    for ts in (T0, T0 + 0.000001, T0 + 59.999999):
        parsed = parse_kubelet_time(kubelet_timestamp(ts))
        assert parsed == pytest.approx(ts, abs=2e-6)
    assert re.fullmatch(r"\d{4}-.*Z", kubelet_timestamp(T0))


# --- the block path: same entries as line by line -------------------------------------------


def _mixed_stream(rng: random.Random) -> list[str]:
    """Kubelet-stamped lines of every shape a stream can carry, in a random mix."""
    ctx = app_context("auth-service", 8081)
    shapes: list[list[str]] = []
    for i in range(400):
        ts = T0 + i * 0.01
        pick = rng.random()
        if pick < 0.6:
            event = running_event(ctx, rng, sick=False, p_error=0.05, p_warn=0.1)
            body = render(event, ts, "plain", "auth-service")
        elif pick < 0.7:
            event = running_event(ctx, rng, sick=True, p_error=0.5, p_warn=0.1)
            body = render(event, ts, "json", "auth-service")
        elif pick < 0.75:
            body = [
                e for ev in crash_events(ctx, "1.0.0", rng) for e in render(ev, ts, "plain", "x")
            ]
        else:
            body = [
                rng.choice(
                    [
                        BOOT3.replace("  INFO", "  WARN\u3000"),
                        BOOT3.replace("[nio-8081-exec-3]", "[  padded thread  ]"),
                        BOOT3.replace("Login", "Login \x1b[31mred\x1b[0m"),
                        BOOT3.replace("Login", "Lo\tgin"),
                        BOOT3 + " " + "x" * (MAX_LINE_CHARS + 10),
                        BOOT3.replace("c.b.auth", "c." * 200 + "auth"),
                        BOOT3.replace("user id=42", ""),
                        BOOT3.replace(" : Login", " :"),
                        "",
                        "   ",
                        "plain text line",
                        "\tat com.example.Thing(Thing.java:1)",
                        "Caused by: java.lang.IllegalStateException: boom",
                        "2026-11-26 05:20:47.123  INFO 1 --- [main] o.s.Boot : Spring Boot 2.x",
                        "2026-02-30T05:20:47.123Z  INFO 1 --- [main] a.B : no such date",
                        "[bracket] [odd] line",
                        "caf\u00e9 \U0001f600 unicode",
                    ]
                )
            ]
        stamp = kubelet_timestamp(ts)
        if rng.random() < 0.1:
            stamp = stamp.rstrip("0Z").rstrip(".") + "Z"  # the kubelet trims trailing zeros
        if rng.random() < 0.02:
            stamp = "2026-02-30T05:20:47.123456789Z"  # no such date: not a stamp at all
        shapes.append([f"{stamp} {line}" for line in body])
    return [line for lines in shapes for line in lines]


def _line_by_line(lines: list[str], dedupe: Dedupe) -> list[LogLine]:
    classifier = Classifier()
    joiner = Joiner(pod="p", container="c", service="s", track="stable", clock=lambda: T0)
    out: list[LogLine] = []
    for raw in lines:
        piece = classifier.piece(raw)
        if dedupe.keep(piece.ts):
            joiner.feed(piece, 1.0, out)
    joiner.flush(out)
    return out


def _by_blocks(lines: list[str], dedupe: Dedupe, rng: random.Random) -> list[LogLine]:
    joiner = Joiner(pod="p", container="c", service="s", track="stable", clock=lambda: T0)
    out: list[LogLine] = []
    start = count = 0
    while start < len(lines):
        size = rng.choice([1, 2, 3, 17, 100, 1000])
        block = lines[start : start + size]
        count += joiner.feed_block("\n".join(block), 1.0, out, dedupe)
        start += size
    joiner.flush(out)
    assert count == len(lines)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_feed_block_gives_the_same_entries_as_feeding_line_by_line(seed: int) -> None:
    rng = random.Random(seed)
    lines = _mixed_stream(rng)
    one = _line_by_line(lines, Dedupe(None))
    blocks = _by_blocks(lines, Dedupe(None), random.Random(seed + 100))
    fields = ("ts", "level", "logger", "thread", "message", "extra", "raw_format")
    assert [tuple(getattr(x, f) for f in fields) for x in blocks] == [
        tuple(getattr(x, f) for f in fields) for x in one
    ]
    assert [x.seq for x in blocks] == sorted(x.seq for x in blocks)
    assert len(one) > 300 and {"plain", "json", "unparsed"} <= {x.raw_format for x in one}
    for line in blocks:
        assert_inert(line)


def test_feed_block_resumes_like_feeding_line_by_line() -> None:
    lines = _mixed_stream(random.Random(9))
    resume = Resume(T0 + 1.5, 1)
    one, blocks = Dedupe(resume), Dedupe(resume)
    a = _line_by_line(lines, one)
    b = _by_blocks(lines, blocks, random.Random(3))
    assert [(x.ts, x.message) for x in a] == [(x.ts, x.message) for x in b]
    assert a and a[0].ts > T0 + 1.5
    assert one.resume() == blocks.resume()
