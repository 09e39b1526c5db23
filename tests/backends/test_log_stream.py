"""The reader's handoff to the event loop when lines come faster than they can be shown: the
inbox's bound, and a live tail skipping what it is too far behind on."""

from __future__ import annotations

import asyncio
import time

from backends.kube.log_stream import LogReader
from backends.logs.inbox import Chunk, Inbox, StreamRequest
from backends.logs.join import Joiner
from backends.sandbox.logs import kubelet_timestamp


def _reader(inbox: Inbox, shed_after: float | None) -> LogReader:
    joiner = Joiner(pod="p", container="c", service="s", track="stable")
    req = StreamRequest(namespace="ns", pod="p", container="c")
    return LogReader(1, None, req, inbox, joiner, shed_after=shed_after)  # type: ignore[arg-type]


def _block(age: float, lines: int = 3) -> str:
    stamp = kubelet_timestamp(time.time() - age)
    return "\n".join(f"{stamp} line {i}" for i in range(lines))


async def test_inbox_bound_counts_what_it_drops_and_says_when_full() -> None:
    inbox = Inbox(asyncio.get_running_loop(), limit_lines=10)
    inbox.put(Chunk(1, [], 6, 0.0))
    assert not inbox.full
    inbox.put(Chunk(1, [], 6, 0.0))  # over the bound: dropped, counted
    assert inbox.dropped == 6 and not inbox.full
    inbox.put(Chunk(1, [], 4, 0.0))
    assert inbox.full
    inbox.put(Chunk(1, [], 50, 0.0, catch_up=True))  # history asked for is never dropped
    inbox.skip(7)
    assert inbox.dropped == 13
    assert len(inbox.drain()) == 3 and not inbox.full


async def test_live_tail_is_behind_only_relative_to_its_own_best() -> None:
    reader = _reader(Inbox(asyncio.get_running_loop(), 100), shed_after=0.5)
    # A node clock 30 s behind ours: every line looks 30 s old, and that is the baseline.
    assert not reader._behind(_block(30.0))
    assert not reader._behind(_block(30.3))
    assert reader._behind(_block(30.8))  # 0.8 s later than the best this stream managed
    assert not reader._behind(_block(30.1))  # caught up
    assert not reader._behind("no stamp on this line")
    # Never, when the caller wants every line.
    keep_all = _reader(Inbox(asyncio.get_running_loop(), 100), shed_after=None)
    assert not keep_all._behind(_block(0.0)) and not keep_all._behind(_block(60.0))
