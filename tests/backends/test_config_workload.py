"""The platform file's per-service `autoscaling` and `env`: the built-in values from the seed
guide, and one-line errors naming the key for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.config.loader import ConfigError, builtin_platform_path, load_platform

BASE = """
name = "Test"
[environments.production]
orchestrator = "kubernetes"
namespace = "test"

[[services]]
name = "auth-service"
image = "test/auth-service"
port = 8081
"""


def test_builtin_autoscaling_and_env_come_from_the_seed() -> None:
    cfg = load_platform(builtin_platform_path())
    for service in cfg.services:
        assert service.autoscaling is not None, service.name
        scaling = service.autoscaling
        # "Auto-Scaling Configuration": minReplicas 2, maxReplicas 10, averageUtilization 70.
        assert (scaling.min, scaling.max, scaling.cpu) == (2, 10, 70)
        assert "SERVER_PORT" in service.env
    auth = cfg.service("auth-service")
    # "Production Environment Variables", Backend (auth-service), in the guide's order.
    assert auth.env == [
        "DB_URL", "DB_USERNAME", "DB_PASSWORD",
        "SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD",
        "JWT_SECRET", "JWT_EXPIRATION", "JWT_REFRESH_EXPIRATION",
        "SERVER_PORT", "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE",
        "LOGGING_LEVEL_ROOT", "LOGGING_LEVEL_COM_BHARATHVA",
    ]  # fmt: skip
    assert "DB_PASSWORD" in cfg.service("tweet-service").env
    assert "DB_URL" not in cfg.service("gateway-service").env


def test_both_are_optional(tmp_path: Path) -> None:
    path = tmp_path / "bva.toml"
    path.write_text(BASE)
    service = load_platform(path).service("auth-service")
    assert service.autoscaling is None and service.env == []


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ("autoscaling = { min = 3, max = 2, cpu = 70 }", "autoscaling.max", "must be >= min (3)"),
        ("autoscaling = { min = 0, max = 2, cpu = 70 }", "autoscaling.min", "must be >= 1"),
        ("autoscaling = { min = 1, max = 2, cpu = 0 }", "autoscaling.cpu", "must be >= 1"),
        ("autoscaling = { min = 1, max = 2, cpu = 101 }", "autoscaling.cpu", "must be <= 100"),
        ("autoscaling = { min = 1, max = 2 }", "autoscaling.cpu", "field required"),
        ('autoscaling = { min = 1, max = 2, cpu = "70%" }', "autoscaling.cpu", "expected integer"),
        ("autoscaling = { min = 1, max = 2, cpu = 70, memory = 80 }", "autoscaling.memory",
         'unknown key "memory"'),
        ('env = "DB_URL"', "env", "expected array"),
        ('env = ["DB_URL", "2FA_KEY"]', "env[1]", 'bad environment variable name "2FA_KEY"'),
        ('env = ["DB URL"]', "env[0]", "bad environment variable name"),
        ('env = ["A", "B", "A"]', "env[2]", 'duplicate environment variable "A"'),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_errors(tmp_path: Path, extra: str, key: str, problem: str) -> None:
    path = tmp_path / "bva.toml"
    path.write_text(BASE + extra + "\n")
    with pytest.raises(ConfigError) as info:
        load_platform(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: services[0].{key}: "), message
    assert problem in message
    assert info.value.__cause__ is None
