"""What a backup and a restore look like to the screens and the CLI: plain records, no
driver. backup.py, restore.py and restore_flow.py make them; the console's restore wizard shows
them through the DatabaseRestores contract below."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Backup:
    path: str
    database: str
    environment: str
    reason: str  # the release id, "manual", or "safety" before a restore
    taken_at: float  # wall time the dump started
    duration_s: float
    size: int
    server_version: str
    dump_version: str
    start_lsn: str
    verified: bool
    entries: int  # pg_restore --list table-of-contents entries

    @property
    def name(self) -> str:
        return Path(self.path).name

    def age(self, now: float) -> float:
        return max(0.0, now - self.taken_at)


@dataclass(frozen=True, slots=True)
class Progress:
    bytes_written: int
    objects: int  # tables whose contents pg_dump --verbose has said it dumps
    last: str  # the last object named, sanitised


@dataclass(frozen=True, slots=True)
class Connected:
    application: str
    sessions: int


@dataclass(frozen=True, slots=True)
class RestorePlan:
    database: str
    environment: str
    backup: Backup
    wal_since_backup: int | None  # bytes of WAL written since the backup began; None: unknown
    connected: tuple[Connected, ...]  # the application's sessions on the database now
    replicas: int

    @property
    def confirmation_text(self) -> str:
        return f"{self.database}@{self.environment}"

    @property
    def drained(self) -> bool:
        return not self.connected

    def loss_words(self, now: float) -> str:
        age = max(0.0, now - self.backup.taken_at)
        lost = f"every write of the last {int(age // 60)} min {int(age % 60)} s"
        if self.wal_since_backup is None:
            return f"{lost} (how much: unknown)"
        return f"{lost} ({self.wal_since_backup:,} bytes of WAL since the backup began)"


@dataclass(frozen=True, slots=True)
class RestoreResult:
    safety: Backup
    duration_s: float
    tables: tuple[tuple[str, int], ...]  # schema.table -> rows, after the restore


class EventLevel(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Step(enum.Enum):
    SCALE_DOWN = "scale-down"
    DRAIN = "drain"
    RESTORE = "restore"  # the restore's own steps: safety backup, restoring, checking
    FAILED = "failed"
    SCALE_UP = "scale-up"


@dataclass(frozen=True, slots=True)
class RestoreEvent:
    step: Step
    text: str  # one line, no markup, no secret
    level: EventLevel = EventLevel.INFO


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    result: RestoreResult | None  # None: the restore did not land
    error: str  # why not, one line; "" when it landed
    scaled: tuple[tuple[str, int], ...]  # (deployment, replicas before) that went to 0
    not_scaled_back: tuple[str, ...]  # deployments left at 0: a human must scale them

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.not_scaled_back


class DatabaseRestores(Protocol):
    """The guarded restore as the console's wizard drives it (backends/db/restores.py's
    DatabaseRestoreEngine is the one; screen snapshots use a stand-in)."""

    @property
    def environment(self) -> str: ...

    async def backups(self) -> list[Backup]: ...

    async def plan(self, backup: Backup) -> RestorePlan: ...

    def services_to_scale(self, plan: RestorePlan) -> list[str]: ...

    async def execute(
        self,
        plan: RestorePlan,
        *,
        scale_down: bool,
        on_event: Callable[[RestoreEvent], None],
    ) -> RestoreOutcome: ...
