"""The frame the `bva db …` commands share: read the platform file, start an embedded sandbox
for `--sandbox`, open the environment, run the command's coroutine on it, and close it all
again. An environment that cannot be opened is one line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.platform import Platform


def run_on_platform(
    args: argparse.Namespace,
    work: Callable[[Platform], Awaitable[int]],
    *,
    read_only: bool,
    unopened: int,
) -> int:
    """``work(platform)``'s exit code, or ``unopened`` when the environment cannot be opened."""
    from backends.config.loader import load_platform, resolve_config_path
    from backends.errors import BvaError
    from backends.platform import open_platform
    from backends.sandbox.state import sandbox_environment
    from tui.sandbox_child import EmbeddedSandbox

    path = resolve_config_path(args.config)
    cfg = load_platform(path)
    embedded = EmbeddedSandbox(str(path)) if args.sandbox else None

    async def run() -> int:
        state = embedded.start() if embedded else None
        name = sandbox_environment(cfg) if embedded else args.env
        try:
            platform = open_platform(cfg, name, read_only=read_only, sandbox=state)
        except BvaError as exc:
            print(f"bva: {exc}", file=sys.stderr)
            return unopened
        try:
            return await work(platform)
        finally:
            await platform.aclose()

    try:
        return asyncio.run(run())
    finally:
        if embedded:
            embedded.stop()
