"""The console's checklist engine: runs the checks with the sign-offs the cluster holds for
the version, and signs (journalled) where the orchestrator can keep sign-offs and the
console may write. Read-only runs every check and signs nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from backends.checklist.models import ChecklistReport, ItemResult, SignoffStore
from backends.checklist.runner import run_checklist
from backends.checklist.signoffs import SignoffError, read_for, sign
from backends.errors import ReadOnlyError
from backends.journal.store import Journal
from backends.platform import Platform


class ChecklistRunner:
    def __init__(
        self, platform: Platform, journal: Journal, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._platform = platform
        self._journal = journal
        self._clock = clock

    @property
    def environment(self) -> str:
        return self._platform.env_name

    def _store(self) -> SignoffStore:
        return self._platform.orchestrator

    @property
    def can_sign(self) -> bool:
        return not self._platform.read_only

    async def run(
        self,
        version: str | None,
        *,
        only: set[str] | None = None,
        previous: Sequence[ItemResult] = (),
        on_result: Callable[[ItemResult], None] | None = None,
    ) -> ChecklistReport:
        signoffs = await read_for(self._store(), version) if version else ()
        return await run_checklist(
            self._platform,
            version=version,
            signoffs=signoffs,
            previous=previous,
            only=only,
            on_result=on_result,
            clock=self._clock,
        )

    async def sign(self, item: str, who: str, comment: str, version: str) -> None:
        if self._platform.read_only:
            raise ReadOnlyError("read-only: sign-offs refused")
        store = self._store()
        found = {i.id: i for i in self._platform.config.checklist.resolved()}
        if item not in found:
            raise SignoffError(f"no checklist item {item!r}")
        target = f"{version}@{self.environment}"
        details = {"item": item, "who": who, "comment": comment}
        async with self._journal.arecord("checklist.signoff", target, details):
            await sign(
                store,
                self._platform.config.checklist,
                found[item],
                release_version=version,
                who=who,
                comment=comment,
                clock=self._clock,
            )
