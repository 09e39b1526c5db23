"""Log lines as the Logs screen and `bva logs` receive them, and the filter both apply.

A ``LogLine`` is one log *entry*: a Spring Boot line with its stack trace attached, a JSON
event, or a line we could not parse. Every text field is sanitised when the line is built
(control characters shown escaped, invalid UTF-8 replaced), so a renderer only has to avoid
interpreting it as markup. No I/O and no third-party imports here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Final, Literal, Protocol, cast

from backends.errors import BvaError
from backends.models import Track

__all__ = [
    "LEVELS",
    "FilterError",
    "LineRow",
    "LogFilter",
    "LogLine",
    "LogStats",
    "RawFormat",
    "found_in_row",
    "level_rank",
    "line_row",
    "normalize_level",
]

LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_RANK = {name: i for i, name in enumerate(LEVELS)}
# Spellings other loggers use for the same levels (java.util.logging, Python, syslog, Go).
_ALIASES = {
    "WARNING": "WARN",
    "ERR": "ERROR",
    "SEVERE": "ERROR",
    "CRITICAL": "FATAL",
    "CRIT": "FATAL",
    "PANIC": "FATAL",
    "EMERG": "FATAL",
    "ALERT": "FATAL",
    "NOTICE": "INFO",
    "FINE": "DEBUG",
    "FINER": "TRACE",
    "FINEST": "TRACE",
    "DBG": "DEBUG",
    "TRC": "TRACE",
}

RawFormat = Literal["plain", "json", "unparsed", "bva"]
"""Where a line came from: Spring Boot's console pattern, a JSON event, text we could not
parse, or ``bva`` for the source's own notices (a pod joined or left, lines dropped, ...)."""


def normalize_level(text: str) -> str:
    """One of LEVELS, or "" when ``text`` names no level we know."""
    upper = text.strip().upper()
    if upper in _RANK:
        return upper
    return _ALIASES.get(upper, "")


def level_rank(level: str) -> int:
    """TRACE 0 … FATAL 5; -1 for an unknown level."""
    return _RANK.get(level, -1)


@dataclass(slots=True)
class LogLine:
    """One log entry of one container, or a notice from the source (``raw_format="bva"``).

    Read-only by convention, not ``frozen``: a frozen dataclass pays ``object.__setattr__``
    per field, about 4 µs an instance here, and a busy tail builds tens of thousands a
    second.

    ``ts`` is the kubelet's timestamp of the entry's first line (epoch seconds, UTC);
    notices carry the local clock. ``extra`` holds the continuation lines (a stack trace,
    the rest of a multi-line message). ``seq`` numbers entries in arrival order, so sorting
    by ``(ts, seq)`` is stable for entries that share a timestamp.
    """

    ts: float
    pod: str
    container: str
    service: str
    track: Track
    level: str
    logger: str
    thread: str
    message: str
    extra: tuple[str, ...] = ()
    raw_format: RawFormat = "unparsed"
    seq: int = 0

    @property
    def is_notice(self) -> bool:
        return self.raw_format == "bva"

    def texts(self) -> tuple[str, ...]:
        """What a search looks at: the message, logger, thread and every continuation line."""
        return (self.message, self.logger, self.thread, *self.extra)


LineRow = tuple[float, str, str, str, Track, str, str, str, str, tuple[str, ...], RawFormat, int]
"""A LogLine's fields as a plain tuple, in field order (``LogLine(*row)`` makes it back).

The Logs screen keeps its ring buffer as rows: the garbage collector stops tracking a tuple
of strings and numbers the first time it meets it, where 100,000 LogLine objects would be
walked again by every older-generation pass, pauses of 5 to 30 ms at 50,000 lines a second."""
# A row's fields, by position.
TS: Final = 0
POD: Final = 1
CONTAINER: Final = 2
SERVICE: Final = 3
TRACK: Final = 4
LEVEL: Final = 5
LOGGER: Final = 6
THREAD: Final = 7
MESSAGE: Final = 8
EXTRA: Final = 9
RAW_FORMAT: Final = 10
SEQ: Final = 11

line_row = cast("Callable[[LogLine], LineRow]", attrgetter(*(f.name for f in fields(LogLine))))
"""A LogLine as its row."""


@dataclass(slots=True)
class LogStats:
    """Counters of a LogSource, read by the screen's status line.

    ``received`` counts raw lines read from the API, ``entries`` the LogLines built from
    them (a stack trace is many lines, one entry), ``emitted`` the LogLines handed out,
    notices included, ``dropped`` raw lines thrown away because the consumer fell behind,
    ``late`` entries that arrived after newer ones had already been handed out (see
    LogSource on the reorder window).
    """

    received: int = 0
    entries: int = 0
    emitted: int = 0
    dropped: int = 0
    late: int = 0
    streams: int = 0
    pods: int = 0
    waiting: int = 0


class FilterError(BvaError):
    """A filter could not be built (a bad regular expression, an unknown level)."""


def compile_pattern(pattern: str, what: str = "regex") -> re.Pattern[str]:
    """``pattern`` compiled with smart case: all-lowercase patterns ignore case (ripgrep's rule).

    A bad pattern raises FilterError with one line naming it and the problem.
    """
    flags = 0 if any(c.isupper() for c in pattern) else re.IGNORECASE
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise FilterError(f"bad {what} {pattern!r}: {exc.msg}{where}") from None


@dataclass(frozen=True)
class LogFilter:
    """Which lines to keep. Empty sets and None mean "no constraint".

    A minimum level hides lines whose level is unknown (unparsed text): a level filter is
    asked for to cut noise, and text without a level cannot be ranked. Notices from the
    source are filtered like any other line, by their own level (joins and leaves are INFO,
    drops and stream limits WARN).
    """

    services: frozenset[str] = frozenset()
    pods: frozenset[str] = frozenset()
    min_level: str = ""
    track: Track | None = None
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    _min_rank: int = field(init=False, repr=False, compare=False, default=-1)

    def __post_init__(self) -> None:
        if self.min_level and self.min_level not in _RANK:
            raise FilterError(
                f"unknown level {self.min_level!r}: use one of {', '.join(LEVELS).lower()}"
            )
        object.__setattr__(self, "_min_rank", _RANK.get(self.min_level, -1))

    @classmethod
    def build(
        cls,
        *,
        services: tuple[str, ...] | list[str] | frozenset[str] = (),
        pods: tuple[str, ...] | list[str] | frozenset[str] = (),
        min_level: str | None = None,
        track: Track | None = None,
        include: str | None = None,
        exclude: str | None = None,
    ) -> LogFilter:
        """From user input: level names in any case and alias, regexes as text."""
        level = ""
        if min_level:
            level = normalize_level(min_level)
            if not level:
                raise FilterError(
                    f"unknown level {min_level!r}: use one of {', '.join(LEVELS).lower()}"
                )
        return cls(
            services=frozenset(services),
            pods=frozenset(pods),
            min_level=level,
            track=track,
            include=compile_pattern(include, "--grep regex") if include else None,
            exclude=compile_pattern(exclude, "--exclude regex") if exclude else None,
        )

    @property
    def active(self) -> bool:
        return bool(
            self.services
            or self.pods
            or self.min_level
            or self.track
            or self.include
            or self.exclude
        )

    def matches(self, line: LogLine) -> bool:
        return self.matches_row(line_row(line))

    def matches_row(self, row: LineRow) -> bool:
        """``matches`` for a LogLine's row: what the log reader and the screen hold."""
        if self.services and row[SERVICE] not in self.services:
            return False
        if self.pods and row[POD] not in self.pods:
            return False
        if self.track is not None and row[TRACK] != self.track:
            return False
        if self._min_rank > 0 and _RANK.get(row[LEVEL], -1) < self._min_rank:
            return False
        if self.include is not None and not found_in_row(self.include, row):
            return False
        return self.exclude is None or not found_in_row(self.exclude, row)


def found_in_row(pattern: re.Pattern[str], row: LineRow) -> bool:
    """``pattern`` in any of the row's ``LogLine.texts()``; spelled out because it runs for
    every line of a busy tail, and the message, searched first, is where a match usually is."""
    search = pattern.search
    if search(row[MESSAGE]) or (row[LOGGER] and search(row[LOGGER])):
        return True
    if row[THREAD] and search(row[THREAD]):
        return True
    extra = row[EXTRA]
    return any(search(text) for text in extra) if extra else False


class LogFeed(Protocol):
    """What the Logs screen follows: batches of entries (LogLines from a source in this
    process, LineRows from the log worker's process), live counters, and the screen's filter
    handed to the source so a flood is judged where it is parsed."""

    stats: LogStats

    def stream(self) -> AsyncIterator[list[LogLine] | list[LineRow]]: ...

    def set_filter(self, f: LogFilter | None) -> None:
        """Judge lines by ``f`` from now on; None or an inactive filter: no judging."""

    def matched(self, batch: list[LineRow]) -> list[LineRow] | None:
        """The lines of ``batch`` that pass the last filter set, when the source judged them
        by it; None when the caller must judge them itself."""

    async def aclose(self) -> None: ...
