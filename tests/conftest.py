from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox_proc import RunningSandbox, start_sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    """A real sandbox process (API + service endpoints) at 4x speed, stopped afterwards."""
    running = start_sandbox(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The real kubectl; its absence is a failure, never a skip."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is required for these tests but is not on PATH")
    return path
