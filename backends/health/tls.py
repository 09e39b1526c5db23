"""TLS helpers for the health prober: the client context, certificate expiry, error wording."""

from __future__ import annotations

import math
import os
import re
import ssl

__all__ = ["cert_days_left", "client_ssl_context", "describe_ssl_error"]

_SECONDS_PER_DAY = 86_400.0
_SOURCE_SUFFIX = re.compile(r"\s*\(_ssl\.c:\d+\)\s*$")


def client_ssl_context(verify: bool | str) -> ssl.SSLContext:
    """``True``: the system trust store plus certifi's (internal CAs are usually installed in
    the system store, public ones are always in certifi's). ``False``: encrypt but check
    nothing. A str: a CA bundle file or a directory of hashed CA certificates."""
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if verify is True:
        ctx = ssl.create_default_context()
        try:
            import certifi
        except ImportError:  # pragma: no cover - httpx depends on certifi
            return ctx
        ctx.load_verify_locations(cafile=certifi.where())
        return ctx
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def cert_days_left(ssl_object: object, now: float) -> int | None:
    """Whole days until the peer certificate's notAfter (negative once expired), or None.

    ``getpeercert()`` is empty when verification is off, so the DER form is parsed with
    ``cryptography`` when it is installed; the dict form is the fallback without it.
    """
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    not_after = _not_after_from_der(ssl_object.getpeercert(binary_form=True))
    if not_after is None:
        info = ssl_object.getpeercert()
        text = info.get("notAfter") if info else None
        if not isinstance(text, str):
            return None
        try:
            not_after = float(ssl.cert_time_to_seconds(text))
        except ValueError:
            return None
    return math.floor((not_after - now) / _SECONDS_PER_DAY)


def _not_after_from_der(der: bytes | None) -> float | None:
    if not der:
        return None
    try:
        from cryptography import x509
    except ImportError:
        return None
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except ValueError:
        return None


def describe_ssl_error(exc: ssl.SSLError) -> str:
    """A short reason: "certificate verify failed: self-signed certificate",
    "wrong version number" (plain HTTP on a TLS port), …"""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.replace("_", " ").lower()
    text = _SOURCE_SUFFIX.sub("", str(exc))
    return text or type(exc).__name__
