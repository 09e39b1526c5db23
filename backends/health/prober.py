"""HTTP health adapter: probes Spring Boot Actuator health endpoints.

``probe`` never raises (except on cancellation): every failure becomes a ProbeResult that says
why, in one sanitised line, so a health panel can show a bad endpoint beside good ones.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from backends.health.models import (
    HealthComponent,
    ProbeResult,
    ProbeStatus,
    ServiceHealth,
    Unreachable,
)
from backends.health.tls import cert_days_left, client_ssl_context, describe_ssl_error
from backends.sanitize import sanitize_text

__all__ = ["POD_HEADER", "HealthProber"]

POD_HEADER = "x-sandbox-pod"
_HEADERS = {
    "Accept": "application/vnd.spring-boot.actuator.v3+json, application/json;q=0.9, */*;q=0.1",
    # Compressed bodies would dodge the size cap (httpx inflates a whole chunk at once).
    "Accept-Encoding": "identity",
    "User-Agent": "bva-health",
}
_MAX_COMPONENTS = 64
_MAX_DEPTH = 4
_MAX_DETAILS = 16
_KNOWN = {s.value for s in ProbeStatus if s is not ProbeStatus.UNREACHABLE}


@dataclass(frozen=True, slots=True)
class _TooLarge:
    """Stands in for a body that was not read to the end."""

    what: str


@dataclass(slots=True)
class _Seen:
    """What had arrived when a probe failed part-way (a body that timed out or was reset)."""

    http_status: int | None = None
    answered_by: str | None = None
    cert_days: int | None = None
    location: str | None = None


KEEPALIVE_S = 30.0


class HealthProber:
    def __init__(
        self,
        *,
        timeout: float = 2.0,
        max_body_bytes: int = 256 * 1024,
        verify_tls: bool | str = True,
        concurrency: int = 64,
    ) -> None:
        if timeout <= 0 or max_body_bytes <= 0 or concurrency <= 0:
            raise ValueError("timeout, max_body_bytes and concurrency must be positive")
        self._timeout = float(timeout)
        self._max_body = max_body_bytes
        self._verify = verify_tls
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        # One client per origin: httpcore's pool rescans every connection for every waiting
        # request (encode/httpcore#1035), so one pool for 200 endpoints cost seconds of CPU
        # a sweep; a pool per origin holds a connection or two.
        self._http: dict[str, httpx.AsyncClient] = {}
        self._tls: ssl.SSLContext | None = None

    async def __aenter__(self) -> HealthProber:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._http = self._http, {}
        for client in clients.values():
            await client.aclose()

    def _client(self, url: str) -> httpx.AsyncClient:
        origin = _origin(url)
        client = self._http.get(origin)
        if client is None:
            if self._tls is None:
                self._tls = client_ssl_context(self._verify)  # costly: made once, shared
            client = self._http[origin] = httpx.AsyncClient(
                verify=self._tls,
                http1=True,
                http2=False,
                timeout=httpx.Timeout(self._timeout),
                # httpx drops an idle connection after 5 s, just before the next sweep:
                # every probe paid a new TCP connection. Servers close theirs much later
                # (aiohttp 75 s, Tomcat 20 s) and a closed one is found and replaced.
                limits=httpx.Limits(
                    max_connections=self._concurrency,
                    max_keepalive_connections=self._concurrency,
                    keepalive_expiry=KEEPALIVE_S,
                ),
                follow_redirects=False,
                # Health endpoints are internal: a proxy from the engineer's shell would
                # misroute them, and SSL_CERT_FILE must not silently replace verify_tls.
                trust_env=False,
                headers=_HEADERS,
            )
        return client

    async def sweep(self, targets: Sequence[tuple[str, Sequence[str]]]) -> list[ServiceHealth]:
        """Probe every URL of every service at once (bounded by ``concurrency``), so a sweep
        costs about one timeout. One ServiceHealth per target, in order."""
        jobs = [self.probe(service, url) for service, urls in targets for url in urls]
        results = iter(await asyncio.gather(*jobs))
        return [
            ServiceHealth.of(service, [next(results) for _ in urls]) for service, urls in targets
        ]

    async def probe(self, service: str, url: str) -> ProbeResult:
        checked_at = time.time()
        seen = _Seen()
        latency_ms: float | None = None
        try:
            client = self._client(url)
            async with self._slots:
                started = time.monotonic()
                # httpx's timeouts are per network operation: a server trickling bytes would
                # never trip them, hence the overall deadline as well.
                async with asyncio.timeout(self._timeout):
                    body = await self._fetch(client, url, seen)
                latency_ms = (time.monotonic() - started) * 1000.0
            assert seen.http_status is not None  # _fetch returns only after a response
            status, reason, detail, components = _judge(seen.http_status, body, seen.location)
        except Exception as exc:
            status, components = ProbeStatus.UNREACHABLE, ()
            reason, detail = self._classify(exc, url, seen)
        return ProbeResult(
            service=service,
            url=url,
            status=status,
            reason=reason,
            detail=sanitize_text(detail),
            http_status=seen.http_status,
            latency_ms=latency_ms,
            components=components,
            cert_days_left=seen.cert_days,
            checked_at=checked_at,
            answered_by=seen.answered_by,
        )

    async def _fetch(self, client: httpx.AsyncClient, url: str, seen: _Seen) -> bytes | _TooLarge:
        async with client.stream("GET", url) as response:
            seen.http_status = response.status_code
            pod = response.headers.get(POD_HEADER)
            seen.answered_by = sanitize_text(pod, 100) if pod is not None else None
            stream = response.extensions.get("network_stream")
            if stream is not None and response.url.scheme == "https":
                seen.cert_days = cert_days_left(stream.get_extra_info("ssl_object"), time.time())
            if response.is_redirect:
                # Not followed: a redirect to a login page is the finding, not its HTML.
                seen.location = sanitize_text(response.headers.get("location", ""), 100)
                return b""
            return await self._read_capped(response)

    async def _read_capped(self, response: httpx.Response) -> bytes | _TooLarge:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            return _TooLarge(f"of {int(declared)} bytes declared")
        raw = bytearray()
        async for chunk in response.aiter_raw():
            raw += chunk
            if len(raw) > self._max_body:
                # Leaving the stream unread makes httpcore drop the connection, so the rest
                # of the body is never fetched.
                return _TooLarge(f"over {self._max_body} bytes")
        return _decode(bytes(raw), response.headers.get("content-encoding", ""), self._max_body)

    def _classify(self, exc: Exception, url: str, seen: _Seen) -> tuple[Unreachable, str]:
        chain = list(_causes(exc))
        after = f" after HTTP {seen.http_status}" if seen.http_status is not None else ""
        if any(isinstance(e, TimeoutError | httpx.TimeoutException) for e in chain):
            phase = " connecting" if isinstance(exc, httpx.ConnectTimeout) else ""
            return Unreachable.TIMEOUT, f"timed out{phase} after {self._timeout}s{after}"
        for e in chain:
            if isinstance(e, ssl.SSLError):
                return Unreachable.TLS, describe_ssl_error(e)
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return Unreachable.REFUSED, "connection refused"
        if any(isinstance(e, socket.gaierror) for e in chain):
            host = httpx.URL(url).host if isinstance(exc, httpx.HTTPError) else url
            return Unreachable.DNS, f"name not resolved: {host}"
        if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain):
            return Unreachable.RESET, f"connection reset{after}"
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return Unreachable.RESET, f"{_message(exc)}{after}"
        return Unreachable.OTHER, f"{type(exc).__name__}: {_message(exc)}"


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text[:1].lower() + text[1:] if text else type(exc).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, through httpx → httpcore → OSError wrapping and anyio's
    exception groups (a refused connection arrives as "All connection attempts failed")."""
    todo, seen = [exc], set[int]()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        # httpcore wraps with `raise ConnectError(exc) from None`: the original is an arg.
        todo.extend(a for a in e.args if isinstance(a, BaseException))
        cause = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
        if cause is not None:
            todo.append(cause)


def _decode(raw: bytes, encoding: str, limit: int) -> bytes | _TooLarge:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return raw
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"unsupported content-encoding {enc}")
    # wbits 47 auto-detects gzip and zlib headers; max_length stops a decompression bomb.
    inflater = zlib.decompressobj(47 if enc != "deflate" else 15)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        return b""  # judged as "not JSON"
    return _TooLarge(f"over {limit} bytes inflated") if len(out) > limit else out


def _judge(
    http_status: int, body: bytes | _TooLarge, location: str | None = None
) -> tuple[ProbeStatus, Unreachable | None, str, tuple[HealthComponent, ...]]:
    """Status, reason, detail and components for an answered probe."""
    http = f"HTTP {http_status}"
    if isinstance(body, _TooLarge):
        return ProbeStatus.UNREACHABLE, Unreachable.TOO_LARGE, f"{http}, body {body.what}", ()
    if location is not None:
        return ProbeStatus.UNREACHABLE, Unreachable.BAD_STATUS, f"{http} redirect to {location}", ()
    doc = _parse_json(body)
    code = doc.get("status") if isinstance(doc, dict) else None
    ok = 200 <= http_status < 300
    if isinstance(doc, dict) and isinstance(code, str):
        name = code.strip().upper()
        # Any status may carry a health body (Spring maps DOWN to 503 by default, but the
        # mapping is configurable); an error page's unknown word is not a health status.
        if name in _KNOWN or ok or http_status == 503:
            status = ProbeStatus(name) if name in _KNOWN else ProbeStatus.UNKNOWN
            components = _components(doc)
            return status, None, _summary(http, components), components
    if ok:
        why = "body not JSON" if doc is _INVALID else 'JSON without a "status"'
        return ProbeStatus.UNREACHABLE, Unreachable.NOT_JSON, f"{http}, {why}", ()
    return ProbeStatus.UNREACHABLE, Unreachable.BAD_STATUS, http, ()


_INVALID = object()


def _parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested thousands deep
        return _INVALID


def _summary(http: str, components: tuple[HealthComponent, ...]) -> str:
    # A composite is DOWN because of a child: naming the child says more.
    parents = {c.name.rsplit("/", 1)[0] for c in components if "/" in c.name}
    bad = [c for c in components if c.status != "UP" and c.name not in parents]
    if not bad:
        return http
    shown = ", ".join(f"{c.name} {c.status}" for c in bad[:3])
    return f"{http}: {shown}" + (f" (+{len(bad) - 3})" if len(bad) > 3 else "")


def _is_component(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("status"), str)


def _components(doc: dict[str, Any]) -> tuple[HealthComponent, ...]:
    """Boot 2.2+ nests them under "components", 2.0/2.1 under "details", 1.x at the top."""
    tree = doc.get("components")
    if not isinstance(tree, dict):
        tree = doc.get("details")
    if not isinstance(tree, dict):
        tree = doc
    out: list[HealthComponent] = []
    _walk(tree, "", 0, out)
    return tuple(out)


def _walk(tree: dict[str, Any], prefix: str, depth: int, out: list[HealthComponent]) -> None:
    for key, value in tree.items():
        if len(out) >= _MAX_COMPONENTS:
            return
        if not _is_component(value):
            continue
        name = prefix + sanitize_text(str(key), 60)
        children = value.get("components")
        details = value.get("details")
        composite = isinstance(details, dict) and details and not isinstance(children, dict)
        if composite and all(_is_component(v) for v in details.values()):  # Boot 2.0/2.1
            children, details = details, None
        status = sanitize_text(value["status"].strip().upper(), 32)
        out.append(HealthComponent(name=name, status=status, details=_details(details)))
        if isinstance(children, dict) and depth < _MAX_DEPTH:
            _walk(children, name + "/", depth + 1, out)


def _details(details: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(details, dict):
        return ()
    items = list(details.items())[:_MAX_DETAILS]
    return tuple((sanitize_text(str(k), 60), _detail_value(v)) for k, v in items)


def _detail_value(value: object) -> str:
    if isinstance(value, str):
        return sanitize_text(value, 120)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return sanitize_text(text, 120)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
