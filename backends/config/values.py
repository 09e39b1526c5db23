"""Value types of the platform file: durations, names, URLs and secret references.

Kept apart from the models so adapters can use ``parse_duration``, ``resolve_secret`` and
``mask_dsn`` without pulling in the whole schema.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field


class ConfigError(Exception):
    """A problem with the platform file, as one line: ``<file>: <key.path>: <what is wrong>``.

    ``errors`` holds every problem found (same format, one per entry) for ``bva config check``.
    """

    def __init__(self, message: str, errors: Sequence[str] | None = None) -> None:
        message = _one_line(message)
        super().__init__(message)
        self.message = message
        self.errors: list[str] = [_one_line(e) for e in errors] if errors else [message]


class LocatedError(ValueError):
    """A validator's complaint about a key below the model that raised it.

    pydantic places a model validator's error at the model itself; the loader appends ``loc``
    so the message names the exact key (``services[3].name``, not ``services``).
    """

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__(problems[0][1] if problems else "invalid")
        self.problems = list(problems)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def quote(value: str, limit: int = 60) -> str:
    """Show a value from the file safely: escaped control characters, bounded length."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'


# --- durations ---------------------------------------------------------------------------

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number (already seconds) or a string like ``90s``, ``1h30m``, ``250ms``."""
    if isinstance(value, bool):
        raise ValueError(
            "bad duration: expected seconds or a string like 90s, 5m, 1h, not a boolean"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    else:
        raise ValueError("bad duration: expected seconds or a string like 90s, 5m, 1h")
    if not math.isfinite(seconds) or seconds < 0:
        shown = quote(value) if isinstance(value, str) else repr(value)
        raise ValueError(f"bad duration {shown}: must be a finite number >= 0")
    return seconds


def _parse_duration_text(text: str) -> float:
    if not text:
        raise ValueError('bad duration "": expected seconds or a string like 90s, 5m, 1h30m')
    if _PLAIN_NUMBER.fullmatch(text):
        return float(text)
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(
                f"bad duration {quote(text)}: expected seconds or a string like 90s, 5m, 1h30m"
            )
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total


def format_duration(seconds: float) -> str:
    """The short form people write: 3600 -> "1h", 5400 -> "1h30m", 0.25 -> "250ms"."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts) or "0s"


def _duration(value: object) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError("bad duration: expected seconds or a string like 90s, 5m, 1h30m")


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]


# --- names -------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ENV_NAME = re.compile(r"[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?")


def check_dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"bad name {quote(value)}: must be a DNS-1123 label "
            '(a-z, 0-9 and "-", at most 63 characters, alphanumeric at both ends)'
        )
    return value


def check_dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"bad name {quote(value)}: must be a DNS-1123 subdomain "
            '(a-z, 0-9, "-" and ".", alphanumeric at both ends)'
        )
    return value


def check_environment_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"bad environment name {quote(value)}: "
            'use a-z, 0-9, "-" and "_" (at most 63 characters, alphanumeric at both ends)'
        )
    return value


def check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(check_dns_subdomain)]


# --- URLs --------------------------------------------------------------------------------


def check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host; credentials in it count as an inline secret."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError:
        ok = False
    if not ok or any(ch.isspace() for ch in value):
        raise ValueError(f"bad URL {quote(mask_dsn(value))} (expected http:// or https://)")
    if parts.password is not None:
        raise ValueError(
            "inline secret not allowed in a URL; reference it with env:NAME or file:PATH"
        )
    return value


def check_path_or_url(value: str) -> str:
    if value.startswith("/") and not any(ch.isspace() for ch in value):
        return value
    if value.startswith(("http://", "https://")):
        return check_http_url(value)
    raise ValueError(
        f'bad URL {quote(mask_dsn(value))} (expected a path starting with "/" or an http(s) URL)'
    )


HttpUrl = Annotated[str, AfterValidator(check_http_url)]
PathOrUrl = Annotated[str, AfterValidator(check_path_or_url)]


# --- secrets -----------------------------------------------------------------------------

INLINE_SECRET = "inline secret not allowed; use env:NAME or file:PATH"
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_secret_ref(value: str) -> str:
    """Accept only a reference; never echo the value, which may be a password."""
    if value.startswith("env:"):
        if _ENV_VAR.fullmatch(value[4:]):
            return value
        raise ValueError("bad secret reference: env:NAME needs NAME like [A-Za-z_][A-Za-z0-9_]*")
    if value.startswith("file:"):
        if value[5:].strip() and value[5:].isprintable():
            return value
        raise ValueError("bad secret reference: file:PATH needs a path")
    raise ValueError(INLINE_SECRET)


SecretRef = Annotated[str, AfterValidator(check_secret_ref)]


def resolve_secret(ref: str) -> str:
    """The secret a reference points to (trailing newline removed). Errors name only the ref."""
    try:
        check_secret_ref(ref)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    kind, _, target = ref.partition(":")
    if kind == "env":
        value = os.environ.get(target)
        if value is None:
            raise ConfigError(f"{ref}: environment variable {target} is not set")
    else:
        path = Path(target).expanduser()
        try:
            value = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{ref}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{ref}: cannot read: {reason}") from None
    value = value.rstrip("\r\n")
    if not value:
        raise ConfigError(f"{ref}: is empty")
    return value


_URL_AUTHORITY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<auth>[^/?#\s]*)")
_KV_PASSWORD = re.compile(
    r"(?P<key>\b[A-Za-z_]*(?:password|passwd|pwd))(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;]*)",
    re.IGNORECASE,
)


def _mask_authority(match: re.Match[str]) -> str:
    auth = match.group("auth")
    if "@" not in auth:
        return match.group(0)
    userinfo, host = auth.rsplit("@", 1)
    if ":" not in userinfo:
        return match.group(0)
    user = userinfo.split(":", 1)[0]
    return f"{match.group('scheme')}{user}:***@{host}"


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (URL userinfo and ``password=`` forms)."""
    masked = _URL_AUTHORITY.sub(_mask_authority, dsn)
    return _KV_PASSWORD.sub(lambda m: f"{m.group('key')}{m.group('eq')}***", masked)
