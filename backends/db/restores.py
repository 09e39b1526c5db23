"""The console's restore engine: the guarded restore of backends/db/restore_flow.py behind the
DatabaseRestores contract, so the Rollback screen's wizard never sees a DSN, a driver or the
journal. Every method that reaches the database asks the admin for its DSN first: read-only
refuses there, before a secret is read or a connection opened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from backends.config.values import ConfigError
from backends.db.admin import DatabaseAdmin
from backends.db.backup import list_backups
from backends.db.restore import RestoreError, plan_restore
from backends.db.restore_flow import connected_services, run_restore
from backends.db.restore_models import Backup, RestoreEvent, RestoreOutcome, RestorePlan
from backends.errors import BvaError
from backends.journal.store import Journal
from backends.platform import Platform


class DatabaseRestoreEngine:
    def __init__(self, platform: Platform, admin: DatabaseAdmin, journal: Journal) -> None:
        self._platform = platform
        self._admin = admin
        self._journal = journal

    @property
    def environment(self) -> str:
        return self._platform.env_name

    def _dsn(self) -> str:
        try:
            return self._admin.dsn("restore")
        except ConfigError as exc:
            raise BvaError(str(exc)) from None

    async def backups(self) -> list[Backup]:
        return await asyncio.to_thread(list_backups, self._admin.backup_dir)

    async def plan(self, backup: Backup) -> RestorePlan:
        dsn = self._dsn()
        try:
            return await plan_restore(dsn, backup, self._admin.environment)
        except RestoreError as exc:
            raise BvaError(str(exc)) from None

    def services_to_scale(self, plan: RestorePlan) -> list[str]:
        return connected_services(plan, dict(self._platform.services()))

    async def execute(
        self,
        plan: RestorePlan,
        *,
        scale_down: bool,
        on_event: Callable[[RestoreEvent], None],
    ) -> RestoreOutcome:
        return await run_restore(
            self._platform.orchestrator,
            dict(self._platform.services()),
            self._admin,
            plan,
            self._dsn(),
            self._journal,
            scale_down=scale_down,
            on_event=on_event,
        )
