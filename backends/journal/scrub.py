"""What keeps secrets out of the journal (and anything else bva writes): secret-named keys are
dropped, URL credentials, ``password=`` pairs, secret query parameters and bearer tokens are
masked, and an exception becomes one masked ``refused:``/``failed:`` line.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from typing import Any, cast

from backends.config.values import mask_dsn
from backends.errors import ReadOnlyError, RolloutRefused

MAX_TEXT = 1000  # characters kept of any one string (action, target, result, detail value)
_MAX_RESULT_REASON = 300  # characters of an exception message in "failed: ..."
_MAX_DEPTH = 6  # nesting kept in details; deeper values become their (masked) text
_MAX_ITEMS = 100  # entries kept per dict/list in details


_SECRET_KEY = re.compile(
    r"pass(?:word|wd|phrase)|pwd|token|secret|dsn|credential|api[_-]?key|private[_-]?key"
    r"|access[_-]?key|auth(?:orization)?$|cookie|session[_-]?id|bearer",
    re.IGNORECASE,
)
# URL userinfo: "scheme://user:pass@" is handled by mask_dsn; a lone "https://TOKEN@host" is
# how tokens ride in clone URLs, so an http(s) userinfo without a password is masked too.
_HTTP_LONE_USERINFO = re.compile(r"(?P<scheme>https?://)(?P<user>[^/?#\s:@]+)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][^=&;#\s]*(?:pass(?:word|wd)|pwd|token|secret|signature|sig|api[_-]?key"
    r"|access[_-]?key|auth)[^=&;#\s]*=)(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<kind>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def scrub_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with URL credentials, ``password=`` values, secret query parameters and
    bearer tokens masked as ``***``, cut to ``limit`` characters."""
    masked = mask_dsn(text)
    masked = _HTTP_LONE_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", masked)
    masked = _SECRET_QUERY.sub(lambda m: f"{m.group('key')}***", masked)
    masked = _BEARER.sub(lambda m: f"{m.group('kind')} ***", masked)
    if len(masked) > limit:
        masked = masked[: limit - 1] + "…"
    return masked


def scrub_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of ``details`` with secret-named keys dropped (at any depth) and every
    string masked. Values JSON cannot hold become their text; non-finite floats too."""
    if not details:
        return {}
    return cast(dict[str, Any], _scrub_value(dict(details), 0))


def _scrub_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return scrub_text(str(value))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            if is_secret_key(name):
                continue
            if len(out) >= _MAX_ITEMS:
                break
            out[scrub_text(name, 200)] = _scrub_value(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_scrub_value(item, depth + 1) for item in list(items)[:_MAX_ITEMS]]
    return scrub_text(str(value))


def one_line(text: str, limit: int) -> str:
    return scrub_text(" ".join(text.split()), limit)


def failure_text(exc: BaseException) -> str:
    """The "after" result for an action that raised: ``refused: ...`` for a refusal by the
    rules or by read-only mode, ``failed: ...`` otherwise; one masked line."""
    if isinstance(exc, asyncio.CancelledError):
        return "failed: cancelled"
    if isinstance(exc, KeyboardInterrupt):
        return "failed: interrupted"
    message = one_line(str(exc), _MAX_RESULT_REASON) or type(exc).__name__
    kind = "refused" if isinstance(exc, ReadOnlyError | RolloutRefused) else "failed"
    return f"{kind}: {message}"
