"""The platform file: the built-in BharathVA file, error messages, lookup order, secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from backends.config.loader import (
    ConfigError,
    PlatformConfig,
    builtin_platform_path,
    format_duration,
    load_platform,
    mask_dsn,
    parse_duration,
    resolve_config_path,
    resolve_secret,
)
from backends.config.summary import summarize

MALFORMED = Path(__file__).parent / "malformed"

MINIMAL = """
name = "Test"
[environments.production]
orchestrator = "kubernetes"
namespace = "test"

[[services]]
name = "auth-service"
image = "test/auth-service"
port = 8081
"""


@pytest.fixture
def builtin() -> PlatformConfig:
    return load_platform(builtin_platform_path())


def write(tmp_path: Path, text: str, name: str = "bva.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the built-in file ---------------------------------------------------------------------


def test_builtin_services_ports_and_health(builtin: PlatformConfig) -> None:
    assert builtin.name == "BharathVA"
    got = {s.name: (s.port, s.health) for s in builtin.services}
    assert got == {
        "discovery-service": (8761, ["/actuator/health"]),
        "auth-service": (8081, ["/actuator/health", "/api/auth/register/health"]),
        "user-service": (8083, ["/actuator/health"]),
        "tweet-service": (8082, ["/actuator/health"]),
        "gateway-service": (8080, ["/actuator/health"]),
    }
    auth = builtin.service("auth-service")
    assert (auth.image, auth.replicas, auth.log_format) == ("bharathva/auth-service", 3, "plain")
    assert auth.deployment_name == auth.deployment == "auth-service"
    assert auth.container_name == "auth-service"
    assert builtin.service("tweet-service").log_format == "json"
    assert builtin.service("gateway-service").replicas == 3


def test_builtin_start_order(builtin: PlatformConfig) -> None:
    order = [s.name for s in builtin.services_in_start_order()]
    assert order[0] == "discovery-service"
    assert order[-1] == "gateway-service"


def test_builtin_environments(builtin: PlatformConfig) -> None:
    assert list(builtin.environments) == ["production", "staging", "sandbox"]
    assert builtin.default_environment() == "production"
    prod = builtin.environment("production")
    assert (prod.namespace, prod.context, prod.production) == ("bharathva", "bharathva-prod", True)
    staging = builtin.environment("staging")
    assert (staging.namespace, staging.context, staging.production) == (
        "bharathva-staging",
        "bharathva-staging",
        False,
    )
    assert builtin.environment("sandbox").sandbox
    assert (
        prod.base_url(builtin.service("auth-service"))
        == "http://auth-service.bharathva.svc.cluster.local:8081"
    )


def test_builtin_thresholds_and_rollout_match_seed(builtin: PlatformConfig) -> None:
    t = builtin.thresholds
    assert (t.error_rate_pct, t.p95_ms, t.db_connections_pct) == (1.0, 500, 80)
    assert (t.replication_lag_s, t.failed_logins_per_min, t.service_down_s) == (1.0, 100, 60)
    rollout = builtin.rollout_for("production")
    assert rollout.phases == [5, 25, 50, 100]
    assert rollout.holds == [3600, 7200, 14400]
    assert builtin.database is not None
    assert builtin.database.url == "env:BVA_DB_URL"
    assert builtin.database.replicas == ["env:BVA_DB_REPLICA_URL"]
    assert builtin.database_for("staging") is builtin.database


def test_rollout_for_merges_sandbox_override(builtin: PlatformConfig) -> None:
    sandbox = builtin.rollout_for("sandbox")
    assert sandbox.holds == [20, 20, 20]
    assert sandbox.gate_interval == 5
    assert sandbox.progress_deadline == 30
    assert sandbox.failure_limit == 3
    # Keys the override leaves out keep the platform's values.
    assert sandbox.phases == builtin.rollout.phases
    assert sandbox.strategy == builtin.rollout.strategy
    assert builtin.rollout.holds == [3600, 7200, 14400]


def test_unknown_environment_and_service(builtin: PlatformConfig) -> None:
    with pytest.raises(ConfigError, match=r'unknown environment "prod" \(known: production, '):
        builtin.environment("prod")
    with pytest.raises(ConfigError, match='unknown environment "nope"'):
        builtin.rollout_for("nope")
    with pytest.raises(ConfigError, match='unknown service "web"'):
        builtin.service("web")


def test_summary_names_everything_but_secrets(
    builtin: PlatformConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BVA_DB_URL", "postgresql://bva:hunter2@db/bharathva")
    text = summarize(builtin, "/etc/bva.toml")
    for expected in (
        "BharathVA",
        "/etc/bva.toml",
        "PRODUCTION",
        "bharathva-staging",
        "8761",
        "/api/auth/register/health",
        "env:BVA_DB_URL",
        "1h / 2h / 4h",
        "20s / 20s / 20s",
    ):
        assert expected in text
    assert "hunter2" not in text


# --- defaults and small files --------------------------------------------------------------


def test_minimal_file_gets_seed_defaults(tmp_path: Path) -> None:
    cfg = load_platform(write(tmp_path, MINIMAL))
    assert cfg.default_environment() == "production"
    assert cfg.rollout.phases == [5, 25, 50, 100]
    assert cfg.thresholds.p95_ms == 500
    svc = cfg.services[0]
    assert (svc.replicas, svc.health, svc.metrics) == (
        2,
        ["/actuator/health"],
        "/actuator/prometheus",
    )


def test_default_environment_falls_back_to_first(tmp_path: Path) -> None:
    text = MINIMAL.replace("environments.production", "environments.qa")
    assert load_platform(write(tmp_path, text)).default_environment() == "qa"


def test_compose_environment_needs_no_namespace(tmp_path: Path) -> None:
    text = MINIMAL + '\n[environments.local]\norchestrator = "compose"\nproject = "bharathva"\n'
    cfg = load_platform(write(tmp_path, text))
    local = cfg.environment("local")
    assert local.base_url(cfg.services[0]) == "http://localhost:8081"
    assert local.project == "bharathva" and local.docker_host is None


def test_service_url_overrides_template(tmp_path: Path) -> None:
    cfg = load_platform(write(tmp_path, MINIMAL + 'url = "https://auth.example.com"\n'))
    assert cfg.environment("production").base_url(cfg.services[0]) == "https://auth.example.com"


# --- malformed files -----------------------------------------------------------------------

# (file, key path, problem) — the one-line message must read "<file>: <key path>: ...problem..."
CASES = [
    ("unknown_key", "services[0].colour", 'unknown key "colour"'),
    ("unknown_top_level_key", "owner", 'unknown key "owner"'),
    ("wrong_type", "services[0].port", 'expected integer, got string "abc"'),
    ("missing_service_name", "services[2].name", "field required"),
    ("duplicate_service", "services[1].name", 'duplicate service "auth-service"'),
    ("bad_service_url", "services[0].url", 'bad URL "ftp://x"'),
    ("bad_health_path", "services[0].health[0]", 'bad URL "health"'),
    ("negative_threshold", "thresholds.p95_ms", "must be >= 0"),
    ("percent_over_100", "thresholds.error_rate_pct", "must be <= 100"),
    ("phases_not_increasing", "rollout.phases[2]", "phases must increase strictly"),
    ("phases_not_ending_at_100", "rollout.phases", "last phase must be 100"),
    ("holds_length_mismatch", "rollout.holds", "expected 3 holds"),
    ("override_holds_mismatch", "environments.production.rollout.holds", "expected 3 holds"),
    ("inline_secret", "database.url", "inline secret not allowed; use env:NAME or file:PATH"),
    ("inline_secret_replica", "database.replicas[0]", "inline secret not allowed"),
    ("unknown_orchestrator", "environments.production.orchestrator", "kubernetes, compose"),
    (
        "kubernetes_without_namespace",
        "environments.staging.namespace",
        'required for orchestrator "kubernetes"',
    ),
    ("empty_services", "services", "must not be empty"),
    ("unknown_default_environment", "default_environment", 'unknown environment "prod"'),
    ("bad_duration", "thresholds.service_down_s", 'bad duration "5 minutes"'),
    ("image_with_tag", "services[0].image", "must not include a tag"),
    ("port_out_of_range", "services[0].port", "must be <= 65535"),
    ("prometheus_without_url", "metrics.prometheus_url", 'required for source "prometheus"'),
    ("bad_service_name", "services[0].name", "DNS-1123 label"),
]


@pytest.mark.parametrize(("case", "key_path", "problem"), CASES, ids=[c[0] for c in CASES])
def test_malformed_file(case: str, key_path: str, problem: str) -> None:
    path = MALFORMED / f"{case}.toml"
    with pytest.raises(ConfigError) as info:
        load_platform(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key_path}: "), message
    assert problem in message
    assert info.value.errors[0] == message
    # No chained pydantic error (it would carry the raw input, secrets included).
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_every_malformed_file_has_a_case() -> None:
    files = {p.stem for p in MALFORMED.glob("*.toml")}
    assert files == {c[0] for c in CASES} | {"bad_toml"}


def test_bad_toml_names_line_and_column() -> None:
    path = MALFORMED / "bad_toml.toml"
    with pytest.raises(ConfigError) as info:
        load_platform(path)
    assert str(info.value).startswith(f"{path}: invalid TOML: ")
    assert "line 2" in str(info.value)


@pytest.mark.parametrize("case", ["inline_secret", "inline_secret_replica"])
def test_inline_secret_is_never_echoed(case: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_platform(MALFORMED / f"{case}.toml")
    assert "s3cr3t" not in str(info.value)
    assert not any("s3cr3t" in line for line in info.value.errors)


def test_all_errors_are_kept(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("port = 8081", 'port = "x"\nreplicas = 0') + "\n[thresholds]\np95_ms = -1\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_platform(path)
    assert info.value.errors == [
        f"{path}: services[0].replicas: must be >= 1",
        f'{path}: services[0].port: expected integer, got string "x"',
        f"{path}: thresholds.p95_ms: must be >= 0",
    ]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: file not found$"):
        load_platform(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_platform(tmp_path)
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_platform(binary)


def test_control_characters_in_values_are_escaped(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("port = 8081", 'port = "\\u001b[31mred"'))
    with pytest.raises(ConfigError) as info:
        load_platform(path)
    assert "\x1b" not in str(info.value)
    assert "\\x1b[31mred" in str(info.value)


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        (" 2m ", 120.0),
        ("1d", 86400.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value", [-1, "-5s", "", "abc", "5 minutes", "1h30", "h", True, float("nan")]
)
def test_parse_duration_rejects(value: str | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"), [(3600, "1h"), (5400, "1h30m"), (0.25, "250ms"), (20, "20s"), (0, "0s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- where the file comes from -------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $BVA_CONFIG, an empty cwd, and an empty user config dir (platformdirs patched)."""
    monkeypatch.delenv("BVA_CONFIG", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    user_dir = tmp_path / "user-config" / "bva"
    user_dir.mkdir(parents=True)
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda appname: str(user_dir))
    return tmp_path


def test_resolve_falls_back_to_builtin(isolated: Path) -> None:
    assert resolve_config_path(None) == builtin_platform_path()


def test_resolve_user_config_dir(isolated: Path) -> None:
    user_file = write(isolated / "user-config" / "bva", MINIMAL)
    assert resolve_config_path(None) == user_file


def test_resolve_cwd_beats_user_dir(isolated: Path) -> None:
    write(isolated / "user-config" / "bva", MINIMAL)
    local = write(isolated / "cwd", MINIMAL)
    assert resolve_config_path(None) == local


def test_resolve_env_beats_cwd(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated / "cwd", MINIMAL)
    named = write(isolated, MINIMAL, "from-env.toml")
    monkeypatch.setenv("BVA_CONFIG", str(named))
    assert resolve_config_path(None) == named


def test_resolve_cli_beats_env(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BVA_CONFIG", str(write(isolated, MINIMAL, "from-env.toml")))
    cli = write(isolated, MINIMAL, "from-cli.toml")
    assert resolve_config_path(str(cli)) == cli


def test_resolve_explicit_missing_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = isolated / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        resolve_config_path(str(missing))
    monkeypatch.setenv("BVA_CONFIG", str(missing))
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        resolve_config_path(None)


# --- secrets -------------------------------------------------------------------------------


def test_resolve_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BVA_TEST_SECRET", "postgresql://u:pw@h/db\n")
    assert resolve_secret("env:BVA_TEST_SECRET") == "postgresql://u:pw@h/db"
    monkeypatch.delenv("BVA_TEST_SECRET")
    with pytest.raises(ConfigError, match="env:BVA_TEST_SECRET: environment variable"):
        resolve_secret("env:BVA_TEST_SECRET")


def test_resolve_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("s3cr3t\n", encoding="utf-8")
    assert resolve_secret(f"file:{secret}") == "s3cr3t"
    with pytest.raises(ConfigError, match="file not found"):
        resolve_secret(f"file:{tmp_path / 'missing'}")


def test_resolve_secret_rejects_inline_value_without_echo() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_secret("hunter2")
    assert "hunter2" not in str(info.value)
    assert "inline secret not allowed" in str(info.value)


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://bva:s3cr3t@db:5432/app", "postgresql://bva:***@db:5432/app"),
        (
            "postgresql://bva:p@ss@db/app?sslmode=require",
            "postgresql://bva:***@db/app?sslmode=require",
        ),
        ("postgresql://bva@db/app", "postgresql://bva@db/app"),
        ("host=db user=bva password=s3cr3t dbname=app", "host=db user=bva password=*** dbname=app"),
        ("host=db password = 'a b c' dbname=app", "host=db password = *** dbname=app"),
        (
            "jdbc:postgresql://db/app?user=bva&password=s3cr3t&ssl=true",
            "jdbc:postgresql://db/app?user=bva&password=***&ssl=true",
        ),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


# --- boundaries ----------------------------------------------------------------------------


def test_config_modules_do_not_import_the_ui() -> None:
    code = (
        "import sys, backends.config.loader, backends.config.summary; "
        "ui = ('textual', 'tui', 'screens', 'widgets'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ui]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
