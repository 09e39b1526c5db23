from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pg_world import PgWorld, start_world
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


@pytest.fixture(scope="module")
def pg_world() -> Iterator[PgWorld]:
    """A real primary and streaming replica (database bharathva, a pg_monitor role), one per
    test module: modules that stop or pause a server put it back before they end."""
    world = start_world(replicas=1)
    try:
        yield world
    finally:
        world.cluster.stop()
