"""A generated platform of many identical services, for trying the sandbox (and bva) at size:
``bva sandbox --scale 200x10`` is 200 services ``svc-000`` ... ``svc-199`` of 10 replicas
each, one HTTP port apiece, in namespace ``scale``. The benchmarks use the same generator.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

MAX_SERVICES = 1000
MAX_REPLICAS = 100
NAMESPACE = "scale"
FIRST_PORT = 20000

_SPEC = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_scale(text: str) -> tuple[int, int]:
    """``"200x10"`` -> ``(200, 10)``; ValueError saying what is wrong otherwise."""
    m = _SPEC.fullmatch(text)
    if m is None:
        raise ValueError(f"expected SERVICESxREPLICAS such as 200x10, got {text!r}")
    services, replicas = int(m[1]), int(m[2])
    if not 1 <= services <= MAX_SERVICES:
        raise ValueError(f"services must be 1-{MAX_SERVICES}, got {services}")
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"replicas must be 1-{MAX_REPLICAS}, got {replicas}")
    return services, replicas


def scale_arg(text: str) -> tuple[int, int]:
    """``parse_scale`` as an argparse type, so a bad value is argparse's one-line error."""
    try:
        return parse_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def scale_platform_text(services: int, replicas: int, namespace: str = NAMESPACE) -> str:
    """A platform file (TOML) of ``services`` services of ``replicas`` replicas each."""
    lines = [
        f'name = "Scale{services}x{replicas}"',
        'default_environment = "sandbox"',
        "",
        "[environments.sandbox]",
        'orchestrator = "kubernetes"',
        f'namespace = "{namespace}"',
        "sandbox = true",
        "",
    ]
    for i in range(services):
        lines += [
            "[[services]]",
            f'name = "svc-{i:03d}"',
            f'image = "scale/svc-{i:03d}"',
            f"port = {FIRST_PORT + i}",
            f"replicas = {replicas}",
            'health = ["/actuator/health"]',
            "",
        ]
    return "\n".join(lines)


def write_scale_platform(
    path: Path, services: int, replicas: int, namespace: str = NAMESPACE
) -> Path:
    path.write_text(scale_platform_text(services, replicas, namespace))
    return path
