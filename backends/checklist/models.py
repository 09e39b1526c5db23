"""What the checklist looks like to the screens, `bva check` and the release record: each
item's state with its evidence, the sign-offs, and the one verdict."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class ItemState(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"  # the source could not say (unreachable, timed out, not configured)
    RUNNING = "running"
    NOT_RUN = "not run"
    SIGNED = "signed"
    UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class Finding:
    """A check's answer: its state and one line of evidence (sanitised, never a secret)."""

    state: ItemState
    evidence: str


@dataclass(frozen=True, slots=True)
class SignOff:
    item: str
    who: str
    at: float
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SignoffRecord:
    """What the store holds: the release version they vouch for, and who signed what."""

    release_version: str
    signoffs: tuple[SignOff, ...]
    version: str = ""  # the store's compare-and-swap token; "" before it exists


class SignoffStore(Protocol):
    async def read_signoffs(self) -> SignoffRecord | None: ...

    async def write_signoffs(self, record: SignoffRecord) -> SignoffRecord:
        """Create (``record.version == ""``) or replace the one at ``record.version``;
        ``Conflict`` when someone else wrote in between."""
        ...


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: str  # the item's id
    section: str
    title: str
    automated: bool
    state: ItemState
    evidence: str = ""
    duration_s: float | None = None
    ran_at: float | None = None
    signoffs: tuple[SignOff, ...] = ()
    required: bool = True  # a sign-off not required in this environment is shown, not counted

    def stale(self, now: float, after_s: float) -> bool:
        return self.automated and (self.ran_at is None or now - self.ran_at > after_s)


@dataclass(frozen=True, slots=True)
class Verdict:
    go: bool
    reasons: tuple[str, ...]  # why No-Go; () when Go
    warnings: tuple[str, ...] = ()

    @property
    def word(self) -> str:
        return "GO" if self.go else "NO-GO"


@dataclass(frozen=True, slots=True)
class ChecklistReport:
    environment: str
    version: str | None
    results: tuple[ItemResult, ...]
    verdict: Verdict
    taken_at: float
    require_go: bool
    stale_after_s: float
    sections: tuple[str, ...] = field(default=())


class ChecklistEngine(Protocol):
    """The checklist as the screens and `bva check` drive it (engine.py's is the one; screen
    snapshots use a stand-in)."""

    @property
    def environment(self) -> str: ...

    @property
    def can_sign(self) -> bool: ...

    async def run(
        self,
        version: str | None,
        *,
        only: set[str] | None = None,
        previous: Sequence[ItemResult] = (),
        on_result: Callable[[ItemResult], None] | None = None,
    ) -> ChecklistReport: ...

    async def sign(self, item: str, who: str, comment: str, version: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ReleaseGate:
    """The checklist as the Rollout screen's confirmation sees it for one version."""

    required: bool  # this environment wants a Go before a release
    go: bool
    words: str  # "GO, checked 3 min ago" / "NO-GO: …" / "not run for 1.2.0"
