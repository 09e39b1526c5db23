"""Where the compose adapter finds the Docker Engine: the docker CLI's order (DOCKER_HOST, the
docker context, the platform file, the default socket), and errors as one line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from backends.compose.engine import DEFAULT_HOST, Engine, resolve_host
from backends.errors import BvaError, SourceUnavailable


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}})
    )


def test_the_docker_clis_order(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_host(None) == DEFAULT_HOST
    assert resolve_host("unix:///run/from-file.sock") == "unix:///run/from-file.sock"
    context(docker_config, "prod", "ssh://deploy@prod-1")
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "prod"}))
    assert resolve_host("unix:///run/from-file.sock") == "ssh://deploy@prod-1"
    context(docker_config, "staging", "tcp://staging:2376")
    monkeypatch.setenv("DOCKER_CONTEXT", "staging")
    assert resolve_host(None) == "tcp://staging:2376"
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/env.sock")
    assert resolve_host("unix:///run/from-file.sock", "prod") == "unix:///run/env.sock"


def test_the_platforms_context_and_default(docker_config: Path) -> None:
    context(docker_config, "lab", "tcp://lab:2375")
    assert resolve_host(None, "lab") == "tcp://lab:2375"
    assert resolve_host("unix:///x.sock", "default") == "unix:///x.sock"
    with pytest.raises(BvaError, match="docker context 'nowhere' not found"):
        resolve_host(None, "nowhere")


def test_an_engine_not_there_is_one_line(tmp_path: Path) -> None:
    engine = Engine(f"unix://{tmp_path}/none.sock", timeout=2)
    with pytest.raises(SourceUnavailable) as caught:
        engine.call("listing", lambda api: api.containers())
    text = str(caught.value)
    assert "\n" not in text and text.startswith(
        f"cannot reach the Docker Engine at unix://{tmp_path}"
    )
