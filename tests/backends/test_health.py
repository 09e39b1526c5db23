"""HealthProber against real loopback servers (no mocks of httpx), and sanitize_text."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backends.health.models import (
    ProbeResult,
    ProbeStatus,
    ServiceHealth,
    Unreachable,
    worst_status,
)
from backends.health.prober import HealthProber
from backends.sanitize import sanitize_text
from tests.support import bad_servers as bs
from tests.support.bad_servers import ServerPool


@pytest.fixture
async def servers() -> AsyncIterator[ServerPool]:
    pool = ServerPool()
    try:
        yield pool
    finally:
        await pool.stop_all()


@pytest.fixture
async def prober() -> AsyncIterator[HealthProber]:
    async with HealthProber(timeout=2.0) as p:
        yield p


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return bs.self_signed_cert(tmp_path, days=10)


async def probe_with(url: str, **options: object) -> ProbeResult:
    async with HealthProber(**options) as p:  # type: ignore[arg-type]
        return await p.probe("svc", url)


def unreachable(result: ProbeResult, reason: Unreachable) -> None:
    assert result.status is ProbeStatus.UNREACHABLE, result
    assert result.reason is reason, result
    assert result.components == ()
    assert "\n" not in result.detail and result.detail


def visible_only(text: str) -> None:
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
    assert not bad, (text, bad)


def all_text(result: ProbeResult) -> Iterator[str]:
    yield result.detail
    if result.answered_by is not None:
        yield result.answered_by
    for component in result.components:
        yield component.name
        yield component.status
        for key, value in component.details:
            yield key
            yield value


# --- answers ---------------------------------------------------------------------------------


async def test_up_with_components_and_pod(servers: ServerPool, prober: HealthProber) -> None:
    url = await servers.start(bs.actuator_up(pod="auth-service-7d9f-abcde"))
    before = time.time()
    result = await prober.probe("auth-service", url)
    assert (result.service, result.url) == ("auth-service", url)
    assert result.status is ProbeStatus.UP and result.reason is None
    assert result.http_status == 200 and result.detail == "HTTP 200"
    assert result.latency_ms is not None and 0 < result.latency_ms < 2000
    assert before <= result.checked_at <= time.time()
    assert result.answered_by == "auth-service-7d9f-abcde"
    assert result.cert_days_left is None
    by_name = {c.name: c for c in result.components}
    assert list(by_name) == ["db", "diskSpace", "ping"]
    assert all(c.status == "UP" for c in result.components)
    assert dict(by_name["db"].details)["database"] == "PostgreSQL"
    assert dict(by_name["diskSpace"].details) == {"total": "1000", "free": "600", "exists": "true"}
    assert by_name["ping"].details == ()


async def test_503_with_down_body_is_down_not_unreachable(
    servers: ServerPool, prober: HealthProber
) -> None:
    result = await prober.probe("auth-service", await servers.start(bs.actuator_down()))
    assert result.status is ProbeStatus.DOWN and result.reason is None
    assert result.http_status == 503
    statuses = {c.name: c.status for c in result.components}
    assert statuses == {"db": "DOWN", "db/primary": "DOWN", "db/replica": "UP", "ping": "UP"}
    primary = next(c for c in result.components if c.name == "db/primary")
    assert primary.details == (("error", "Connection refused"),)
    assert result.detail == "HTTP 503: db/primary DOWN"


@pytest.mark.parametrize(
    ("status", "word", "expected"),
    [
        (503, "OUT_OF_SERVICE", ProbeStatus.OUT_OF_SERVICE),
        (200, "UNKNOWN", ProbeStatus.UNKNOWN),
        (200, "WARNING", ProbeStatus.UNKNOWN),  # a custom Spring status we cannot rank
        (500, "DOWN", ProbeStatus.DOWN),  # a custom status mapping still carries a health body
    ],
)
async def test_status_words(
    servers: ServerPool, prober: HealthProber, status: int, word: str, expected: ProbeStatus
) -> None:
    url = await servers.start(bs.respond_json(status, {"status": word}))
    result = await prober.probe("svc", url)
    assert result.status is expected and result.reason is None
    assert result.http_status == status


async def test_older_actuator_shapes(servers: ServerPool, prober: HealthProber) -> None:
    boot20 = {
        "status": "UP",
        "details": {
            "db": {"status": "UP", "details": {"database": "PostgreSQL"}},
            "redis": {"status": "UP", "details": {"a": {"status": "UP"}, "b": {"status": "UP"}}},
        },
    }
    boot1 = {"status": "UP", "diskSpace": {"status": "UP", "free": 5}, "db": {"status": "UP"}}
    r20 = await prober.probe("svc", await servers.start(bs.respond_json(200, boot20)))
    r1 = await prober.probe("svc", await servers.start(bs.respond_json(200, boot1)))
    assert [c.name for c in r20.components] == ["db", "redis", "redis/a", "redis/b"]
    assert r20.components[0].details == (("database", "PostgreSQL"),)
    assert [c.name for c in r1.components] == ["diskSpace", "db"]


async def test_connection_is_reused(servers: ServerPool, prober: HealthProber) -> None:
    url = await servers.start(bs.actuator_up())
    first, second = await prober.probe("a", url), await prober.probe("a", url)
    assert first.status is second.status is ProbeStatus.UP


async def test_gzip_body_from_a_server_ignoring_accept_encoding(
    servers: ServerPool, prober: HealthProber
) -> None:
    body = gzip.compress(json.dumps(bs.UP_DOC).encode())
    url = await servers.start(bs.respond(200, body, headers=[("Content-Encoding", "gzip")]))
    assert (await prober.probe("svc", url)).status is ProbeStatus.UP


async def test_gzip_bomb_is_too_large(servers: ServerPool) -> None:
    bomb = gzip.compress(b" " * (4 * 1024 * 1024))  # 4 MiB of spaces, a few KiB on the wire
    url = await servers.start(bs.respond(200, bomb, headers=[("Content-Encoding", "gzip")]))
    unreachable(await probe_with(url, max_body_bytes=64 * 1024), Unreachable.TOO_LARGE)


# --- failures ----------------------------------------------------------------------------------


async def test_hang_times_out(servers: ServerPool) -> None:
    url = await servers.start(bs.hang)
    started = time.monotonic()
    result = await probe_with(url, timeout=0.5)
    assert time.monotonic() - started < 1.5
    unreachable(result, Unreachable.TIMEOUT)
    assert result.detail == "timed out after 0.5s"
    assert result.http_status is None and result.latency_ms is None


async def test_refused(prober: HealthProber) -> None:
    result = await prober.probe("svc", bs.refused_url())
    unreachable(result, Unreachable.REFUSED)
    assert result.detail == "connection refused"


async def test_reset(servers: ServerPool, prober: HealthProber) -> None:
    unreachable(await prober.probe("svc", await servers.start(bs.reset)), Unreachable.RESET)


async def test_name_not_resolved(prober: HealthProber) -> None:
    result = await prober.probe("svc", "http://bva-no-such-host.invalid/actuator/health")
    unreachable(result, Unreachable.DNS)
    assert result.detail == "name not resolved: bva-no-such-host.invalid"


async def test_500_html_is_bad_status(servers: ServerPool, prober: HealthProber) -> None:
    result = await prober.probe("svc", await servers.start(bs.html_error(500)))
    unreachable(result, Unreachable.BAD_STATUS)
    assert result.detail == "HTTP 500" and result.http_status == 500
    assert result.latency_ms is not None  # it did answer


async def test_503_without_json_is_bad_status(servers: ServerPool, prober: HealthProber) -> None:
    result = await prober.probe("svc", await servers.start(bs.html_error(503)))
    unreachable(result, Unreachable.BAD_STATUS)
    assert result.detail == "HTTP 503"


async def test_spring_error_json_is_bad_status(servers: ServerPool, prober: HealthProber) -> None:
    error = {"timestamp": "2024-05-01T10:00:00Z", "status": 404, "error": "Not Found"}
    result = await prober.probe("svc", await servers.start(bs.respond_json(404, error)))
    unreachable(result, Unreachable.BAD_STATUS)
    assert result.detail == "HTTP 404"


async def test_redirect_is_not_followed(servers: ServerPool, prober: HealthProber) -> None:
    handler = bs.respond(302, b"", content_type="text/html", headers=[("Location", "/login")])
    result = await prober.probe("svc", await servers.start(handler))
    unreachable(result, Unreachable.BAD_STATUS)
    assert result.detail == "HTTP 302 redirect to /login"


async def test_malformed_json(servers: ServerPool, prober: HealthProber) -> None:
    result = await prober.probe("svc", await servers.start(bs.malformed_json()))
    unreachable(result, Unreachable.NOT_JSON)
    assert result.detail == "HTTP 200, body not JSON"


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b'{"status": 200}', b"[" * 100_000], ids=["list", "int", "deep"]
)
async def test_json_that_is_not_a_health_body(
    servers: ServerPool, prober: HealthProber, body: bytes
) -> None:
    url = await servers.start(bs.respond(200, body, content_type="application/json"))
    unreachable(await prober.probe("svc", url), Unreachable.NOT_JSON)


@pytest.mark.parametrize("declare", [False, True])
async def test_huge_body(servers: ServerPool, prober: HealthProber, declare: bool) -> None:
    result = await prober.probe("svc", await servers.start(bs.huge_body(declare=declare)))
    unreachable(result, Unreachable.TOO_LARGE)
    assert result.http_status == 200
    assert ("declared" in result.detail) is declare


async def test_huge_body_is_not_read_to_the_end(servers: ServerPool) -> None:
    """The body never ends: only a reader that stops at the cap answers before the timeout."""
    url = await servers.start(bs.huge_body(1024 * 1024, then_hang=True))
    started = time.monotonic()
    result = await probe_with(url, timeout=5.0)
    assert time.monotonic() - started < 2.0
    unreachable(result, Unreachable.TOO_LARGE)


@pytest.mark.parametrize("headers_first", [False, True])
async def test_trickle_is_cut_by_the_overall_deadline(
    servers: ServerPool, headers_first: bool
) -> None:
    """One byte per 0.5 s never trips httpx's per-read timeout (1 s); the overall one does."""
    url = await servers.start(bs.trickle(0.5, headers_first=headers_first))
    started = time.monotonic()
    result = await probe_with(url, timeout=1.0)
    assert time.monotonic() - started < 1.8
    unreachable(result, Unreachable.TIMEOUT)
    if headers_first:
        assert result.http_status == 200
        assert result.detail == "timed out after 1.0s after HTTP 200"
    else:
        assert result.detail == "timed out after 1.0s"


async def test_hostile_text_is_sanitised(servers: ServerPool, prober: HealthProber) -> None:
    result = await prober.probe("svc", await servers.start(bs.hostile()))
    assert result.status is ProbeStatus.UP
    for text in all_text(result):
        visible_only(text)
        assert len(text) <= 200
    assert result.answered_by == r"auth-0\x1b[2J\x1b]0;pwned\x07\x9b31m"
    component = result.components[0]
    assert (component.name, component.status) == (r"db\x1b[5m", r"UP\x1b[0M")
    details = dict(component.details)
    assert details[r"error\x1b]0;x\x07"].startswith(r"\x1b[2J\x1b[31mred\x1b[0m ")
    assert r"\x9b31m" in details[r"error\x1b]0;x\x07"]
    assert len(details["nested"]) <= 120


async def test_invalid_url_never_raises(prober: HealthProber) -> None:
    result = await prober.probe("svc", "not a url")
    unreachable(result, Unreachable.OTHER)
    assert result.detail.startswith("UnsupportedProtocol")


async def test_cancellation_propagates(servers: ServerPool, prober: HealthProber) -> None:
    connected = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await bs.hang(reader, writer)

    task = asyncio.create_task(prober.probe("svc", await servers.start(hang)))
    await asyncio.wait_for(connected.wait(), 10)  # cancelled mid-request, not before it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_prober_can_be_used_after_aclose(servers: ServerPool) -> None:
    url = await servers.start(bs.actuator_up())
    prober = HealthProber()
    assert (await prober.probe("a", url)).status is ProbeStatus.UP
    await prober.aclose()
    assert (await prober.probe("a", url)).status is ProbeStatus.UP
    await prober.aclose()


# --- TLS -------------------------------------------------------------------------------------


async def test_tls_self_signed_without_verification(
    servers: ServerPool, tls_files: tuple[Path, Path]
) -> None:
    url = await servers.start(bs.actuator_up(), tls=bs.server_tls(*tls_files))
    result = await probe_with(url, verify_tls=False)
    assert result.status is ProbeStatus.UP
    assert result.cert_days_left in (9, 10)


async def test_tls_self_signed_with_verification(
    servers: ServerPool, tls_files: tuple[Path, Path]
) -> None:
    url = await servers.start(bs.actuator_up(), tls=bs.server_tls(*tls_files))
    result = await probe_with(url, verify_tls=True)
    unreachable(result, Unreachable.TLS)
    assert result.detail == "certificate verify failed: self-signed certificate"


async def test_tls_with_a_ca_bundle(servers: ServerPool, tls_files: tuple[Path, Path]) -> None:
    url = await servers.start(bs.actuator_up(), tls=bs.server_tls(*tls_files))
    result = await probe_with(url, verify_tls=str(tls_files[0]))
    assert result.status is ProbeStatus.UP
    assert result.cert_days_left in (9, 10)


@pytest.mark.parametrize(("verify", "days"), [(True, (9, 10)), (False, (None,))])
async def test_cert_days_without_cryptography(
    servers: ServerPool,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    verify: bool,
    days: tuple[int | None, ...],
) -> None:
    """Without `cryptography` the verified dict form still works; unverified gives None."""
    url = await servers.start(bs.actuator_up(), tls=bs.server_tls(*tls_files))
    monkeypatch.setitem(sys.modules, "cryptography", None)
    result = await probe_with(url, verify_tls=str(tls_files[0]) if verify else False)
    assert result.status is ProbeStatus.UP
    assert result.cert_days_left in days


async def test_plain_http_on_a_tls_port(servers: ServerPool) -> None:
    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Like Tomcat given a ClientHello: an HTTP 400 at once, before any request line.
        writer.write(bs.head(400, content_type="text/plain", length=0))
        await writer.drain()
        await reader.read(65536)

    url = await servers.start(plain_http)
    result = await probe_with(url.replace("http://", "https://"), verify_tls=False)
    unreachable(result, Unreachable.TLS)
    assert result.detail == "wrong version number"


# --- sweep and aggregation -----------------------------------------------------------------------


async def test_sweep_of_hanging_targets_costs_one_timeout(servers: ServerPool) -> None:
    urls = [await servers.start(bs.hang) for _ in range(30)]
    started = time.monotonic()
    async with HealthProber(timeout=0.5) as prober:
        result = await prober.sweep([(f"svc-{i}", [url]) for i, url in enumerate(urls)])
    assert time.monotonic() - started < 3.0  # serially it would be 15 s
    assert [h.service for h in result] == [f"svc-{i}" for i in range(30)]
    assert all(h.probes[0].reason is Unreachable.TIMEOUT for h in result)


async def test_sweep_aggregates_per_service(servers: ServerPool, prober: HealthProber) -> None:
    up, down = await servers.start(bs.actuator_up()), await servers.start(bs.actuator_down())
    targets = [("auth-service", [up, down]), ("user-service", [up]), ("mute", [])]
    auth, user, mute, gone = await prober.sweep([*targets, ("gone", [bs.refused_url()])])
    assert (auth.status, [p.url for p in auth.probes]) == (ProbeStatus.DOWN, [up, down])
    assert auth.latency_ms == max(p.latency_ms or 0 for p in auth.probes)
    assert user.status is ProbeStatus.UP
    assert (mute.status, mute.probes, mute.latency_ms) == (ProbeStatus.UNKNOWN, (), None)
    assert (gone.status, gone.latency_ms) == (ProbeStatus.UNREACHABLE, None)


def test_worst_status_order() -> None:
    order = [
        ProbeStatus.UNREACHABLE,
        ProbeStatus.DOWN,
        ProbeStatus.OUT_OF_SERVICE,
        ProbeStatus.UNKNOWN,
        ProbeStatus.UP,
    ]
    for i, status in enumerate(order):
        assert worst_status(order[i:]) is status
        assert worst_status([ProbeStatus.UP, status]) is status
    assert ServiceHealth.of("x", []).status is ProbeStatus.UNKNOWN


# --- sanitize_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text", "plain text"),
        ("\x1b[31mred\x1b[0m", r"\x1b[31mred\x1b[0m"),  # CSI / SGR
        ("\x1b]0;title\x07", r"\x1b]0;title\x07"),  # OSC ended by BEL
        ("\x1b]8;;http://x/\x1b\\a", r"\x1b]8;;http://x/\x1b\a"),  # OSC 8 hyperlink, ST
        ("\x1bP1$r\x1b\\", r"\x1bP1$r\x1b" "\\"),  # DCS
        ("\x9b2J\x9d0;t\x9c\x90q\x85", r"\x9b2J\x9d0;t\x9c\x90q⏎"),  # C1 (0x85 is NEL)
        ("a\x7fb\x00c\x08d", r"a\x7fb\x00c\x08d"),  # DEL, NUL, BS
        ("a\tb", "a b"),
        ("one\ntwo\r\nthree\rfour", "one⏎two⏎three⏎four"),
        ("x\u2028y\u2029z", "x⏎y⏎z"),
        ("\u202eevil\u2066", r"\u202eevil\u2066"),  # bidi override / isolate
        ("lone \udc80 surrogate", r"lone \udc80 surrogate"),
        ("ünïcødé ✔ 日本", "ünïcødé ✔ 日本"),
    ],
)
def test_sanitize_text(raw: str, clean: str) -> None:
    assert sanitize_text(raw) == clean


def test_sanitize_text_options() -> None:
    assert sanitize_text("a\nb\tc", newline=" ", tab="    ") == "a b    c"


def test_sanitize_text_limits() -> None:
    assert sanitize_text("x" * 10, 10) == "x" * 10
    assert sanitize_text("x" * 11, 10) == "x" * 9 + "…"
    assert sanitize_text("x" * 1_000_000, 5) == "xxxx…"
    assert sanitize_text("abc", 0) == ""
    # An escape is never cut in half.
    assert sanitize_text("ab\x1bcdef", 6) == "ab…"
    assert sanitize_text("ab\x1b", 6) == r"ab\x1b"
    assert sanitize_text("a\r\n" * 100, 6) == "a⏎a⏎a…"
    for n in range(1, 30):
        out = sanitize_text("\x1b[1m" * 20, n)
        assert len(out) <= n
        visible_only(out)
