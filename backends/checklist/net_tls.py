"""The checklist's TLS check: the certificate an https URL presents, verified and judged
for expiry. The state vocabulary is the one ``backends.checklist.net`` describes."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from backends.checklist.net import NetFinding, NetState, finding
from backends.health.tls import client_ssl_context, describe_ssl_error

__all__ = ["check_tls"]

_DAY: Final = 86_400.0
_HOUR: Final = 3_600.0


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
        return finding("fail", f"not a valid URL: {exc}", started)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https"):
        return finding("fail", f"not an https URL (scheme {scheme or 'missing'!r})", started)
    if not host:
        return finding("fail", f"not a URL with a host: {url}", started)
    if scheme == "http":
        # Only the host is shown: a URL may carry credentials in its userinfo or query.
        return finding("warn", f"not HTTPS: {host} is served over plain http", started)
    port = port_given or 443
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        verifying = client_ssl_context(ca_file if ca_file is not None else True)
    except (OSError, ValueError) as exc:
        # The CA bundle is this machine's configuration, not the server's fault.
        return finding("unknown", f"cannot load CA file: {exc}", started)
    try:
        der = await _peer_certificate(host, port, verifying, deadline)
    except ssl.SSLCertVerificationError as exc:
        cert = await _read_unverified(host, port, deadline)
        state, evidence = _verification_failure(exc, cert, host, now())
        return finding(state, evidence, started)
    except ssl.SSLError as exc:
        # Reached, but no TLS session could be agreed: the endpoint is broken, not absent.
        return finding(
            "fail", f"TLS handshake with {where} failed: {describe_ssl_error(exc)}", started
        )
    except TimeoutError:
        return finding("unknown", f"no TLS answer from {where} within {timeout:g}s", started)
    except OSError as exc:
        return finding("unknown", f"cannot reach {where}: {_os_reason(exc)}", started)
    cert = _parse_der(der)
    if cert is None:
        return finding("unknown", f"{where} sent no readable certificate", started)
    state, evidence = _judge_expiry(cert, now(), min_days)
    return finding(state, evidence, started)


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
