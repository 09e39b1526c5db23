"""The checklist's network checks against real servers on 127.0.0.1: TLS servers with
certificates made here (a test CA and leaves that are valid, expiring, expired, for another
host, from an unknown CA, not yet valid), the system resolver, and a registry stub speaking
the OCI distribution API with a Bearer token flow.

Only the resolver's failure modes (EAI_AGAIN, a hang) are simulated, by replacing the
loop's getaddrinfo: a real resolver cannot be made to fail on demand without touching the
machine's DNS configuration, and asking a real one would leave 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from backends.checklist.net import NetFinding
from backends.checklist.net_dns import check_dns
from backends.checklist.net_registry import ImageRef, check_image, parse_image_reference
from backends.checklist.net_tls import check_tls
from tests.support.pki import DAY, HOUR, Pki, make_ca, make_leaf


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One trusted CA (written to ca_file), one rogue CA, and a leaf per case."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca("bva test CA")
    rogue = make_ca("rogue CA", org="nobody you know")
    now = dt.datetime.now(dt.UTC)
    leaves = {
        "valid": make_leaf(ca, not_before=now - DAY, not_after=now + 90 * DAY + HOUR),
        # An extra hour so "in 5 days" holds however long the suite takes to get here.
        "soon": make_leaf(ca, not_before=now - 80 * DAY, not_after=now + 5 * DAY + HOUR),
        "expired": make_leaf(ca, not_before=now - 60 * DAY, not_after=now - 3 * DAY - HOUR),
        "future": make_leaf(ca, not_before=now + 2 * DAY + HOUR, not_after=now + 90 * DAY),
        "wronghost": make_leaf(
            ca, not_before=now - DAY, not_after=now + 90 * DAY, dns=("wrong.example",), ips=()
        ),
        "untrusted": make_leaf(rogue, not_before=now - DAY, not_after=now + 90 * DAY),
    }
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    return Pki(str(ca_file), leaves)


# ---------------------------------------------------------------------------------- servers

StartTls = Callable[[str], Awaitable[str]]


@pytest.fixture
async def tls_server(pki: Pki, tmp_path: Path) -> AsyncIterator[StartTls]:
    """Starts a TLS server on 127.0.0.1 presenting the named leaf; returns its https URL.
    Every server started is closed when the test ends."""
    servers: list[asyncio.Server] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.read()
        writer.close()

    async def start(leaf: str) -> str:
        server = await asyncio.start_server(
            on_connect, "127.0.0.1", 0, ssl=pki.server_context(leaf, tmp_path)
        )
        servers.append(server)
        return f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/actuator/health"

    loop = asyncio.get_running_loop()
    # A client rejecting the certificate makes the server's handshake fail; that is the
    # point of these tests, not something to print.
    loop.set_exception_handler(lambda _loop, _context: None)
    try:
        yield start
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def assert_one_line(finding: NetFinding) -> None:
    assert finding.evidence
    assert finding.evidence.isprintable(), finding.evidence
    assert len(finding.evidence) <= 200


# -------------------------------------------------------------------------------------- TLS


async def test_valid_certificate_passes_with_issuer_and_expiry(
    tls_server: StartTls, pki: Pki
) -> None:
    url = await tls_server("valid")
    finding = await check_tls(url, ca_file=pki.ca_file)
    assert finding.state == "pass", finding
    expiry = pki.leaves["valid"].cert.not_valid_after_utc.strftime("%Y-%m-%d")
    assert "valid for 90 days more" in finding.evidence
    assert f"notAfter {expiry}" in finding.evidence
    assert "CN=bva test CA, O=bva tests" in finding.evidence
    assert_one_line(finding)
    assert 0 < finding.duration_s < 5


async def test_valid_certificate_passes_by_hostname(tls_server: StartTls, pki: Pki) -> None:
    url = (await tls_server("valid")).replace("127.0.0.1", "localhost")
    finding = await check_tls(url, ca_file=pki.ca_file)
    assert finding.state == "pass", finding


async def test_certificate_expiring_within_min_days_warns(tls_server: StartTls, pki: Pki) -> None:
    finding = await check_tls(await tls_server("soon"), ca_file=pki.ca_file)
    assert finding.state == "warn", finding
    assert finding.evidence.startswith("expires in 5 days, under the 14-day minimum")
    assert "CN=bva test CA" in finding.evidence


async def test_min_days_is_the_threshold(tls_server: StartTls, pki: Pki) -> None:
    url = await tls_server("soon")
    assert (await check_tls(url, ca_file=pki.ca_file, min_days=5)).state == "pass"
    assert (await check_tls(url, ca_file=pki.ca_file, min_days=6)).state == "warn"


async def test_expired_certificate_fails_saying_how_long_ago(
    tls_server: StartTls, pki: Pki
) -> None:
    finding = await check_tls(await tls_server("expired"), ca_file=pki.ca_file)
    assert finding.state == "fail", finding
    not_after = pki.leaves["expired"].cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    assert finding.evidence.startswith(f"expired 3 days ago (notAfter {not_after})")
    assert "CN=bva test CA" in finding.evidence


async def test_not_yet_valid_certificate_fails(tls_server: StartTls, pki: Pki) -> None:
    finding = await check_tls(await tls_server("future"), ca_file=pki.ca_file)
    assert finding.state == "fail", finding
    assert finding.evidence.startswith("not yet valid: starts in 2 days (notBefore ")


async def test_hostname_mismatch_fails_naming_the_certificate_names(
    tls_server: StartTls, pki: Pki
) -> None:
    finding = await check_tls(await tls_server("wronghost"), ca_file=pki.ca_file)
    assert finding.state == "fail", finding
    assert finding.evidence == "hostname mismatch: certificate is for wrong.example, not 127.0.0.1"


async def test_untrusted_chain_fails_naming_the_issuer(tls_server: StartTls, pki: Pki) -> None:
    finding = await check_tls(await tls_server("untrusted"), ca_file=pki.ca_file)
    assert finding.state == "fail", finding
    assert finding.evidence.startswith("untrusted chain: unable to get local issuer certificate")
    assert "CN=rogue CA, O=nobody you know" in finding.evidence


async def test_without_ca_file_the_system_store_does_not_know_the_test_ca(
    tls_server: StartTls,
) -> None:
    finding = await check_tls(await tls_server("valid"))
    assert finding.state == "fail", finding
    assert finding.evidence.startswith("untrusted chain: ")


async def test_expiry_is_judged_against_the_injected_clock(tls_server: StartTls, pki: Pki) -> None:
    url = await tls_server("valid")
    later = time.time() + 100 * 86_400
    finding = await check_tls(url, ca_file=pki.ca_file, now=lambda: later)
    assert finding.state == "fail", finding
    assert finding.evidence.startswith("expired 9 days ago")
    sooner = time.time() + 80 * 86_400
    finding = await check_tls(url, ca_file=pki.ca_file, now=lambda: sooner)
    assert finding.state == "warn", finding
    assert finding.evidence.startswith("expires in 10 days")


async def test_refused_port_is_unknown_and_quick() -> None:
    started = time.monotonic()
    finding = await check_tls(f"https://127.0.0.1:{free_port()}/", timeout=2.0)
    assert finding.state == "unknown", finding
    assert finding.evidence.startswith("cannot reach 127.0.0.1:")
    assert "refused" in finding.evidence
    assert time.monotonic() - started < 2.0


async def test_silent_server_is_unknown_within_the_timeout(silent_port: int) -> None:
    started = time.monotonic()
    finding = await check_tls(f"https://127.0.0.1:{silent_port}/", timeout=0.5)
    elapsed = time.monotonic() - started
    assert finding.state == "unknown", finding
    assert finding.evidence == f"no TLS answer from 127.0.0.1:{silent_port} within 0.5s"
    assert 0.4 < elapsed < 1.0
    assert finding.duration_s == pytest.approx(elapsed, abs=0.05)


async def test_plain_http_on_the_port_fails_the_handshake() -> None:
    async def answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_http, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        finding = await check_tls(f"https://127.0.0.1:{port}/", timeout=2.0)
    finally:
        server.close()
        await server.wait_closed()
    assert finding.state == "fail", finding
    assert finding.evidence.startswith(f"TLS handshake with 127.0.0.1:{port} failed: ")


async def test_http_url_warns_without_connecting() -> None:
    finding = await check_tls(f"http://user:hunter2@127.0.0.1:{free_port()}/health")
    assert finding.state == "warn"
    assert finding.evidence == "not HTTPS: 127.0.0.1 is served over plain http"


@pytest.mark.parametrize(
    ("url", "evidence"),
    [
        ("ftp://127.0.0.1/", "not an https URL (scheme 'ftp')"),
        ("127.0.0.1:8443", "not an https URL (scheme 'missing')"),
        ("https:///nohost", "not a URL with a host: https:///nohost"),
        ("https://127.0.0.1:99999/", "not a valid URL: Port out of range 0-65535"),
    ],
)
async def test_urls_that_are_not_https_fail(url: str, evidence: str) -> None:
    finding = await check_tls(url)
    assert (finding.state, finding.evidence) == ("fail", evidence)


async def test_missing_ca_file_is_unknown(tmp_path: Path) -> None:
    finding = await check_tls("https://127.0.0.1:1/", ca_file=str(tmp_path / "nope.pem"))
    assert finding.state == "unknown"
    assert finding.evidence.startswith("cannot load CA file: ")


# -------------------------------------------------------------------------------------- DNS


async def test_localhost_resolves() -> None:
    finding = await check_dns("localhost")
    assert finding.state == "pass", finding
    assert finding.evidence.startswith("localhost resolves to ")
    assert "127.0.0.1" in finding.evidence or "::1" in finding.evidence


async def test_ip_literal_resolves_to_itself() -> None:
    finding = await check_dns("127.0.0.1")
    assert (finding.state, finding.evidence) == ("pass", "127.0.0.1 resolves to 127.0.0.1")


@pytest.mark.parametrize("name", ["bva-release-check.invalid", "Auth.Gateway.INVALID."])
async def test_invalid_tld_does_not_resolve(name: str) -> None:
    finding = await check_dns(name)
    assert finding.state == "fail", finding
    assert finding.evidence == f"{name} does not resolve (.invalid is reserved, RFC 6761)"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("bad host", "bad label 'bad host'"),
        ("-dash.example", "bad label '-dash'"),
        ("a..b", "empty label"),
        ("x" * 64 + ".example", "bad label"),
        ("a\x1b[31m.example", "bad label"),
    ],
)
async def test_malformed_hostnames_fail_without_asking(name: str, why: str) -> None:
    finding = await check_dns(name)
    assert finding.state == "fail", finding
    assert finding.evidence.startswith("not a valid hostname")
    assert why in finding.evidence
    assert "\x1b" not in finding.evidence
    assert_one_line(finding)


def _resolver(
    monkeypatch: pytest.MonkeyPatch, behaviour: Callable[[], Awaitable[Any]]
) -> list[str]:
    asked: list[str] = []

    async def getaddrinfo(host: str, *_args: object, **_kwargs: object) -> Any:
        asked.append(host)
        return await behaviour()

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("code", "state", "evidence"),
    [
        (socket.EAI_NONAME, "fail", "db.bva.example does not resolve (no such name)"),
        (socket.EAI_AGAIN, "unknown", "resolver temporarily failed for db.bva.example"),
        (socket.EAI_FAIL, "unknown", "resolver failed for db.bva.example: "),
    ],
)
async def test_resolver_errors_map_to_states(
    monkeypatch: pytest.MonkeyPatch, code: int, state: str, evidence: str
) -> None:
    async def fail() -> Any:
        raise socket.gaierror(code, "simulated")

    asked = _resolver(monkeypatch, fail)
    finding = await check_dns("db.bva.example")
    assert asked == ["db.bva.example"]
    assert finding.state == state
    assert finding.evidence.startswith(evidence)


async def test_resolver_that_hangs_is_unknown_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def hang() -> Any:
        await asyncio.sleep(30)

    _resolver(monkeypatch, hang)
    started = time.monotonic()
    finding = await check_dns("db.bva.example", timeout=0.3)
    assert finding.state == "unknown"
    assert finding.evidence == "no answer from the resolver within 0.3s"
    assert time.monotonic() - started < 0.8


async def test_many_addresses_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    async def many() -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (f"10.0.0.{i}", 0)) for i in range(1, 6)
        ]

    _resolver(monkeypatch, many)
    finding = await check_dns("db.bva.example")
    assert finding.evidence == "db.bva.example resolves to 10.0.0.1, 10.0.0.2, 10.0.0.3 (+2 more)"


# ----------------------------------------------------------------------------------- images

DIGEST = "sha256:" + "5e" * 32
OTHER_DIGEST = "sha256:" + "c0" * 32
ANON_TOKEN = "anon.pull-token_for/private=="
GIVEN_TOKEN = "s3cr3t-registry-token"
ACCEPT = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class RegistryStub:
    """The distribution API's manifest HEAD for a handful of repositories:
    - bharathva/auth-service: tag 1.4.2 and its digest, public;
    - bharathva/private: needs a Bearer token from /token (anonymous flow);
    - bharathva/locked: challenges, but /token refuses its scope;
    - bharathva/secret: needs GIVEN_TOKEN, challenges with Basic (no flow to run);
    - bharathva/broken: 503; bharathva/slow: never answers;
    anything else 404."""

    url: str = ""
    manifests: list[Seen] = field(default_factory=list)
    tokens: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def challenge(self, repo: str) -> dict[str, str]:
        value = (
            f'Bearer realm="{self.url}/token",service="stub-registry",'
            f'scope="repository:{repo}:pull"'
        )
        return {"WWW-Authenticate": value}

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        repo, ref = request.match_info["repo"], request.match_info["ref"]
        self.manifests.append(Seen(request.method, request.path, dict(request.headers)))
        auth = request.headers.get("Authorization")
        if repo == "bharathva/broken":
            return web.Response(status=503)
        if repo == "bharathva/slow":
            await self.release.wait()
            return web.Response(status=503)
        if repo in ("bharathva/private", "bharathva/locked") and auth != f"Bearer {ANON_TOKEN}":
            return web.Response(status=401, headers=self.challenge(repo))
        if repo == "bharathva/secret" and auth != f"Bearer {GIVEN_TOKEN}":
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="stub"'})
        known = {"bharathva/auth-service", "bharathva/private", "bharathva/secret"}
        if repo in known and ref in ("1.4.2", DIGEST):
            return web.Response(
                status=200,
                headers={
                    "Docker-Content-Digest": DIGEST,
                    "Content-Type": "application/vnd.oci.image.index.v1+json",
                },
            )
        return web.Response(status=404)

    async def token(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path, dict(request.headers), dict(request.query))
        self.tokens.append(seen)
        wanted = {"service": "stub-registry", "scope": "repository:bharathva/private:pull"}
        if dict(request.query) == wanted:
            return web.json_response({"token": ANON_TOKEN, "expires_in": 300})
        return web.Response(status=401)


@pytest.fixture
async def registry() -> AsyncIterator[RegistryStub]:
    stub = RegistryStub()
    app = web.Application()
    app.router.add_route("HEAD", "/v2/{repo:.+}/manifests/{ref}", stub.manifest)
    app.router.add_get("/token", stub.token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stub.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield stub
    finally:
        stub.release.set()  # lets a parked slow handler finish, so cleanup does not wait
        await runner.cleanup()


async def test_image_in_registry_passes_with_digest(registry: RegistryStub) -> None:
    finding = await check_image("bharathva/auth-service:1.4.2", registry_url=registry.url)
    assert finding.state == "pass", finding
    assert finding.evidence == f"bharathva/auth-service:1.4.2 found ({DIGEST})"
    [seen] = registry.manifests
    assert (seen.method, seen.path) == ("HEAD", "/v2/bharathva/auth-service/manifests/1.4.2")
    assert {t.strip() for t in seen.headers["Accept"].split(",")} == ACCEPT
    assert "Authorization" not in seen.headers


async def test_registry_part_of_the_reference_is_not_the_repository(
    registry: RegistryStub,
) -> None:
    reference = "registry.bva.example:5000/bharathva/auth-service:1.4.2"
    finding = await check_image(reference, registry_url=registry.url + "/")
    assert finding.state == "pass", finding
    assert registry.manifests[0].path == "/v2/bharathva/auth-service/manifests/1.4.2"


async def test_pinned_digest_is_what_is_looked_up(registry: RegistryStub) -> None:
    finding = await check_image(f"bharathva/auth-service:1.4.2@{DIGEST}", registry_url=registry.url)
    assert finding.state == "pass", finding
    assert registry.manifests[0].path == f"/v2/bharathva/auth-service/manifests/{DIGEST}"
    missing = await check_image(f"bharathva/auth-service@{OTHER_DIGEST}", registry_url=registry.url)
    assert missing.state == "fail"
    assert missing.evidence == f"bharathva/auth-service@{OTHER_DIGEST} is not in the registry"


async def test_missing_tag_fails(registry: RegistryStub) -> None:
    finding = await check_image("bharathva/auth-service:9.9.9", registry_url=registry.url)
    assert (finding.state, finding.evidence) == (
        "fail",
        "bharathva/auth-service:9.9.9 is not in the registry",
    )


async def test_untagged_reference_looks_up_latest(registry: RegistryStub) -> None:
    finding = await check_image("bharathva/auth-service", registry_url=registry.url)
    assert finding.state == "fail"
    assert registry.manifests[0].path == "/v2/bharathva/auth-service/manifests/latest"


async def test_registry_5xx_is_unknown(registry: RegistryStub) -> None:
    finding = await check_image("bharathva/broken:1.0", registry_url=registry.url)
    assert (finding.state, finding.evidence) == (
        "unknown",
        "registry answered 503 for bharathva/broken:1.0",
    )


async def test_registry_that_never_answers_is_unknown_within_the_timeout(
    registry: RegistryStub,
) -> None:
    started = time.monotonic()
    finding = await check_image("bharathva/slow:1.0", registry_url=registry.url, timeout=0.5)
    assert finding.state == "unknown", finding
    assert finding.evidence.endswith("did not answer within 0.5s")
    assert time.monotonic() - started < 1.0


async def test_unreachable_registry_is_unknown_and_leaks_no_token() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    finding = await check_image(
        "bharathva/auth-service:1.4.2", registry_url=url, token=GIVEN_TOKEN, timeout=2.0
    )
    assert finding.state == "unknown", finding
    assert finding.evidence.startswith("cannot reach registry 127.0.0.1:")
    assert GIVEN_TOKEN not in repr(finding)
    assert time.monotonic() - started < 2.0


async def test_anonymous_token_flow_runs_once_and_retries(registry: RegistryStub) -> None:
    finding = await check_image("bharathva/private:1.4.2", registry_url=registry.url)
    assert finding.state == "pass", finding
    assert ANON_TOKEN not in repr(finding)
    [token_request] = registry.tokens
    assert token_request.query == {
        "service": "stub-registry",
        "scope": "repository:bharathva/private:pull",
    }
    first, second = registry.manifests
    assert "Authorization" not in first.headers
    assert second.headers["Authorization"] == f"Bearer {ANON_TOKEN}"


async def test_given_token_is_never_sent_to_the_token_realm(registry: RegistryStub) -> None:
    finding = await check_image(
        "bharathva/private:1.4.2", registry_url=registry.url, token=GIVEN_TOKEN
    )
    assert finding.state == "pass", finding
    assert registry.manifests[0].headers["Authorization"] == f"Bearer {GIVEN_TOKEN}"
    [token_request] = registry.tokens
    assert "Authorization" not in token_request.headers
    assert GIVEN_TOKEN not in str(token_request)


async def test_refused_anonymous_token_is_unknown(registry: RegistryStub) -> None:
    finding = await check_image("bharathva/locked:1.0", registry_url=registry.url)
    assert (finding.state, finding.evidence) == (
        "unknown",
        "registry requires credentials: anonymous token refused (401)",
    )
    assert len(registry.tokens) == 1
    assert len(registry.manifests) == 1


async def test_given_token_is_sent_as_bearer(registry: RegistryStub) -> None:
    finding = await check_image(
        "bharathva/secret:1.4.2", registry_url=registry.url, token=GIVEN_TOKEN
    )
    assert finding.state == "pass", finding
    assert registry.manifests[0].headers["Authorization"] == f"Bearer {GIVEN_TOKEN}"
    assert GIVEN_TOKEN not in repr(finding)


async def test_missing_or_wrong_token_is_unknown_and_not_shown(registry: RegistryStub) -> None:
    without = await check_image("bharathva/secret:1.4.2", registry_url=registry.url)
    assert (without.state, without.evidence) == (
        "unknown",
        "registry requires credentials (401) for bharathva/secret",
    )
    wrong = await check_image(
        "bharathva/secret:1.4.2", registry_url=registry.url, token="not-the-token"
    )
    assert (wrong.state, wrong.evidence) == (
        "unknown",
        "registry refused the token (401) for bharathva/secret",
    )
    assert registry.tokens == []  # a Basic challenge has no token flow


async def test_token_that_cannot_be_a_header_is_refused_unquoted(
    registry: RegistryStub,
) -> None:
    finding = await check_image(
        "bharathva/secret:1.4.2", registry_url=registry.url, token="s3cr3t\r\nX-Evil: 1"
    )
    assert (finding.state, finding.evidence) == (
        "unknown",
        "the registry token is not a valid bearer token",
    )
    assert registry.manifests == []


async def test_no_registry_configured_checks_the_format_only() -> None:
    finding = await check_image("bharathva/auth-service:1.4.2", registry_url=None)
    assert (finding.state, finding.evidence) == (
        "pass",
        "bharathva/auth-service:1.4.2 is well-formed (no registry configured)",
    )


async def test_bad_registry_url_is_unknown() -> None:
    finding = await check_image("bharathva/a:1", registry_url="ftp://registry")
    assert (finding.state, finding.evidence) == (
        "unknown",
        "the registry URL is not a valid http(s) URL",
    )


@pytest.mark.parametrize(
    ("reference", "why"),
    [
        ("", "empty"),
        ("bharathva/Auth-Service:1.4.2", "must be lower case"),
        ("bharathva/auth service:1", "whitespace"),
        ("bharathva/auth-service:-1", "tag '-1'"),
        ("bharathva/auth-service:", "tag ''"),
        ("bharathva/auth-service:" + "x" * 129, "tag"),
        ("bharathva/auth-service:1.4+build", "tag '1.4+build'"),
        ("bharathva/auth-service@sha256:abc", "digest must be"),
        ("bharathva/auth-service@md5:" + "0" * 32, "digest must be"),
        ("bharathva/auth-service@sha256:" + "AB" * 32, "digest must be"),
        ("bharathva//auth-service", "must be /-separated"),
        ("bharathva/auth___service", "must be /-separated"),
        ("bharathva/-auth", "must be /-separated"),
        ("registry.example:port/a/b", "not a valid host[:port]"),
        ("registry.example/", "no repository name"),
        (":1.0", "no repository name"),
        ("a/" + "b" * 300, "longer than 255"),
        ("bharathva/a\x1b]0;pwned\x07:1", "must be /-separated"),
    ],
)
async def test_malformed_references_fail(reference: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_image_reference(reference)
    assert why in str(raised.value)
    finding = await check_image(reference, registry_url="http://127.0.0.1:1")
    assert finding.state == "fail", finding
    assert finding.evidence.startswith("malformed image reference")
    assert why in finding.evidence
    assert_one_line(finding)
    assert "\x1b" not in finding.evidence and "\x07" not in finding.evidence


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("nginx", ImageRef(None, "nginx", None, None)),
        ("bharathva/auth-service:1.4.2", ImageRef(None, "bharathva/auth-service", "1.4.2", None)),
        ("localhost:5000/a/b:v1", ImageRef("localhost:5000", "a/b", "v1", None)),
        ("localhost/a", ImageRef("localhost", "a", None, None)),
        ("Registry/a", ImageRef("Registry", "a", None, None)),
        ("[::1]:5000/a__b/c-d.e:V_1.0-rc", ImageRef("[::1]:5000", "a__b/c-d.e", "V_1.0-rc", None)),
        (
            f"ghcr.io/bharathva/auth-service:1.4.2@{DIGEST}",
            ImageRef("ghcr.io", "bharathva/auth-service", "1.4.2", DIGEST),
        ),
        (f"a@{DIGEST}", ImageRef(None, "a", None, DIGEST)),
        ("a@sha512:" + "0" * 128, ImageRef(None, "a", None, "sha512:" + "0" * 128)),
    ],
)
def test_well_formed_references_parse(reference: str, parsed: ImageRef) -> None:
    assert parse_image_reference(reference) == parsed
    assert str(parsed) == reference
