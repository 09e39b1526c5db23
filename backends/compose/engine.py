"""Where the Docker Engine is, and one client to it.

The Engine is found as the docker CLI finds it: ``DOCKER_HOST`` first, then the docker context
(``DOCKER_CONTEXT``, else the CLI config's ``currentContext``), then the platform file's
``docker_host``, then the default socket. The ``docker`` package is imported on first use, so a
console paints its first frame without paying for it. Every call is blocking: the adapter runs
them in worker threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from backends.errors import BvaError, Conflict, NotFound, SourceUnavailable
from backends.sanitize import sanitize_text

DEFAULT_HOST = "unix:///var/run/docker.sock"
T = TypeVar("T")


def _context_host(name: str, config_dir: Path) -> str | None:
    """The Engine endpoint of a docker context (the CLI keeps it under contexts/meta/<sha256>)."""
    if name == "default":
        return None
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    try:
        data = json.loads((meta / "meta.json").read_text())
    except (OSError, ValueError):
        raise BvaError(f"docker context {name!r} not found in {config_dir}") from None
    host = (data.get("Endpoints") or {}).get("docker", {}).get("Host")
    if not isinstance(host, str) or not host:
        raise BvaError(f"docker context {name!r} has no Engine endpoint")
    return host


def resolve_host(platform_host: str | None, platform_context: str | None = None) -> str:
    """The Engine to talk to, in the docker CLI's order of precedence."""
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    context = os.environ.get("DOCKER_CONTEXT") or platform_context
    if not context:
        try:
            context = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError):
            context = None
    if context:
        host = _context_host(str(context), config_dir)
        if host:
            return host
    return platform_host or DEFAULT_HOST


def one_line(exc: BaseException, limit: int = 240) -> str:
    """A docker SDK error as one line a human can act on."""
    explanation = getattr(exc, "explanation", None)
    text = explanation if isinstance(explanation, str) and explanation else str(exc)
    if isinstance(explanation, bytes):
        text = explanation.decode("utf-8", "replace")
    return sanitize_text(" ".join(text.split()), limit)


class Engine:
    """A lazily made ``docker.APIClient`` (raw JSON: we convert to models ourselves)."""

    def __init__(self, host: str, *, timeout: float = 30.0) -> None:
        self.host = host
        self.timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()

    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                import docker

                self._api = docker.APIClient(base_url=self.host, timeout=self.timeout)
            return self._api

    def fresh(self, timeout: float | None = None) -> Any:
        """A client of its own (an event stream or a log follow holds its connection)."""
        import docker

        return docker.APIClient(base_url=self.host, timeout=timeout)

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(api)``, turning the SDK's errors into bva's: NotFound for a 404, Conflict
        for a 409, SourceUnavailable when the Engine cannot be reached."""
        import docker.errors
        import requests.exceptions

        try:
            return fn(self.api())
        except docker.errors.NotFound as exc:
            raise NotFound(f"{what}: {one_line(exc)}") from None
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise Conflict(f"{what}: {one_line(exc)}") from None
            raise BvaError(f"{what}: {one_line(exc)}") from None
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise SourceUnavailable(
                f"cannot reach the Docker Engine at {self.host}: {one_line(exc, 160)}"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise SourceUnavailable(
                f"the Docker Engine at {self.host}: {one_line(exc, 160)}"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None
