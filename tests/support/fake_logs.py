"""Canned log entries behind the LogSource interface, for the Logs screen's snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from backends.logs.models import LineRow, LogFilter, LogLine, LogStats
from backends.logs.parse import clean
from backends.models import Track
from tests.support.fake_platform import NOW

PODS: tuple[tuple[str, str, Track], ...] = (
    ("auth-service", "auth-service-7d9f8c6b5-x2k4p", "stable"),
    ("auth-service", "auth-service-canary-5c4b3a2d1-zz9k", "canary"),
    ("tweet-service", "tweet-service-6cbfbd49d-k4k7s", "stable"),
    ("gateway-service", "gateway-service-75c5cfbff9-bq4jr", "stable"),
)
HOSTILE = (
    "\x1b[2J\x1b[31mRED\x1b[0m [red]not markup[/red] [@click=app.quit]click[/] "
    "\x1b]52;c;ZXZpbA==\x07 \x9b31m C1 \x00 NUL \udcff bad-utf8"
)


def _line(i: int, level: str, message: str, extra: tuple[str, ...] = ()) -> LogLine:
    service, pod, track = PODS[i % len(PODS)]
    return LogLine(
        ts=NOW - 60 + i * 0.5,
        pod=pod,
        container=service,
        service=service,
        track=track,
        level=level,
        logger="c.b.app.Controller",
        thread="exec-1",
        message=clean(message),
        extra=tuple(clean(e) for e in extra),
        raw_format="plain",
        seq=i,
    )


def canned(hostile: bool = False) -> list[LogLine]:
    lines = []
    for i in range(40):
        if i % 11 == 7:
            lines.append(
                _line(
                    i,
                    "ERROR",
                    f"Request {i} failed: upstream timed out",
                    (
                        "java.net.SocketTimeoutException: Read timed out",
                        "\tat com.bharathva.gateway.Proxy.forward(Proxy.java:88)",
                    ),
                )
            )
        elif i % 5 == 3:
            lines.append(_line(i, "WARN", f"Login failed for user{i}@example.com: bad credentials"))
        else:
            lines.append(_line(i, "INFO", f"GET /api/tweets/{1000 + i} 200 in {10 + i} ms"))
    if hostile:
        lines.append(_line(40, "WARN", HOSTILE))
    return lines


class FakeLogSource:
    def __init__(self, lines: list[LogLine]) -> None:
        self.lines = lines
        self.stats = LogStats(
            received=len(lines),
            entries=len(lines),
            emitted=len(lines),
            streams=len(PODS),
            pods=len(PODS),
        )
        self.closed = False
        self.filter: LogFilter | None = None
        self._more: asyncio.Queue[list[LogLine]] = asyncio.Queue()

    def push(self, batch: list[LogLine]) -> None:
        """More lines, as if they had just been written (tests of following)."""
        self._more.put_nowait(batch)

    async def stream(self) -> AsyncGenerator[list[LogLine], None]:
        yield list(self.lines)
        while True:
            yield await self._more.get()

    def set_filter(self, f: LogFilter | None) -> None:
        self.filter = f

    def matched(self, batch: list[LineRow]) -> list[LineRow] | None:
        return None  # judged by the screen, as for a source in the same process

    async def aclose(self) -> None:
        self.closed = True
