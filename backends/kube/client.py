"""Loading the ``kubernetes`` client and turning its failures into one-line bva errors.

Importing ``kubernetes`` costs ~0.4 s, so nothing here imports it at module level: the
adapter calls ``load_client`` from a worker thread on first use, and ``map_error`` only
touches the package once an exception from it already exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

from backends.errors import BvaError, Conflict, NotFound, SourceUnavailable

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True, slots=True)
class KubeClient:
    """The loaded client: typed ``Any`` because we only use it to fetch raw JSON."""

    api_client: Any
    core: Any
    apps: Any
    server: str
    coordination: Any = None
    autoscaling: Any = None

    def close(self) -> None:
        self.api_client.close()


# KubeClient's API fields and the client classes behind them.
_APIS = {
    "core": "CoreV1Api",
    "apps": "AppsV1Api",
    "coordination": "CoordinationV1Api",
    "autoscaling": "AutoscalingV2Api",
}


def load_client(kubeconfig: str | None, context: str | None) -> KubeClient:
    """Blocking: import ``kubernetes`` and build a client from a kubeconfig (or in-cluster)."""
    try:
        import urllib3
        from kubernetes import client
        from kubernetes import config as kube_config
    except ImportError as exc:  # pragma: no cover - a packaging error, not a user error
        raise BvaError(f"the kubernetes client is not installed: {exc}") from exc

    cfg = client.Configuration()
    config: Any = kube_config  # its loaders are unannotated
    try:
        in_cluster = (
            kubeconfig is None
            and context is None
            and "KUBERNETES_SERVICE_HOST" in os.environ
            and not os.environ.get("KUBECONFIG")
            and not os.path.exists(os.path.expanduser("~/.kube/config"))
        )
        if in_cluster:
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(
                config_file=kubeconfig,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
    except Exception as exc:  # ConfigException, OSError, YAML errors: all mean "bad config"
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise BvaError(f"kubeconfig {where}: {_first_line(exc)}") from exc
    # urllib3's default retries re-send a timed-out GET three times (4x the wait) and would
    # hide an outage; retry only connects, which never reached the server.
    cfg.retries = urllib3.Retry(total=2, connect=2, read=0, redirect=0, status=0, other=0)
    api_client = client.ApiClient(cfg)
    apis = {field: getattr(client, name)(api_client) for field, name in _APIS.items()}
    return KubeClient(api_client=api_client, server=str(cfg.host), **apis)


def preload() -> None:
    """Blocking: import the API classes ``load_client`` builds (about a second: the client
    loads its models lazily), so that a process can pay for it before it is needed."""
    with contextlib.suppress(ImportError):
        from kubernetes import client, config  # noqa: F401

        for name in _APIS.values():
            getattr(client, name)


def read_json(response: Any) -> Any:
    """A ``_preload_content=False`` response's JSON body; the connection returns to the pool."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def interrupt(response: Any) -> None:
    """Unblock a thread reading a streaming ``response`` (a watch, a log follow): shut the
    socket down (urllib3 >= 2.3), else close it."""
    try:
        response.shutdown()
    except Exception:
        with contextlib.suppress(Exception):
            response.close()


class StreamHandle:
    """The streaming response a thread is reading (a watch, a log follow), so another thread
    can cut it short: ``stop`` sets ``stopped`` and unblocks the read at once."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            response = self._response
        if response is not None:
            interrupt(response)

    def hold(self, response: Any) -> None:
        """``response`` is the one to cut from now on; cut at once if ``stop`` came first."""
        with self._lock:
            self._response = response
        if self.stopped.is_set():
            interrupt(response)

    def release(self) -> None:
        with self._lock:
            self._response = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _status_message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, when the server sent one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip().splitlines()[0][:200]
    if isinstance(status, dict):
        return str(status.get("message") or status.get("reason") or "")
    return ""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a client ApiException, None for anything else."""
    api_exc = _api_exception_type()
    if api_exc is not None and isinstance(exc, api_exc):
        status = getattr(exc, "status", None)
        return status if isinstance(status, int) else None
    return None


def _api_exception_type() -> type[BaseException] | None:
    module = sys.modules.get("kubernetes.client.exceptions")
    exc_type = getattr(module, "ApiException", None) if module else None
    return exc_type if isinstance(exc_type, type) else None


def map_error(exc: BaseException, server: str) -> BvaError:
    """Any failure of the client -> a BvaError subclass with one line naming the server."""
    if isinstance(exc, BvaError):
        return exc
    status = http_status(exc)
    if status is not None:
        message = _status_message(getattr(exc, "body", None)) or str(
            getattr(exc, "reason", "") or ""
        )
        if status == 0:  # the client's wrapper for TLS failures
            return SourceUnavailable(f"Kubernetes API at {server}: {_first_line(exc)}")
        if status == 404:
            return NotFound(message or f"not found (HTTP 404 from {server})")
        if status == 409:
            return Conflict(message or f"conflict (HTTP 409 from {server})")
        if status in (401, 403):
            return BvaError(f"Kubernetes API at {server} denied access (HTTP {status}): {message}")
        return BvaError(f"Kubernetes API at {server} answered HTTP {status}: {message}")

    import urllib3.exceptions as u3  # already imported by the client that raised

    cause: BaseException = exc
    if isinstance(cause, u3.MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, u3.NewConnectionError | ConnectionRefusedError):
        text = str(cause).lower()
        what = "connection refused" if "refused" in text else _first_line(cause)
        return SourceUnavailable(f"cannot reach the Kubernetes API at {server}: {what}")
    if isinstance(cause, u3.TimeoutError | TimeoutError | socket.timeout):
        return SourceUnavailable(f"the Kubernetes API at {server} timed out")
    if isinstance(cause, u3.HTTPError | OSError):
        return SourceUnavailable(f"lost the connection to the Kubernetes API at {server}")
    if isinstance(cause, ValueError):
        return BvaError(f"unreadable answer from the Kubernetes API at {server}")
    return BvaError(f"Kubernetes client error ({type(exc).__name__}): {_first_line(exc)}")
