"""Log lines from files: what an outside writer appends to ``DIR/<service>.log`` becomes
the output of that service's running pods.

The kubelet serves container logs from files the runtime appends to; this is the same idea
turned around, so a benchmark or a demo can push a known stream (its own rate, its own
content) through the real log API. Files are polled, not watched: a 10 ms poll costs
nothing measurable and works on every filesystem. A file may appear after the sandbox
starts; only lines appended after it was first seen are fed (like ``tail -f``), and a file
that shrinks (truncated or replaced) is read again from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from backends.sandbox.logs import LogBook

POLL_S = 0.01
READ_BYTES = 4 * 1024 * 1024


class _Tail:
    __slots__ = ("carry", "inode", "offset", "path")

    def __init__(self, path: Path, offset: int, inode: int) -> None:
        self.path = path
        self.offset = offset
        self.inode = inode
        self.carry = b""


class LogFeeds:
    def __init__(self, directory: Path, services: list[str], book: LogBook) -> None:
        self.directory = directory
        self.services = services
        self.book = book
        self._tails: dict[str, _Tail] = {}
        self.fed = 0

    def poll(self) -> None:
        for service in self.services:
            path = self.directory / f"{service}.log"
            try:
                st = os.stat(path)
            except OSError:
                continue
            tail = self._tails.get(service)
            if tail is None:
                self._tails[service] = _Tail(path, st.st_size, st.st_ino)
                self.book.mark_fed(service)
                continue
            if st.st_ino != tail.inode or st.st_size < tail.offset:
                tail.offset, tail.inode, tail.carry = 0, st.st_ino, b""
            if st.st_size > tail.offset:
                self._read(service, tail)

    def _read(self, service: str, tail: _Tail) -> None:
        with contextlib.suppress(OSError), open(tail.path, "rb") as fh:
            fh.seek(tail.offset)
            data = fh.read(READ_BYTES)
            tail.offset += len(data)
            data = tail.carry + data
            cut = data.rfind(b"\n")
            if cut < 0:
                tail.carry = data
                return
            tail.carry = data[cut + 1 :]
            # Decoded whole: a chunk cut at a newline never splits a UTF-8 character.
            lines = data[:cut].decode("utf-8", "replace").split("\n")
            self.fed += self.book.feed(service, [line.rstrip("\r") for line in lines])

    async def run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(POLL_S)
