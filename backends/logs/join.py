"""Gluing one container stream's classified lines into entries, so a stack trace travels with
its head, and resuming a stream without repeating what was delivered.

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

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from backends.logs.models import LogLine
from backends.logs.parse import (
    BULK,
    FRACTION,
    MAX_EXTRA_LINES,
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    Classifier,
    Kind,
    Piece,
    clean,
    cut,
)
from backends.models import Track

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
        for m in BULK.finditer(block):
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
            ts = base + int(frac) / FRACTION[len(frac)]
            if ts == last_ts:
                same += 1
            else:
                last_ts, same = ts, 1
            thread = thread.strip()
            if len(thread) > MAX_FIELD_CHARS:
                thread = cut(thread, MAX_FIELD_CHARS)
            if len(logger) > MAX_FIELD_CHARS:
                logger = cut(logger, MAX_FIELD_CHARS)
            if len(message) > MAX_LINE_CHARS:
                message = cut(message, MAX_LINE_CHARS)
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
