"""Loopback HTTP servers, well- and ill-behaved, for the health prober's tests.

Raw ``asyncio.start_server`` sockets rather than a web framework, because the point is to
misbehave at the byte level: hang, reset, trickle, lie about the body. Servers run in the
test's event loop on 127.0.0.1, port 0, and a ServerPool stops them all at test end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEALTH_PATH = "/actuator/health"
ACTUATOR_JSON = "application/vnd.spring-boot.actuator.v3+json"


@dataclass
class LoopbackServer:
    url: str
    server: asyncio.Server
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def stop(self) -> None:
        # Handlers that hang forever must be cancelled: from 3.12 wait_closed() waits for them.
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()


@dataclass
class ServerPool:
    """Starts servers for one test and stops every one of them afterwards."""

    running: list[LoopbackServer] = field(default_factory=list)

    async def start(
        self, handler: Handler, *, tls: ssl.SSLContext | None = None, path: str = HEALTH_PATH
    ) -> str:
        server = await serve(handler, tls=tls, path=path)
        self.running.append(server)
        return server.url

    async def stop_all(self) -> None:
        for server in self.running:
            await server.stop()
        self.running.clear()


async def serve(
    handler: Handler, *, tls: ssl.SSLContext | None = None, path: str = HEALTH_PATH
) -> LoopbackServer:
    handlers: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client hung up, which is what several tests make it do
        except asyncio.CancelledError:
            pass  # stop(): a cancelled handler task would be logged as an error by asyncio
        finally:
            handlers.discard(task)
            writer.transport.abort()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if tls is not None else "http"
    return LoopbackServer(
        url=f"{scheme}://127.0.0.1:{port}{path}", server=server, handlers=handlers
    )


def refused_url(path: str = HEALTH_PATH) -> str:
    """A loopback URL nobody listens on: a port that was bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# --- building blocks -------------------------------------------------------------------------

_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def head(
    status: int,
    *,
    content_type: str = ACTUATOR_JSON,
    length: int | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Status line and headers. Without ``length`` the body is delimited by closing."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Connection: close")
    lines.extend(f"{name}: {value}" for name, value in headers)
    # latin-1 so a test can put any byte (ESC, C1) into a header value.
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(
    status: int,
    body: bytes,
    *,
    content_type: str = ACTUATOR_JSON,
    headers: Iterable[tuple[str, str]] = (),
) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: the prober may reuse the connection
            await read_request(reader)
            writer.write(head(status, content_type=content_type, length=len(body), headers=headers))
            writer.write(body)
            await writer.drain()

    return handle


def respond_json(status: int, doc: object, headers: Iterable[tuple[str, str]] = ()) -> Handler:
    return respond(status, json.dumps(doc).encode(), headers=headers)


# --- the cast --------------------------------------------------------------------------------

UP_DOC = {
    "status": "UP",
    "components": {
        "db": {
            "status": "UP",
            "details": {"database": "PostgreSQL", "validationQuery": "isValid()"},
        },
        "diskSpace": {"status": "UP", "details": {"total": 1000, "free": 600, "exists": True}},
        "ping": {"status": "UP"},
    },
}
DOWN_DOC = {
    "status": "DOWN",
    "components": {
        "db": {
            "status": "DOWN",
            "components": {
                "primary": {"status": "DOWN", "details": {"error": "Connection refused"}},
                "replica": {"status": "UP", "details": {"database": "PostgreSQL"}},
            },
        },
        "ping": {"status": "UP"},
    },
}


def actuator_up(pod: str | None = None) -> Handler:
    return respond_json(200, UP_DOC, [("X-Sandbox-Pod", pod)] if pod else [])


def actuator_down() -> Handler:
    return respond_json(503, DOWN_DOC)


def html_error(status: int = 500) -> Handler:
    page = b"<html><body><h1>Whitelabel Error Page</h1></body></html>"
    return respond(status, page, content_type="text/html")


def malformed_json() -> Handler:
    return respond(200, b'{"status": "UP", "components": {', content_type="application/json")


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, then never answer."""
    await asyncio.Event().wait()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, then close with SO_LINGER 0 so the kernel sends RST."""
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def huge_body(
    size: int = 5 * 1024 * 1024, *, declare: bool = False, then_hang: bool = False
) -> Handler:
    """A ``size``-byte JSON string body, streamed in 64 KiB writes; ``then_hang`` stops after
    ``size`` bytes without ending the body, so only a reader that stops early gets an answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        length = size + 2 if declare and not then_hang else None
        writer.write(head(200, length=length) + b'"')
        chunk = b"x" * 65536
        for _ in range(size // len(chunk)):
            writer.write(chunk)
            await writer.drain()
        if then_hang:
            await asyncio.Event().wait()
        writer.write(b"x" * (size % len(chunk)) + b'"')
        await writer.drain()

    return handle


def trickle(interval: float = 0.5, *, headers_first: bool = False) -> Handler:
    """One byte of the response every ``interval`` seconds: never idle long enough to trip a
    per-read timeout. ``headers_first`` sends the head at once and trickles only the body."""
    body = json.dumps(UP_DOC).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        data = head(200, length=len(body))
        if headers_first:
            writer.write(data)
            data = b""
        for byte in data + body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)

    return handle


HOSTILE = "\x1b[2J\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x1b]8;;http://evil/\x1b\\link \x1bP1$r\x1b\\"
HOSTILE += " \x9b31m \x9d0;t\x9c \x07\x08\x7f tab\tnew\nline\r\n\u202eevil"


def hostile() -> Handler:
    """Escape sequences and control characters in details, names and the pod header."""
    doc = {
        "status": "UP",
        "components": {
            "db\x1b[5m": {
                "status": "UP\x1b[0m",
                "details": {"error\x1b]0;x\x07": HOSTILE, "nested": {"deep": HOSTILE}},
            }
        },
    }
    pod = "auth-0\x1b[2J\x1b]0;pwned\x07\x9b31m"
    return respond_json(200, doc, [("X-Sandbox-Pod", pod)])


# --- TLS -------------------------------------------------------------------------------------


def self_signed_cert(directory: Path, *, days: int = 10) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 valid for ``days`` more days,
    written as PEM; returns (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
