"""The Docker Compose adapter: one compose project on one Docker Engine behind the
orchestrator contract (backends/orchestrator.py), read through compose's labels and changed
through the Engine API (backends/compose/reads.py, changes.py)."""

from __future__ import annotations

import threading
from typing import Any

from backends.compose.changes import ComposeChanges
from backends.compose.log_stream import ContainerLogReader
from backends.logs.inbox import Inbox, StreamRequest
from backends.logs.join import Joiner


class ComposeAdapter(ComposeChanges):
    @property
    def kind(self) -> str:
        return "compose"

    @property
    def target(self) -> str:
        return f"project {self.project} on {self.engine.host}"

    def connection(self) -> dict[str, Any]:
        """How to build this adapter again in another process (JSON, no credential: the
        Engine by address): ``ComposeAdapter(**connection)``."""
        return {
            "kind": self.kind,
            "project": self.project,
            "host": self.engine.host,
            "read_only": self.read_only,
            "services": [list(pair) for pair in self._services],
            "request_timeout": self.request_timeout,
            "progress_deadline": self.progress_deadline,
        }

    async def prepare_logs(self) -> None:
        return None  # each reader opens its own connection to the Engine

    def open_log_reader(
        self, sid: int, request: StreamRequest, inbox: Inbox, joiner: Joiner,
        parse_lock: threading.Lock, *, shed_after: float | None = None,
    ) -> ContainerLogReader:  # fmt: skip
        return ContainerLogReader(
            sid, self.engine, request, inbox, joiner, parse_lock, shed_after=shed_after
        )
