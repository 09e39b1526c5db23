"""What the simulated Spring Boot services print, and how their logging layouts render it.

Two layouts are produced: Spring Boot 3's default console pattern and logstash-logback-encoder
JSON. A running service's line is drawn from its kind's weighted templates (``logvocab``);
its startup, crash and shutdown sequences live in ``loglife``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from backends.sandbox.view import LogFormat

Level = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
Web = Literal["tomcat", "netty"]

LEVEL_VALUES: dict[str, int] = {
    "TRACE": 5000,
    "DEBUG": 10000,
    "INFO": 20000,
    "WARN": 30000,
    "ERROR": 40000,
}
PACKAGE_ROOT = "com.bharathva"
JAVA_VERSION = "17.0.10"
TOMCAT_VERSION = "10.1.19"
HIBERNATE_VERSION = "6.4.4.Final"

DISPATCHER = "org.apache.catalina.core.ContainerBase.[Tomcat].[localhost].[/].[dispatcherServlet]"
SQL_HELPER = "org.hibernate.engine.jdbc.spi.SqlExceptionHelper"


@dataclass(frozen=True, slots=True)
class LogEvent:
    level: Level
    logger: str
    thread: str
    message: str
    trace: tuple[str, ...] = ()


# --- layouts -----------------------------------------------------------------------------


def iso_millis(ts: float) -> str:
    """Logback's ``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` in UTC (XXX prints ``Z`` for offset 0)."""
    ms = int(ts * 1000)
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}Z"


@lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    # Lines come in runs stamped within one second: strftime was a tenth of rendering one.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@lru_cache(maxsize=4096)
def abbreviate_logger(name: str, target: int = 39) -> str:
    """Logback's ``%logger{39}``: shorten package segments, left to right, to their initial."""
    if len(name) <= target:
        return name
    parts = name.split(".")
    length = len(name)
    for i in range(len(parts) - 1):
        if length <= target:
            break
        length -= len(parts[i]) - 1
        parts[i] = parts[i][:1]
    return ".".join(parts)


@lru_cache(maxsize=4096)
def _logger_column(name: str) -> str:
    # %-40.40: pad right to 40, and when longer keep the rightmost 40 characters.
    return f"{abbreviate_logger(name)[-40:]:<40}"


@lru_cache(maxsize=1024)
def _thread_column(thread: str) -> str:
    return f"{thread[-15:]:>15}"


def render_plain(event: LogEvent, ts: float, app: str) -> list[str]:
    """Spring Boot 3.2+ default console layout; a stack trace follows after a blank line."""
    head = (
        f"{iso_millis(ts)} {event.level:>5} 1 --- [{app}] [{_thread_column(event.thread)}] "
        f"{_logger_column(event.logger)} : "
    )
    first, *rest = event.message.split("\n")
    lines = [head + first, *rest]
    if event.trace:
        lines.append("")
        lines.extend(event.trace)
    return lines


def render_json(event: LogEvent, ts: float) -> list[str]:
    """logstash-logback-encoder's LogstashEncoder: one compact object per event."""
    doc: dict[str, object] = {
        "@timestamp": iso_millis(ts),
        "@version": "1",
        "message": event.message,
        "logger_name": event.logger,
        "thread_name": event.thread,
        "level": event.level,
        "level_value": LEVEL_VALUES[event.level],
    }
    if event.trace:
        doc["stack_trace"] = "\n".join(event.trace)
    return [json.dumps(doc, separators=(",", ":"), ensure_ascii=False)]


def render(event: LogEvent, ts: float, fmt: LogFormat, app: str) -> list[str]:
    if fmt == "json":
        return render_json(event, ts)
    return render_plain(event, ts, app)


# --- what a template is made of ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """One kind of line. ``logger``, ``message`` and ``trace`` are ``str.format`` templates."""

    level: Level
    logger: str
    message: str
    thread: str = "http"
    trace: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Vocabulary:
    kind: str
    web: Web
    has_db: bool
    info: tuple[Template, ...]
    warn: tuple[Template, ...]
    error: tuple[Template, ...]
    sick: tuple[Template, ...]
    info_cum: tuple[float, ...] = field(init=False)
    warn_cum: tuple[float, ...] = field(init=False)
    error_cum: tuple[float, ...] = field(init=False)
    sick_cum: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("info", "warn", "error", "sick"):
            total = 0.0
            cum: list[float] = []
            for t in getattr(self, name):
                total += t.weight
                cum.append(total)
            object.__setattr__(self, f"{name}_cum", tuple(cum))


@dataclass(frozen=True)
class AppContext:
    """Everything about one service that its log text depends on."""

    app: str
    port: int
    pkg: str
    app_class: str
    vocab: Vocabulary


class Fields(dict[str, str]):
    """Template values drawn lazily, so a line only pays for the placeholders it uses."""

    def __init__(self, rng: random.Random, ctx: AppContext) -> None:
        super().__init__(app=ctx.app, pkg=ctx.pkg, port=str(ctx.port), cls=ctx.app_class)
        self._rng = rng

    def __missing__(self, key: str) -> str:
        r = self._rng
        value: str
        if key in ("uid", "uid2"):
            value = str(r.randint(1000, 99999))
        elif key == "email":
            value = f"user{r.randint(1000, 99999)}@example.com"
        elif key == "tid":
            value = str(r.randint(100000, 9999999))
        elif key == "ms":
            value = str(int(r.lognormvariate(3.4, 0.6)))
        elif key == "slow":
            value = str(r.randint(800, 4800))
        elif key == "n":
            value = str(r.randint(2, 40))
        elif key == "k":
            value = str(r.randint(1, 4))
        elif key == "ip":
            value = f"10.244.{r.randint(0, 7)}.{r.randint(2, 250)}"
        elif key == "waiting":
            value = str(r.randint(3, 60))
        elif key == "hex":
            value = f"{r.getrandbits(32):08x}"
        elif key == "pct":
            value = str(r.randint(70, 99))
        elif key == "exec":
            value = str(r.randint(1, 10))
        elif key == "line":
            value = str(r.randint(40, 260))
        elif key == "peer":
            value = r.choice(("tweet", "user"))
        elif key == "reg":
            value = r.choice(("auth", "gateway", "tweet", "user"))
        elif key in ("PEER", "REG"):
            # Upper-case twins must name the same service as their lower-case placeholder.
            value = self[key.lower()].upper()
        else:
            raise KeyError(key)
        self[key] = value
        return value


def _pick(rng: random.Random, items: Sequence[Template], cum: Sequence[float]) -> Template:
    return rng.choices(items, cum_weights=cum, k=1)[0]


def _materialise(t: Template, rng: random.Random, ctx: AppContext) -> LogEvent:
    f = Fields(rng, ctx)
    thread = t.thread
    if thread == "http":
        thread = (
            f"reactor-http-epoll-{rng.randint(1, 4)}"
            if ctx.vocab.web == "netty"
            else f"http-nio-{ctx.port}-exec-{rng.randint(1, 10)}"
        )
    else:
        thread = thread.format_map(f)
    return LogEvent(
        level=t.level,
        logger=t.logger.format_map(f),
        thread=thread,
        message=t.message.format_map(f),
        trace=tuple(line.format_map(f) for line in t.trace),
    )


def running_event(
    ctx: AppContext, rng: random.Random, *, sick: bool, p_error: float, p_warn: float
) -> LogEvent:
    """One line of a running service; ``sick`` mixes in the unhealthy image's failures."""
    v = ctx.vocab
    roll = rng.random()
    if sick and roll < 0.45:
        return _materialise(_pick(rng, v.sick, v.sick_cum), rng, ctx)
    roll = rng.random()
    if roll < p_error:
        return _materialise(_pick(rng, v.error, v.error_cum), rng, ctx)
    if roll < p_error + p_warn:
        return _materialise(_pick(rng, v.warn, v.warn_cum), rng, ctx)
    return _materialise(_pick(rng, v.info, v.info_cum), rng, ctx)
