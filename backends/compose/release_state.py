"""The release lock and the checklist's sign-offs of a compose project, as compare-and-swap
records in the Engine (backends/compose/state_store.py): a record's version is its sequence."""

from __future__ import annotations

import asyncio
import json

from backends.checklist.models import SignoffRecord
from backends.checklist.signoff_json import record_from_json, record_json
from backends.compose.reads import ComposeReads
from backends.errors import ReadOnlyError
from backends.models import LockRecord


class ReleaseRecords(ComposeReads):
    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"read-only: {what} refused")

    async def read_lock(self) -> LockRecord | None:
        text, seq = await asyncio.to_thread(self.state.read, "lock")
        if text is None:
            return None
        try:
            data = json.loads(text)
            return LockRecord(
                holder=str(data["holder"]),
                release_id=str(data["release_id"]),
                acquired=float(data["acquired"]) if data.get("acquired") is not None else None,
                renewed=float(data["renewed"]) if data.get("renewed") is not None else None,
                duration=int(data["duration"]),
                version=str(seq),
            )
        except (ValueError, KeyError, TypeError):
            return LockRecord("unknown", "", None, None, 15, str(seq))  # unreadable: expired

    @staticmethod
    def _lock_json(record: LockRecord) -> str:
        return json.dumps(
            {
                "holder": record.holder,
                "release_id": record.release_id,
                "acquired": record.acquired,
                "renewed": record.renewed,
                "duration": record.duration,
            }
        )

    async def create_lock(self, record: LockRecord) -> LockRecord:
        self._writable("taking the release lock")
        seq = await asyncio.to_thread(self.state.write, "lock", self._lock_json(record), 0)
        return LockRecord(record.holder, record.release_id, record.acquired, record.renewed,
                          record.duration, str(seq))  # fmt: skip

    async def replace_lock(self, record: LockRecord) -> LockRecord:
        self._writable("renewing the release lock")
        expected = int(record.version) if record.version.isdigit() else 0
        seq = await asyncio.to_thread(self.state.write, "lock", self._lock_json(record), expected)
        return LockRecord(record.holder, record.release_id, record.acquired, record.renewed,
                          record.duration, str(seq))  # fmt: skip

    async def delete_lock(self) -> None:
        self._writable("releasing the release lock")
        await asyncio.to_thread(self.state.delete, "lock")

    async def read_signoffs(self) -> SignoffRecord | None:
        text, seq = await asyncio.to_thread(self.state.read, "signoffs")
        return None if text is None else record_from_json(text, str(seq))

    async def write_signoffs(self, record: SignoffRecord) -> SignoffRecord:
        self._writable("signing a checklist item")
        expected = int(record.version) if record.version.isdigit() else 0
        seq = await asyncio.to_thread(self.state.write, "signoffs", record_json(record), expected)
        return SignoffRecord(record.release_version, record.signoffs, str(seq))
