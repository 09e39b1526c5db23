"""Turning raw container log lines into LogLines: timestamps, formats, levels, stack traces.

Two steps, so the expensive one can run in the reader thread and the cheap, stateful one on
the event loop:

1. ``Classifier.piece(raw)`` (stateless, per line): split the kubelet's timestamp prefix,
   recognise Spring Boot's console pattern or a JSON event, sanitise every field, and say what
   kind of line it is (an entry's head, a continuation, a blank, other text).
2. ``Joiner.feed(piece)`` (per container stream): glue continuation lines to the entry that
   started them, so a stack trace travels with its head. A pending entry completes when the
   next head arrives, when the stream ends, or when the caller flushes it after a short idle
   time (a follow stream cannot know whether another continuation line is coming).

Continuation rules: a line that starts with whitespace ("\\tat ...", "\\t... 27 common frames
omitted"), "Caused by:", "Suppressed:", "... N more", or an exception's head
("java.lang.IllegalStateException: x") continues the pending text entry. A Spring entry
(the plain pattern) takes more: Spring prints a blank line before a trace, so a blank line is
kept with it, and once it has grown continuation lines (it is "open") any following non-head
line belongs to it too, since Flyway's and Spring's multi-line messages put plain sentences
inside a trace. Unparsed text takes only shaped continuation lines: with no head to trust,
a blank line or free text is better shown as itself. Leading and trailing blank lines are
dropped when an entry completes. JSON events carry their trace in ``stack_trace`` and are
complete on their own.
"""

from __future__ import annotations

import calendar
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from backends.logs.models import LogLine, RawFormat, normalize_level
from backends.models import Track
from backends.sanitize import ELLIPSIS, is_printable, sanitize_text

__all__ = [
    "MAX_EXTRA_LINES",
    "MAX_FIELD_CHARS",
    "MAX_LINE_CHARS",
    "Classifier",
    "Dedupe",
    "Joiner",
    "Kind",
    "Piece",
    "Resume",
    "clean",
    "parse_kubelet_time",
    "parse_lines",
]

# A line longer than this is cut (with "…"): a renderer must not be handed a megabyte line.
MAX_LINE_CHARS = 16_384
# Logger and thread names: real ones are short; a hostile one must not be.
MAX_FIELD_CHARS = 256
# Continuation lines kept per entry; the rest are counted in a final "… N more lines" line.
MAX_EXTRA_LINES = 2_000
TAB = "    "


class Kind:
    HEAD = 0  # a parsed entry's first line (plain or JSON)
    CONT = 1  # a continuation line by its shape (indent, "Caused by:", exception head)
    BLANK = 2
    OTHER = 3  # text of no known shape


class Piece(NamedTuple):
    """One raw line, classified and sanitised; ``ts`` is None when it had no kubelet stamp."""

    ts: float | None
    kind: int
    fmt: RawFormat
    level: str
    logger: str
    thread: str
    message: str
    extra: tuple[str, ...] = ()


def clean(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Sanitised, single-line text: control characters escaped, tabs as four spaces.

    The same result as ``sanitize_text(text, limit, tab=TAB)``, with a fast path for the
    common case (clean text, maybe indented with tabs) that skips the per-character work.
    """
    head = text[: limit + 1]
    if "\t" in head:
        head = head.replace("\t", TAB)
    if is_printable(head):
        return head if len(head) <= limit else _cut(head, limit)
    return sanitize_text(text, limit, tab=TAB)


def _cut(text: str, limit: int) -> str:
    return text[: limit - 1] + ELLIPSIS


# --- kubelet timestamps ----------------------------------------------------------------------

_STAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z", re.ASCII
)


def parse_kubelet_time(stamp: str) -> float | None:
    """RFC 3339 with up to nine fraction digits (the kubelet's RFC3339Nano) -> epoch seconds.

    ``datetime.fromisoformat`` takes at most six fraction digits before Python 3.12, and
    RFC3339Nano drops trailing zeros, so the fraction has any length from 0 to 9.
    """
    m = _STAMP.match(stamp)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        base = calendar.timegm(
            (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
        )
    except (ValueError, OverflowError):
        return None
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        base -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return base + (int(frac) / 10 ** len(frac) if frac else 0.0)


class _StampCache:
    """The kubelet stamps lines of the same second with the same 19-character prefix:
    parse the date part once per second, the fraction every time."""

    __slots__ = ("_base", "_key")

    def __init__(self) -> None:
        self._key = ""
        self._base = 0.0

    def base(self, key: str) -> float | None:
        """Epoch seconds of ``key`` (YYYY-MM-DDTHH:MM:SS, UTC); None for no such date."""
        if key != self._key:
            parsed = parse_kubelet_time(key + "Z")
            if parsed is None:
                return None
            self._key, self._base = key, parsed
        return self._base

    def split(self, raw: str) -> tuple[float | None, str]:
        # The kubelet's usual shape, nine fraction digits: 2026-11-26T05:20:47.123456789Z
        if len(raw) > 30 and raw[29] == "Z" and raw[30] == " " and raw[19] == ".":
            key = raw[:19]
            frac = raw[20:29]
            if key == self._key and frac.isdigit() and frac.isascii():
                return self._base + int(frac) / 1e9, raw[31:]
        space = raw.find(" ", 19, 40)
        if space < 0:
            return None, raw
        stamp = raw[:space]
        if stamp.endswith("Z") and len(stamp) >= 20:
            base = self.base(stamp[:19])
            if base is None:
                return None, raw
            rest = stamp[19:-1]
            if not rest:
                return base, raw[space + 1 :]
            if rest[0] == "." and 1 < len(rest) <= 10 and rest[1:].isdigit() and rest.isascii():
                return base + int(rest[1:]) / 10 ** (len(rest) - 1), raw[space + 1 :]
            return None, raw
        ts = parse_kubelet_time(stamp)
        return (None, raw) if ts is None else (ts, raw[space + 1 :])


# --- Spring Boot's console pattern -----------------------------------------------------------

# Spring Boot 3.2+: `2026-11-26T05:20:47.123Z  INFO 1 --- [app] [  thread] logger : message`;
# 3.0/3.1 and 2.x have no [app]; 2.x writes `2026-11-26 05:20:47.123`. With tracing on, a
# correlation id `[trace-span]` comes before the logger. The logger column is padded to 40.
_PLAIN = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
    r"\s+(?P<level>TRACE|DEBUG|INFO|WARN|ERROR|FATAL)"
    r"\s+(?:\S+\s+)?---\s+"
    r"(?:\[(?P<app>[^\]]*)\]\s+)?"
    r"\[\s*(?P<thread>[^\]]*)\]\s+"
    r"(?:\[[^\]]*\]\s+)?"
    r"(?P<logger>\S+)\s+:(?: |$)(?P<message>.*)",
    re.DOTALL,
)

_CONT_PREFIXES = ("Caused by:", "Suppressed:", "... ", "Exception in thread ")
# A Java exception's head line: a qualified class name ending in Exception/Error/Throwable.
_EXCEPTION_HEAD = re.compile(
    r"(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable|Failure)(?::|$)"
)

# The usual line of a busy stream, for ``Joiner.feed_block``: a kubelet stamp, then Spring
# Boot's pattern as in _PLAIN with single spaces for \s, and no character that sanitising
# would touch (_U: sanitize's _UNSAFE less the newline, plus the tab clean() expands).
# Whatever this matches, _PLAIN splits the same way; anything else takes the per-line path.
_U = "\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_BULK = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{1,9})Z "
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
    r" +(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)"
    r" +(?:[^\s" + _U + r"]+ +)?--- +"
    r"(?:\[[^\]\n" + _U + r"]*\] +)?"
    r"\[ *([^\]\n" + _U + r"]*)\] +"
    r"(?:\[[^\]\n" + _U + r"]*\] +)?"
    r"([^\s" + _U + r"]+) +:(?: |$)([^\n" + _U + r"]*)$",
    re.MULTILINE,
)
_FRACTION = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)

# --- JSON events -----------------------------------------------------------------------------

_JSON_LEVEL_KEYS = ("level", "log.level", "severity", "loglevel")
_JSON_LOGGER_KEYS = ("logger_name", "logger", "log.logger", "loggerName")
_JSON_THREAD_KEYS = ("thread_name", "thread", "process.thread.name", "threadName")
_JSON_MESSAGE_KEYS = ("message", "msg", "@message")
_JSON_TRACE_KEYS = ("stack_trace", "error.stack_trace", "exception", "stackTrace")
_JSON_MARKERS = {"@timestamp", "message", "msg", "level", "log.level", "logger_name"}
_LEVEL_VALUES = ((40000, "ERROR"), (30000, "WARN"), (20000, "INFO"), (10000, "DEBUG"))


def _first(doc: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = doc.get(key)
        if value is not None:
            return value
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _json_level(doc: dict[str, Any]) -> str:
    level = normalize_level(_as_text(_first(doc, _JSON_LEVEL_KEYS)))
    if level:
        return level
    value = doc.get("level_value")
    if isinstance(value, int) and not isinstance(value, bool):
        # logback's numeric levels; anything under DEBUG is TRACE.
        return next((name for floor, name in _LEVEL_VALUES if value >= floor), "TRACE")
    return ""


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").split("\n")


class Classifier:
    """Stateless apart from a timestamp cache: one per reader (thread)."""

    __slots__ = ("stamps",)

    def __init__(self) -> None:
        self.stamps = _StampCache()

    def piece(self, raw: str, *, timestamps: bool = True) -> Piece:
        """``raw`` is one decoded line without its newline, with the kubelet prefix if
        ``timestamps``."""
        ts: float | None = None
        if timestamps:
            ts, raw = self.stamps.split(raw)
        if raw.endswith("\r"):
            raw = raw[:-1]  # CRLF-writing programs: the CR is a line ending, not content
        return classify(raw, ts)


def classify(text: str, ts: float | None = None) -> Piece:
    """One line's kind and fields, everything sanitised."""
    if not text or text.isspace():
        return Piece(ts, Kind.BLANK, "unparsed", "", "", "", "")
    first = text[0]
    if first == "{":
        piece = _json_piece(text, ts)
        if piece is not None:
            return piece
    elif first.isdigit():
        m = _PLAIN.match(text)
        if m is not None:
            logger, thread, message = m.group("logger", "thread", "message")
            if is_printable(text):  # one scan for the whole line instead of one per field
                return Piece(
                    ts,
                    Kind.HEAD,
                    "plain",
                    m.group("level"),
                    _fit(logger, MAX_FIELD_CHARS),
                    _fit(thread.strip(), MAX_FIELD_CHARS),
                    _fit(message, MAX_LINE_CHARS),
                )
            return Piece(
                ts,
                Kind.HEAD,
                "plain",
                m.group("level"),
                clean(logger, MAX_FIELD_CHARS),
                clean(thread.strip(), MAX_FIELD_CHARS),
                clean(message),
            )
    if first in " \t" or text.startswith(_CONT_PREFIXES) or _EXCEPTION_HEAD.match(text):
        return Piece(ts, Kind.CONT, "unparsed", "", "", "", clean(text))
    return Piece(ts, Kind.OTHER, "unparsed", "", "", "", clean(text))


def _json_piece(text: str, ts: float | None) -> Piece | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not _JSON_MARKERS.intersection(doc):
        return None
    # Without a backslash the line has no JSON escapes, so no decoded value can hold a
    # control character (JSON forbids raw ones) or a line break: the usual event skips the
    # sanitiser's work and the line splitting.
    simple = "\\" not in text and is_printable(text)
    message = doc.get("message")
    if message is None:
        message = _first(doc, _JSON_MESSAGE_KEYS)
    message_text = message if isinstance(message, str) else _as_text(message)
    trace = _first(doc, _JSON_TRACE_KEYS)
    level = doc.get("level")
    level = normalize_level(level) if isinstance(level, str) else ""
    if not level:
        level = _json_level(doc)
    logger = doc.get("logger_name")
    if logger is None:
        logger = _first(doc, _JSON_LOGGER_KEYS)
    thread = doc.get("thread_name")
    if thread is None:
        thread = _first(doc, _JSON_THREAD_KEYS)
    if (
        simple
        and trace is None
        and isinstance(logger, str | None)
        and isinstance(thread, str | None)
    ):
        return Piece(
            ts,
            Kind.HEAD,
            "json",
            level,
            _fit(logger or "", MAX_FIELD_CHARS),
            _fit(thread or "", MAX_FIELD_CHARS),
            _fit(message_text, MAX_LINE_CHARS),
        )
    message_lines = _split_lines(message_text)
    trace_text = _as_text(trace)
    extra_raw = message_lines[1:] + (_split_lines(trace_text) if trace_text else [])
    while extra_raw and not extra_raw[-1].strip():
        extra_raw.pop()
    if len(extra_raw) > MAX_EXTRA_LINES:
        cut = len(extra_raw) - MAX_EXTRA_LINES
        extra_raw = [*extra_raw[:MAX_EXTRA_LINES], f"… {cut} more lines"]
    return Piece(
        ts,
        Kind.HEAD,
        "json",
        level,
        clean(_as_text(logger), MAX_FIELD_CHARS),
        clean(_as_text(thread), MAX_FIELD_CHARS),
        clean(message_lines[0]),
        tuple(clean(line) for line in extra_raw),
    )


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else _cut(text, limit)


# --- resuming a stream ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a reader stopped: the last timestamp delivered and how many lines carried it."""

    ts: float
    same: int


class Dedupe:
    """Drop what a resumed read repeats (lines up to the resume timestamp), and keep track of
    where the stream is, for the next resume."""

    __slots__ = ("last_ts", "same", "skip_before", "skip_same")

    def __init__(self, resume: Resume | None) -> None:
        self.skip_before = resume.ts if resume else None
        self.skip_same = resume.same if resume else 0
        self.last_ts = resume.ts if resume else None
        self.same = resume.same if resume else 0

    def keep(self, ts: float | None) -> bool:
        if ts is None:
            return True
        skip = self.skip_before
        if skip is not None:
            if ts < skip:
                return False
            if ts == skip and self.skip_same > 0:
                self.skip_same -= 1
                return False
            self.skip_before = None
        if ts == self.last_ts:
            self.same += 1
        else:
            self.last_ts, self.same = ts, 1
        return True

    def resume(self) -> Resume | None:
        return None if self.last_ts is None else Resume(self.last_ts, self.same)


# --- joining ---------------------------------------------------------------------------------


class Joiner:
    """Multi-line entries of one container stream, in order. Not thread-safe by itself:
    whoever shares one (a reader thread feeding, the event loop flushing) holds ``lock``.

    ``feed`` appends the entries the new line completed (none, one, or two when a lone
    blank line follows a pending entry) to ``out``; ``feed_block`` does the same for a
    block of lines; ``flush`` completes the pending entry.
    ``idle_since`` is the arrival of the last line fed while an entry is pending (None when
    nothing is pending), for flushing after a quiet moment.

    The pending entry lives in plain attributes rather than an object of its own: this runs
    once per log line, and most entries are a single line.
    """

    def __init__(
        self,
        *,
        pod: str,
        container: str,
        service: str,
        track: Track,
        next_seq: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pod = clean(pod, MAX_FIELD_CHARS)
        self.container = clean(container, MAX_FIELD_CHARS)
        self.service = clean(service, MAX_FIELD_CHARS)
        self.track: Track = track
        self._next_seq = next_seq or itertools.count().__next__
        self._clock = clock
        self._head: Piece | None = None  # the pending entry's first line
        self._extra: list[str] | None = None  # its continuation lines, once it has some
        self._open = False  # a Spring entry with continuation lines takes any further text
        self._more = 0  # continuation lines past MAX_EXTRA_LINES, counted, not kept
        self._last_ts: float | None = None
        self.idle_since: float | None = None
        self._classifier = Classifier()
        # The reader thread feeds under this lock; the event loop flushes under it.
        self.lock = threading.Lock()

    @property
    def pending(self) -> bool:
        return self._head is not None

    @property
    def pending_ts(self) -> float | None:
        """The timestamp of the entry being joined, None when nothing is pending."""
        head = self._head
        if head is None:
            return None
        return head.ts if head.ts is not None else self._last_ts

    @property
    def last_ts(self) -> float | None:
        """The newest kubelet timestamp fed so far."""
        return self._last_ts

    def feed(self, piece: Piece, arrival: float, out: list[LogLine]) -> None:
        if piece.ts is not None:
            self._last_ts = piece.ts
        head = self._head
        kind = piece.kind
        if head is not None:
            plain = head.fmt == "plain"
            if (kind == Kind.CONT and head.fmt != "json") or (
                plain and (kind == Kind.BLANK or (kind == Kind.OTHER and self._open))
            ):
                extra = self._extra
                if extra is None:
                    extra = self._extra = list(head.extra)
                if len(extra) < MAX_EXTRA_LINES:
                    extra.append(piece.message)  # a blank line's message is ""
                else:
                    self._more += 1
                self._open = plain
                self.idle_since = arrival
                return
            out.append(self._complete())
        if kind == Kind.BLANK:
            # A lone blank line outside any text entry passes through as its own line.
            self._head = self.idle_since = None
            out.append(self._build(piece, piece.extra))
            return
        self._head = piece
        self._extra = None
        self._open = False
        self._more = 0
        self.idle_since = arrival

    def feed_block(self, block: str, arrival: float, out: list[LogLine], dedupe: Dedupe) -> int:
        """Every line of ``block`` (kubelet-stamped lines joined by newlines), in order, as
        ``feed`` would take them; returns how many lines there were.

        A busy stream is mostly single-line Spring Boot entries with nothing to sanitise:
        those are found by one regex scan of the block and become entries straight from the
        match, the entry in progress kept in local variables rather than a Piece, which is
        what lets one core keep up with tens of thousands of lines a second. Any other line
        (a trace, JSON, text, a control character) takes ``feed``.
        """
        if dedupe.skip_before is not None:
            return self._feed_lines(block, arrival, out, dedupe)
        stamps = self._classifier.stamps
        key, base = "", 0.0
        seq, append = self._next_seq, out.append
        pod, container, service, track = self.pod, self.container, self.service, self.track
        last_ts, same = dedupe.last_ts, dedupe.same
        pos = count = 0
        # The entry in progress when it is a block line: ts, level, logger, thread, message.
        held: tuple[float, str, str, str, str] | None = None
        for m in _BULK.finditer(block):
            start = m.start()
            if start != pos:
                self._hold(held, arrival)
                held = None
                dedupe.last_ts, dedupe.same = last_ts, same
                count += self._feed_lines(block[pos : start - 1], arrival, out, dedupe)
                last_ts, same = dedupe.last_ts, dedupe.same
            pos = m.end() + 1
            count += 1
            stamp, frac, level, thread, logger, message = m.groups()
            if stamp != key:
                parsed = stamps.base(stamp)
                if parsed is None:  # a date that does not exist: the slow path says so
                    self._hold(held, arrival)
                    held = None
                    dedupe.last_ts, dedupe.same = last_ts, same
                    self._feed_lines(m.group(), arrival, out, dedupe)
                    last_ts, same = dedupe.last_ts, dedupe.same
                    continue
                key, base = stamp, parsed
            ts = base + int(frac) / _FRACTION[len(frac)]
            if ts == last_ts:
                same += 1
            else:
                last_ts, same = ts, 1
            thread = thread.strip()
            if len(thread) > MAX_FIELD_CHARS:
                thread = _cut(thread, MAX_FIELD_CHARS)
            if len(logger) > MAX_FIELD_CHARS:
                logger = _cut(logger, MAX_FIELD_CHARS)
            if len(message) > MAX_LINE_CHARS:
                message = _cut(message, MAX_LINE_CHARS)
            if held is not None:
                h_ts, h_level, h_logger, h_thread, h_message = held
                append(
                    LogLine(
                        h_ts,
                        pod,
                        container,
                        service,
                        track,
                        h_level,
                        h_logger,
                        h_thread,
                        h_message,
                        (),
                        "plain",
                        seq(),
                    )
                )
            elif self._head is not None:
                append(self._complete())
            held = (ts, level, logger, thread, message)
        self._hold(held, arrival)
        dedupe.last_ts, dedupe.same = last_ts, same
        if pos <= len(block):
            count += self._feed_lines(block[pos:], arrival, out, dedupe)
        return count

    def _hold(self, held: tuple[float, str, str, str, str] | None, arrival: float) -> None:
        """Make the block's entry in progress the joiner's pending entry."""
        if held is None:
            return
        ts, level, logger, thread, message = held
        self._head = Piece(ts, Kind.HEAD, "plain", level, logger, thread, message)
        self._extra = None
        self._open = False
        self._more = 0
        self._last_ts = ts
        self.idle_since = arrival

    def _feed_lines(self, block: str, arrival: float, out: list[LogLine], dedupe: Dedupe) -> int:
        piece = self._classifier.piece
        lines = block.split("\n")
        for raw in lines:
            p = piece(raw)
            if dedupe.keep(p.ts):
                self.feed(p, arrival, out)
        return len(lines)

    def flush(self, out: list[LogLine]) -> None:
        if self._head is not None:
            out.append(self._complete())
        self._head = self.idle_since = None

    def _complete(self) -> LogLine:
        head = self._head
        assert head is not None
        extra = self._extra
        self._head = self._extra = None
        if extra is None:
            if head.message or not head.extra:
                return self._build(head, head.extra)
            extra = list(head.extra)
        while extra and not extra[-1]:
            extra.pop()
        # Blank lines between the message and a trace are layout (Spring prints one before
        # every trace); and a message that starts with line breaks ("\n\nError starting
        # ApplicationContext") is better shown and searched by its first words.
        start = 0
        while start < len(extra) and not extra[start]:
            start += 1
        if not head.message and start < len(extra):
            head = head._replace(message=extra[start])
            start += 1
        if start:
            del extra[:start]
        if self._more:
            extra.append(f"… {self._more} more lines")
        return self._build(head, tuple(extra))

    def _build(self, head: Piece, extra: tuple[str, ...]) -> LogLine:
        ts = head.ts
        if ts is None:
            ts = self._last_ts or self._clock()
        return LogLine(
            ts,
            self.pod,
            self.container,
            self.service,
            self.track,
            head.level,
            head.logger,
            head.thread,
            head.message,
            extra,
            head.fmt,
            self._next_seq(),
        )


def parse_lines(
    lines: Iterable[str | bytes],
    *,
    pod: str = "",
    container: str = "",
    service: str = "",
    track: Track = "stable",
    timestamps: bool = True,
    next_seq: Callable[[], int] | None = None,
) -> list[LogLine]:
    """A whole log at once (a snapshot read, tests): lines in, entries out, in order."""
    classifier = Classifier()
    joiner = Joiner(pod=pod, container=container, service=service, track=track, next_seq=next_seq)
    out: list[LogLine] = []
    for raw in lines:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        joiner.feed(classifier.piece(text.rstrip("\n"), timestamps=timestamps), 0.0, out)
    joiner.flush(out)
    return out
