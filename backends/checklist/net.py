"""The checklist's network checks: a TLS certificate, a DNS name, a container image.

Each check is one async function returning a ``NetFinding`` and never raising for anything
the network or a server does. They share one vocabulary, so the checklist can count them:

- ``pass``: the check got an answer and the answer is good;
- ``warn``: an answer that is usable today but wants attention (a certificate close to its
  end, a plain-HTTP endpoint);
- ``fail``: an answer that is wrong — the thing exists and is broken, or is known not to
  exist (an expired or untrusted certificate, a name that does not resolve, an image the
  registry does not have, a malformed reference);
- ``unknown``: no answer — unreachable, timed out, a resolver or registry failing — so the
  check cannot say either way. A network outage must never read as "the release is bad",
  nor as "the release is fine".

Every check is bounded by its ``timeout`` as a whole (connection, handshake, retries and
token flow together), because one stuck check would otherwise stall the whole checklist.
Evidence is one sanitised line and never contains a credential.

Over 500 lines because the three checks share the finding type, the state vocabulary and
the deadline-and-redaction plumbing, and the checklist engine imports them as one unit;
each check is a section of its own (TLS, DNS, images) that could be split out unchanged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from backends.health.tls import client_ssl_context, describe_ssl_error
from backends.sanitize import sanitize_text

__all__ = [
    "ImageRef",
    "NetFinding",
    "NetState",
    "check_dns",
    "check_image",
    "check_tls",
    "parse_image_reference",
]

NetState = Literal["pass", "warn", "fail", "unknown"]

_DAY: Final = 86_400.0
_HOUR: Final = 3_600.0
_REDACTED: Final = "[redacted]"


@dataclass(frozen=True, slots=True)
class NetFinding:
    """One network check's answer. ``state`` is one of ``pass``/``warn``/``fail``/``unknown``
    (the module docstring says which is which); ``evidence`` is one sanitised line that never
    holds a secret; ``duration_s`` is how long the check took, wall-clock."""

    state: NetState
    evidence: str
    duration_s: float


def _finding(
    state: NetState, evidence: str, started: float, secrets: Iterable[str | None] = ()
) -> NetFinding:
    # Secrets are scrubbed before sanitising: sanitising could split a secret (escapes,
    # truncation) into a form a plain replace would no longer find.
    for secret in secrets:
        if secret:
            evidence = evidence.replace(secret, _REDACTED)
    return NetFinding(state, sanitize_text(evidence), time.monotonic() - started)


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _span(seconds: float) -> str:
    """A duration as the engineer reads it on a certificate: whole days, rounded down (so a
    certificate "valid for 14 days" really has 14 full days left), hours under a day."""
    seconds = max(seconds, 0.0)
    if seconds >= _DAY:
        return _plural(math.floor(seconds / _DAY), "day")
    if seconds >= _HOUR:
        return _plural(math.floor(seconds / _HOUR), "hour")
    return "less than an hour"


# ------------------------------------------------------------------------------------- TLS

# OpenSSL X509_V_ERR_* codes (x509_vfy.h), stable across OpenSSL versions; Python exposes the
# number on SSLCertVerificationError.verify_code but names none of them.
_V_NOT_YET_VALID: Final = 9
_V_EXPIRED: Final = 10
_V_MISMATCH: Final = frozenset({62, 63, 64})  # hostname, email, IP address mismatch
_V_UNTRUSTED: Final = frozenset(
    {
        2,  # unable to get issuer certificate
        18,  # self-signed certificate
        19,  # self-signed certificate in certificate chain
        20,  # unable to get local issuer certificate
        21,  # unable to verify the first certificate
        27,  # certificate not trusted
    }
)


async def check_tls(
    url: str,
    *,
    min_days: float = 14,
    timeout: float = 5.0,
    now: Callable[[], float] = time.time,
    ca_file: str | None = None,
) -> NetFinding:
    """The certificate an https ``url`` presents, verified (chain and hostname) against the
    system trust store (plus certifi's) or only against ``ca_file`` when given.

    - pass: valid for at least ``min_days`` more; the evidence names the issuer and notAfter;
    - warn: valid but expiring within ``min_days``; also any ``http://`` URL ("not HTTPS");
    - fail: the host answered and its TLS is wrong — expired, not yet valid, hostname
      mismatch, untrusted chain (each named), any other failed verification or handshake
      (e.g. plain HTTP on the port) — or the URL is not http(s);
    - unknown: the host could not be reached (refused, unresolvable, unroutable, reset) or
      did not finish the handshake within ``timeout``.

    Expiry is judged against ``now()`` (injectable for tests and "will it still be valid
    on release day" questions). A certificate that fails verification is fetched a second
    time without verification, inside the same ``timeout``, only to read it: the evidence
    then says how long ago it expired, whom it is for, or who issued it.
    """
    started = time.monotonic()
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:
        return _finding("fail", f"not a valid URL: {exc}", started)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https"):
        return _finding("fail", f"not an https URL (scheme {scheme or 'missing'!r})", started)
    if not host:
        return _finding("fail", f"not a URL with a host: {url}", started)
    if scheme == "http":
        # Only the host is shown: a URL may carry credentials in its userinfo or query.
        return _finding("warn", f"not HTTPS: {host} is served over plain http", started)
    port = port_given or 443
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        verifying = client_ssl_context(ca_file if ca_file is not None else True)
    except (OSError, ValueError) as exc:
        # The CA bundle is this machine's configuration, not the server's fault.
        return _finding("unknown", f"cannot load CA file: {exc}", started)
    try:
        der = await _peer_certificate(host, port, verifying, deadline)
    except ssl.SSLCertVerificationError as exc:
        cert = await _read_unverified(host, port, deadline)
        state, evidence = _verification_failure(exc, cert, host, now())
        return _finding(state, evidence, started)
    except ssl.SSLError as exc:
        # Reached, but no TLS session could be agreed: the endpoint is broken, not absent.
        return _finding(
            "fail", f"TLS handshake with {where} failed: {describe_ssl_error(exc)}", started
        )
    except TimeoutError:
        return _finding("unknown", f"no TLS answer from {where} within {timeout:g}s", started)
    except OSError as exc:
        return _finding("unknown", f"cannot reach {where}: {_os_reason(exc)}", started)
    cert = _parse_der(der)
    if cert is None:
        return _finding("unknown", f"{where} sent no readable certificate", started)
    state, evidence = _judge_expiry(cert, now(), min_days)
    return _finding(state, evidence, started)


async def _peer_certificate(host: str, port: int, ctx: ssl.SSLContext, deadline: float) -> bytes:
    """The DER of the peer's leaf certificate after a handshake with ``ctx``; raises what the
    connection or handshake raised, TimeoutError at ``deadline``."""
    async with asyncio.timeout_at(deadline):
        _reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return der or b""
    finally:
        # Only the certificate was wanted; abort rather than wait for the peer's close_notify,
        # which a misbehaving server may never send.
        writer.transport.abort()


async def _read_unverified(host: str, port: int, deadline: float) -> x509.Certificate | None:
    """The certificate, fetched without verification, for the evidence only; None when the
    second connection fails or time has run out (the verification error is still reported)."""
    ctx = client_ssl_context(False)
    try:
        return _parse_der(await _peer_certificate(host, port, ctx, deadline))
    except (OSError, TimeoutError):
        return None


def _parse_der(der: bytes) -> x509.Certificate | None:
    if not der:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _judge_expiry(cert: x509.Certificate, at: float, min_days: float) -> tuple[NetState, str]:
    not_before = cert.not_valid_before_utc.timestamp()
    not_after = cert.not_valid_after_utc.timestamp()
    issuer = _issuer(cert)
    if at < not_before:
        return "fail", (
            f"not yet valid: starts in {_span(not_before - at)} "
            f"(notBefore {_stamp(cert.not_valid_before_utc)}); issuer {issuer}"
        )
    if at >= not_after:
        return "fail", _expired(cert, at)
    left = not_after - at
    until = f"(notAfter {_stamp(cert.not_valid_after_utc)}); issuer {issuer}"
    if left < min_days * _DAY:
        return "warn", f"expires in {_span(left)}, under the {min_days:g}-day minimum {until}"
    return "pass", f"valid for {_span(left)} more {until}"


def _expired(cert: x509.Certificate, at: float) -> str:
    ago = at - cert.not_valid_after_utc.timestamp()
    return (
        f"expired {_span(ago)} ago (notAfter {_stamp(cert.not_valid_after_utc)}); "
        f"issuer {_issuer(cert)}"
    )


def _verification_failure(
    exc: ssl.SSLCertVerificationError, cert: x509.Certificate | None, host: str, at: float
) -> tuple[NetState, str]:
    code = exc.verify_code
    message = exc.verify_message or describe_ssl_error(exc)
    if code == _V_EXPIRED:
        if cert is None:
            return "fail", "expired (the certificate could not be read back)"
        if at >= cert.not_valid_after_utc.timestamp():
            return "fail", _expired(cert, at)
        # The leaf is still in date, so it is an intermediate or the CA that ran out.
        return "fail", f"expired: a certificate in the chain has expired; issuer {_issuer(cert)}"
    if code == _V_NOT_YET_VALID:
        if cert is not None and at < cert.not_valid_before_utc.timestamp():
            start = cert.not_valid_before_utc
            return "fail", (
                f"not yet valid: starts in {_span(start.timestamp() - at)} "
                f"(notBefore {_stamp(start)})"
            )
        return "fail", "not yet valid: a certificate in the chain is not valid yet"
    if code in _V_MISMATCH:
        names = _subject_names(cert) if cert is not None else ""
        return "fail", (
            f"hostname mismatch: certificate is for {names}, not {host}"
            if names
            else f"hostname mismatch: certificate is not for {host}"
        )
    also = ""
    if cert is not None and at >= cert.not_valid_after_utc.timestamp():
        # OpenSSL reports the first error it meets; an untrusted and expired certificate
        # needs both fixed, so say both.
        also = f"; also expired {_span(at - cert.not_valid_after_utc.timestamp())} ago"
    issuer = f" (issuer {_issuer(cert)})" if cert is not None else ""
    if code in _V_UNTRUSTED:
        return "fail", f"untrusted chain: {message}{issuer}{also}"
    return "fail", f"certificate verify failed: {message}{issuer}{also}"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _issuer(cert: x509.Certificate) -> str:
    """The issuer as "CN=…, O=…" — what an engineer recognises — or the full RFC 4514 name
    when it has neither."""
    parts: list[str] = []
    for oid, label in ((NameOID.COMMON_NAME, "CN"), (NameOID.ORGANIZATION_NAME, "O")):
        for attribute in cert.issuer.get_attributes_for_oid(oid):
            value = attribute.value
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            parts.append(f"{label}={text}")
    return ", ".join(parts) if parts else (cert.issuer.rfc4514_string() or "(empty)")


def _subject_names(cert: x509.Certificate, limit: int = 3) -> str:
    """The names a certificate covers: its SANs (what verification uses), else its CN."""
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            value = attribute.value
            names.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit} more)" if len(names) > limit else shown


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"name does not resolve ({exc.strerror or exc})"
    # asyncio rewrites a refused connect as "Connect call failed ('h', p)", keeping errno:
    # the errno's own wording ("connection refused") is what the engineer needs.
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


# ------------------------------------------------------------------------------------- DNS

_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


async def check_dns(hostname: str, *, timeout: float = 3.0) -> NetFinding:
    """Whether ``hostname`` resolves, through the event loop's getaddrinfo (so /etc/hosts,
    nsswitch and the system resolver answer, exactly as they will for the services).

    - pass: it resolves; the evidence lists the first few distinct addresses;
    - fail: the name does not resolve (EAI_NONAME, or EAI_NODATA: exists without an
      address), is not a valid hostname, or lies under ``.invalid``, which RFC 6761 reserves
      to never resolve (answered without asking the resolver);
    - unknown: no answer within ``timeout``, or the resolver itself failed (EAI_AGAIN,
      EAI_FAIL, anything else) — a broken resolver says nothing about the record.

    getaddrinfo runs in the loop's default executor; a call past ``timeout`` is abandoned,
    not killed (the C library gives no way to cancel it), and finishes in its thread.
    """
    started = time.monotonic()
    problem = _hostname_problem(hostname)
    if problem is not None:
        return _finding("fail", f"not a valid hostname {hostname!r}: {problem}", started)
    if hostname.rstrip(".").lower().rsplit(".", 1)[-1] == "invalid":
        return _finding(
            "fail", f"{hostname} does not resolve (.invalid is reserved, RFC 6761)", started
        )
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        return _finding("unknown", f"no answer from the resolver within {timeout:g}s", started)
    except socket.gaierror as exc:
        state, evidence = _resolver_error(hostname, exc)
        return _finding(state, evidence, started)
    except UnicodeError as exc:
        return _finding("fail", f"not a valid hostname {hostname!r}: {exc}", started)
    except OSError as exc:
        return _finding("unknown", f"resolver failed for {hostname}: {exc}", started)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        return _finding("fail", f"{hostname} resolves to no address", started)
    shown = ", ".join(addresses[:3])
    more = f" (+{len(addresses) - 3} more)" if len(addresses) > 3 else ""
    return _finding("pass", f"{hostname} resolves to {shown}{more}", started)


def _hostname_problem(hostname: str) -> str | None:
    """Why ``hostname`` cannot be a host name, or None. IP literals are accepted (they
    "resolve" to themselves); non-ASCII names are checked in their IDNA form."""
    if not hostname:
        return "empty"
    try:
        ipaddress.ip_address(hostname)
        return None
    except ValueError:
        pass
    ascii_name = hostname
    if not hostname.isascii():
        # Only for non-ASCII names: the codec's own errors ("label empty or too long") are
        # vaguer than the label check below.
        try:
            ascii_name = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            return "not encodable as IDNA"
    name = ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
    if len(name) > 253:
        return "longer than 253 characters"
    bad = next((label for label in name.split(".") if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        return f"bad label {bad!r}" if bad else "empty label"
    return None


def _resolver_error(hostname: str, exc: socket.gaierror) -> tuple[NetState, str]:
    code = exc.errno
    if code == socket.EAI_NONAME:
        return "fail", f"{hostname} does not resolve (no such name)"
    if code == getattr(socket, "EAI_NODATA", None):
        return "fail", f"{hostname} does not resolve (the name has no address records)"
    if code == socket.EAI_AGAIN:
        return "unknown", f"resolver temporarily failed for {hostname} (EAI_AGAIN)"
    return "unknown", f"resolver failed for {hostname}: {exc.strerror or exc}"


# ----------------------------------------------------------------------------------- images

# The grammar of github.com/distribution/reference (what docker and containerd parse), which
# the OCI distribution spec's repository-name and tag rules match.
_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY: Final = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT: Final = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN: Final = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)
_TAG: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# The OCI image spec's registered algorithms, with their exact encoded lengths.
_DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_NAME_MAX: Final = 255

# Every manifest type a deployment may point at: without them a registry may answer 404 for
# an image it only has as an OCI index, or convert it to a schema-1 manifest.
_MANIFEST_ACCEPT: Final = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# RFC 6750's b64token: a token outside it could not be sent as a header, and the HTTP
# library's error would quote the header value, secret and all.
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_CHALLENGE_PARAM: Final = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^\s,]*))')


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference. ``domain`` is None when the reference names none (docker
    would pull it from Docker Hub); ``repository`` never includes the domain."""

    domain: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def manifest_reference(self) -> str:
        """What the registry is asked for: the digest when pinned (that is what gets
        pulled, whatever the tag says), else the tag, else "latest" (docker's default)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        name = f"{self.domain}/{self.repository}" if self.domain else self.repository
        return (
            name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")
        )


def parse_image_reference(reference: str) -> ImageRef:
    """``[registry/]repository[:tag][@sha256:…]`` parsed; ValueError says what is wrong.

    The first path component is the registry when it looks like a host (has a "." or ":",
    is "localhost", or has upper case), as docker decides. The repository is lower case,
    the tag is ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``, the digest sha256 or sha512 in hex.
    """
    if not reference:
        raise ValueError("empty")
    if reference != reference.strip() or any(ch.isspace() for ch in reference):
        raise ValueError("contains whitespace")
    name_tag, at, digest = reference.partition("@")
    if at:
        if not _DIGEST.fullmatch(digest):
            raise ValueError("digest must be sha256:<64 hex> or sha512:<128 hex>, lower case")
    else:
        digest = ""
    # A ":" after the last "/" starts the tag; one before it is a registry port.
    name, tag = name_tag, ""
    colon = name_tag.rfind(":")
    if colon > name_tag.rfind("/"):
        name, tag = name_tag[:colon], name_tag[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(
                f"tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
            )
    if not name:
        raise ValueError("no repository name")
    if len(name) > _NAME_MAX:
        raise ValueError(f"name longer than {_NAME_MAX} characters")
    domain: str | None = None
    first, slash, rest = name.partition("/")
    if slash and (
        any(ch in first for ch in ".:") or first == "localhost" or first != first.lower()
    ):
        if not _DOMAIN.fullmatch(first):
            raise ValueError(f"registry {first!r} is not a valid host[:port]")
        domain, name = first, rest
        if not name:
            raise ValueError("no repository name after the registry")
    if not _REPOSITORY.fullmatch(name):
        if name != name.lower():
            raise ValueError(f"repository {name!r} must be lower case")
        raise ValueError(
            f"repository {name!r} must be /-separated components of [a-z0-9] "
            "joined by '.', '_', '__' or '-'"
        )
    return ImageRef(domain, name, tag or None, digest or None)


async def check_image(
    reference: str,
    *,
    registry_url: str | None,
    timeout: float = 5.0,
    token: str | None = None,
) -> NetFinding:
    """Whether ``reference`` is a well-formed image reference and, when ``registry_url`` is
    given, whether that registry has it (OCI distribution API: ``HEAD /v2/<repo>/manifests/
    <tag or digest>``; the reference's own registry part is not contacted, ``registry_url``
    is where images are looked up).

    - pass: the registry answered 200 (the evidence shows Docker-Content-Digest), or the
      reference is well-formed and no registry is configured;
    - fail: the reference is malformed, or the registry answered 404 ("not in the registry");
    - unknown: the registry could not be reached, timed out, answered 5xx or anything else
      that says nothing about the image (401/403 after authentication, 429, …).

    ``token`` is sent as ``Authorization: Bearer``. On a 401 with a ``Bearer realm=…``
    challenge the anonymous token flow runs once (GET realm?service=…&scope=repository:
    <repo>:pull, with no credentials: the realm is named by the server and must not be sent
    the caller's token) and the HEAD is retried with the token it returns. Neither token ever
    appears in the evidence, and nothing is raised.
    """
    started = time.monotonic()
    try:
        ref = parse_image_reference(reference)
    except ValueError as exc:
        # The reason first: a long reference would push it past the one-line limit.
        return _finding("fail", f"malformed image reference: {exc} (in {reference!r})", started)
    if registry_url is None:
        return _finding("pass", f"{ref} is well-formed (no registry configured)", started)
    if token is not None and not _BEARER_TOKEN.fullmatch(token):
        # Not quoted: a token with a typo in it is still mostly the secret.
        return _finding("unknown", "the registry token is not a valid bearer token", started)
    try:
        base = httpx.URL(registry_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise httpx.InvalidURL("not an http(s) URL")
    except httpx.InvalidURL:
        return _finding("unknown", "the registry URL is not a valid http(s) URL", started)
    # Host and port only: the configured URL may carry credentials in its userinfo.
    where = f"{base.host}:{base.port}" if base.port else base.host
    # A password in the registry URL's userinfo is as secret as the token.
    secrets: list[str | None] = [token, base.password or None]
    try:
        async with asyncio.timeout(timeout):
            state, evidence = await _lookup(base, ref, token, timeout, secrets)
    except (TimeoutError, httpx.TimeoutException):
        state, evidence = "unknown", f"registry {where} did not answer within {timeout:g}s"
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        state, evidence = "unknown", f"cannot reach registry {where}: {reason}"
    return _finding(state, evidence, started, secrets)


async def _lookup(
    base: httpx.URL, ref: ImageRef, token: str | None, timeout: float, secrets: list[str | None]
) -> tuple[NetState, str]:
    url = f"{base}/v2/{ref.repository}/manifests/{ref.manifest_reference}"
    headers = {"Accept": _MANIFEST_ACCEPT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(
        verify=client_ssl_context(True),
        timeout=httpx.Timeout(timeout),
        # Registries redirect to mirrors and CDNs; httpx drops Authorization on a redirect to
        # another origin, so a token never follows one.
        follow_redirects=True,
        # Same reasoning as the health prober: no proxy or SSL_CERT_FILE from the shell.
        trust_env=False,
    ) as client:
        response = await client.head(url, headers=headers)
        if response.status_code == 401:
            challenge = _bearer_challenge(response.headers.get_list("www-authenticate"))
            if challenge is not None:
                anonymous = await _anonymous_token(client, challenge, ref.repository)
                if isinstance(anonymous, tuple):
                    return anonymous
                secrets.append(anonymous)
                headers["Authorization"] = f"Bearer {anonymous}"
                response = await client.head(url, headers=headers)
    return _judge_manifest(response.status_code, response.headers, ref, token is not None)


def _bearer_challenge(values: list[str]) -> dict[str, str] | None:
    """The parameters of the first ``Bearer`` challenge among WWW-Authenticate values."""
    for value in values:
        scheme, _, params = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            continue
        found = {
            m[1].lower(): m[2] if m[2] is not None else m[3]
            for m in _CHALLENGE_PARAM.finditer(params)
        }
        if found.get("realm"):
            return found
    return None


async def _anonymous_token(
    client: httpx.AsyncClient, challenge: dict[str, str], repository: str
) -> str | tuple[NetState, str]:
    """A pull token from the challenge's realm, or the finding to report instead."""
    realm = httpx.URL(challenge["realm"])
    if realm.scheme not in ("http", "https") or not realm.host:
        return "unknown", "registry's Bearer challenge names no usable token realm"
    params = {"scope": f"repository:{repository}:pull"}
    if challenge.get("service"):
        params["service"] = challenge["service"]
    response = await client.get(realm, params=params)
    if response.status_code != 200:
        return "unknown", (
            f"registry requires credentials: anonymous token refused ({response.status_code})"
        )
    try:
        body = json.loads(response.content)
    except ValueError:
        return "unknown", "registry's token endpoint answered something other than JSON"
    # Docker's token spec names it "token"; OAuth2-style servers send "access_token".
    issued = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(issued, str) or not _BEARER_TOKEN.fullmatch(issued):
        return "unknown", "registry's token endpoint answered without a usable token"
    return issued


def _judge_manifest(
    status: int, headers: httpx.Headers, ref: ImageRef, had_token: bool
) -> tuple[NetState, str]:
    wanted = (
        f"{ref.repository}:{ref.manifest_reference}"
        if not ref.digest
        else (f"{ref.repository}@{ref.digest}")
    )
    if status == 200:
        digest = headers.get("docker-content-digest")
        return "pass", (
            f"{wanted} found ({digest})" if digest else f"{wanted} found (no digest header)"
        )
    if status == 404:
        return "fail", f"{wanted} is not in the registry"
    if status == 401:
        who = "refused the token" if had_token else "requires credentials"
        return "unknown", f"registry {who} (401) for {ref.repository}"
    if status == 403:
        return "unknown", f"registry denied access (403) to {ref.repository}"
    return "unknown", f"registry answered {status} for {wanted}"
