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

Step 2 and the continuation rules live in ``join``.
"""

from __future__ import annotations

import calendar
import json
import re
from typing import Any, NamedTuple

from backends.logs.models import RawFormat, normalize_level
from backends.sanitize import ELLIPSIS, is_printable, sanitize_text

__all__ = [
    "BULK",
    "FRACTION",
    "MAX_EXTRA_LINES",
    "MAX_FIELD_CHARS",
    "MAX_LINE_CHARS",
    "Classifier",
    "Kind",
    "Piece",
    "clean",
    "cut",
    "parse_kubelet_time",
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
        return head if len(head) <= limit else cut(head, limit)
    return sanitize_text(text, limit, tab=TAB)


def cut(text: str, limit: int) -> str:
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
BULK = re.compile(
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
FRACTION = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)

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
    return text if len(text) <= limit else cut(text, limit)
