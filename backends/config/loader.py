"""The platform file: where it is found, how it is loaded, and how its errors read.

Every failure becomes a ``ConfigError`` whose text is one line naming the file, the key and the
problem, so the CLI can print it and exit 2 without a traceback. Rejected values are shown only
where they cannot be secrets, and exceptions are raised ``from None`` so no chained pydantic
error (which carries the raw input) travels with them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from backends.config.models import (
    DatabaseConfig,
    EnvironmentConfig,
    MetricsConfig,
    PlatformConfig,
    ServiceConfig,
)
from backends.config.rollout import RolloutConfig, RolloutOverride, Thresholds
from backends.config.values import (
    ConfigError,
    LocatedError,
    SecretRef,
    format_duration,
    mask_dsn,
    parse_duration,
    quote,
    resolve_secret,
)

__all__ = [
    "ConfigError",
    "DatabaseConfig",
    "EnvironmentConfig",
    "MetricsConfig",
    "PlatformConfig",
    "RolloutConfig",
    "RolloutOverride",
    "SecretRef",
    "ServiceConfig",
    "Thresholds",
    "builtin_platform_path",
    "format_duration",
    "load_platform",
    "mask_dsn",
    "parse_duration",
    "resolve_config_path",
    "resolve_secret",
]

CONFIG_ENV_VAR = "BVA_CONFIG"
CONFIG_FILE_NAME = "bva.toml"


def builtin_platform_path() -> Path:
    return Path(__file__).resolve().parent / "platforms" / "bharathva.toml"


def resolve_config_path(cli_path: str | None) -> Path:
    """--config FILE, else $BVA_CONFIG, else ./bva.toml, else the user config dir, else built-in.

    Only explicitly named files must exist; the implicit places are simply skipped.
    """
    explicit = cli_path or os.environ.get(CONFIG_ENV_VAR) or None
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ConfigError(f"{path}: file not found")
        return path
    local = Path.cwd() / CONFIG_FILE_NAME
    if local.is_file():
        return local
    user = Path(platformdirs.user_config_dir("bva")) / CONFIG_FILE_NAME
    if user.is_file():
        return user
    return builtin_platform_path()


def load_platform(path: Path) -> PlatformConfig:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{path}: {line}" for line in describe_validation_error(exc)]
        raise ConfigError(problems[0], problems) from None


# --- error wording -------------------------------------------------------------------------

_EXPECTED = {
    "int_type": "integer",
    "int_parsing": "integer",
    "int_from_float": "integer",
    "float_type": "number",
    "float_parsing": "number",
    "string_type": "string",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "list_type": "array",
    "dict_type": "table",
    "model_type": "table",
    "model_attributes_type": "table",
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One ``key.path: problem`` line per pydantic error."""
    lines: list[str] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedError):
            for sub_loc, message in cause.problems:
                lines.append(_line((*err["loc"], *sub_loc), message))
        else:
            lines.append(_line(err["loc"], _problem(err)))
    return lines


def _line(loc: tuple[str | int, ...], message: str) -> str:
    path = format_loc(loc)
    return f"{path}: {message}" if path else message


def format_loc(loc: tuple[str | int, ...]) -> str:
    """``("services", 2, "health", 0)`` -> ``services[2].health[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue  # pydantic's marker for "the dict key itself"; the key is already named
        else:
            key = part if _BARE_KEY.fullmatch(part) else quote(part)
            out += f".{key}" if out else key
    return out


def _problem(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind == "extra_forbidden":
        key = err["loc"][-1] if err["loc"] else "?"
        return f"unknown key {quote(str(key))}"
    if kind == "missing":
        return "field required"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_describe_input(err['input'])}"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = err["input"]
        shown = quote(got) if isinstance(got, str) else _describe_input(got)
        return f"must be one of: {', '.join(allowed)} (got {shown})"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        limit = ctx.get(key)
        shown = f"{limit:g}" if isinstance(limit, int | float) else str(limit)
        return f"must be {op} {shown}"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must have at least {n} items"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return str(err["msg"])


def _describe_input(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {quote(mask_dsn(value))}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return "date/time"
    return type(value).__name__
