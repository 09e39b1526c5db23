"""The database step of a release, between the lock and the first canary: back up (pg_dump,
verified), migrate (Flyway, or the platform file's command), verify (the history clean and at
the newest migration). A release whose migrations are all applied has no database step; one
whose step fails stops before any service changes, naming the error and the backup.

The seed's procedure: "Backup database: pg_dump … / Run migrations: flyway migrate / Verify
migrations: flyway info", in that order, before "Deploy services"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from backends.db.admin import DatabaseAdmin
from backends.db.backup import BackupError, list_backups, take_backup
from backends.db.migrate import MigrateError, run_migrate
from backends.db.models import Flyway, human_bytes
from backends.db.restore_models import Backup, Progress
from backends.errors import BvaError
from backends.journal.store import Journal
from backends.release.models import DatabasePlan, DbStep, StepState, version_words
from backends.release.plan import DB_STEPS as STEPS
from backends.sanitize import sanitize_text
from backends.sources import DatabaseSource


async def plan_database(
    source: DatabaseSource | None,
    admin: DatabaseAdmin | None,
    *,
    no_backup_reason: str | None = None,
) -> DatabasePlan | None:
    """The database step this release needs, or None when it needs none (no database, no
    migrations directory, nothing pending). Raises BvaError when the database cannot be read
    or its history fails validation: starting would be guessing."""
    if source is None or admin is None or admin.migrations_dir is None:
        return None
    picture = await source.refresh()
    primary = picture.primary
    flyway = picture.flyway
    if flyway is None or not flyway.files_read:
        why = primary.error if primary is not None and primary.error else "no migration history"
        raise BvaError(
            f"cannot tell whether this release brings migrations: {why}; the release does "
            "not start blind"
        )
    if flyway.problems:
        # Flyway validates before it migrates; a release over a failed or altered history
        # would ship services against a schema nobody can name.
        raise BvaError(
            "the migration history fails validation: "
            f"{'; '.join(flyway.problems[:3])} (see `bva db migrations`; repair it first)"
        )
    if not flyway.pending:
        return None
    latest = flyway.latest
    backups = [b for b in list_backups(admin.backup_dir) if b.verified]
    return DatabasePlan(
        pending=flyway.pending,
        latest=latest.version if latest else None,
        problems=flyway.problems,
        freshest=(backups[0].name, backups[0].taken_at) if backups else None,
        rpo_s=admin.rpo_s,
        no_backup_reason=no_backup_reason,
    )


class DatabaseRun:
    """Runs the three steps once, keeping each one's state for the screens."""

    def __init__(
        self,
        plan: DatabasePlan,
        admin: DatabaseAdmin,
        source: DatabaseSource,
        *,
        release_id: str,
        journal: Journal | None,
        target: str,
        log: Callable[[str, str], None],
        changed: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plan = plan
        self._admin = admin
        self._source = source
        self._release_id = release_id
        self._journal = journal
        self._target = target
        self._log = log
        self._changed = changed
        self._clock = clock
        self.steps = [DbStep(name) for name in STEPS]
        self.backup: Backup | None = None
        self._last_progress = 0.0

    def _set(self, name: str, state: StepState, detail: str) -> None:
        i = STEPS.index(name)
        self.steps[i] = replace(self.steps[i], state=state, detail=sanitize_text(detail, 300))
        self._changed()

    async def _record(self, action: str, details: Mapping[str, Any], work: Any) -> Any:
        if self._journal is None:
            return await work()
        async with self._journal.arecord(action, self._target, details) as entry:
            out = await work()
            if isinstance(out, str) and out:
                entry.result = f"failed: {out}"
            return out

    async def run(self) -> str:
        """Every step in order; returns "" when all passed, else why the release stops."""
        for step in (self._backup, self._migrate):
            why = await step()
            if why:
                return why
        return await self._verify()

    async def _backup(self) -> str:
        reason = self.plan.no_backup_reason
        if reason is not None:
            if self._journal is not None:
                await asyncio.to_thread(
                    self._journal.append,
                    "release.db.backup.skip",
                    self._target,
                    stage="after",
                    result="skipped",
                    details={"reason": reason},
                )
            self._set("backup", StepState.SKIPPED, f"skipped: {reason}")
            self._log(f"database backup skipped (--no-backup): {reason}", "warning")
            return ""
        self._set("backup", StepState.RUNNING, "pg_dump starting")
        self._log("database: backup (pg_dump -Fc)", "info")

        async def work() -> str:
            try:
                dsn = self._admin.dsn("backup")
                self.backup = await take_backup(
                    dsn,
                    self._admin.backup_dir,
                    environment=self._admin.environment,
                    reason=self._release_id,
                    pg_bin=self._admin.pg_bin,
                    on_progress=self._progress,
                    clock=self._clock,
                )
            except (BackupError, BvaError) as exc:
                return f"backup failed, nothing was changed: {exc}"
            return ""

        why: str = await self._record("release.db.backup", {"release": self._release_id}, work)
        if why:
            self._set("backup", StepState.FAILED, why)
            self._log(why, "error")
            return why
        b = self.backup
        assert b is not None
        done = (
            f"{b.name}: {human_bytes(b.size)} in {b.duration_s:.1f}s, "
            f"verified ({b.entries} entries)"
        )
        self._set("backup", StepState.DONE, done)
        self._log(f"database: backup {done}", "info")
        return ""

    def _progress(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last_progress >= 0.25:
            self._last_progress = now
            written = f"{human_bytes(p.bytes_written)} written, {p.objects} tables"
            self._set("backup", StepState.RUNNING, written)

    def _restore_hint(self) -> str:
        if self.backup is not None:
            return f"to restore the database: bva db restore {self.backup.name}"
        return "no backup was taken for this release (--no-backup)"

    async def _migrate(self) -> str:
        versions = [m.version for m in self.plan.pending if m.version]
        self._set("migrate", StepState.RUNNING, f"to {version_words(self.plan.target)}")
        self._log(f"database: migrate {self.plan.span}", "info")

        def line(text: str) -> None:
            self._set("migrate", StepState.RUNNING, text)

        async def work() -> str:
            try:
                result = await run_migrate(self._admin, self._admin.dsn("migrate"), on_line=line)
            except (MigrateError, BvaError) as exc:
                return f"migrate could not run: {exc}"
            if not result.ok:
                return f"migrate failed: {result.error}"
            return ""

        why: str = await self._record("release.db.migrate", {"pending": versions}, work)
        if why:
            why = f"{why}; the services were not changed; {self._restore_hint()}"
            self._set("migrate", StepState.FAILED, why)
            self._log(why, "error")
            return why
        self._set("migrate", StepState.DONE, f"applied {', '.join(versions)}")
        self._log(f"database: migrated to {version_words(self.plan.target)}", "info")
        return ""

    async def _verify(self) -> str:
        self._set("verify", StepState.RUNNING, "reading the history")
        picture = await self._source.refresh()
        why = verify_flyway(picture.flyway, self.plan.target)
        if self._journal is not None:
            await asyncio.to_thread(
                self._journal.append,
                "release.db.verify",
                self._target,
                stage="after",
                result=f"failed: {why}" if why else "ok",
                details={"target": self.plan.target},
            )
        if why:
            why = f"verify failed: {why}; the services were not changed; {self._restore_hint()}"
            self._set("verify", StepState.FAILED, why)
            self._log(why, "error")
            return why
        self._set("verify", StepState.DONE, f"history clean, at V{self.plan.target}")
        self._log(f"database: verified, at V{self.plan.target}", "info")
        return ""


def verify_flyway(flyway: Flyway | None, target: str | None) -> str:
    """What `flyway info`/`validate` after migrate would object to; "" when all is well."""
    if flyway is None:
        return "the history cannot be read"
    if flyway.failed:
        return f"{', '.join(m.version or '?' for m in flyway.failed)} failed"
    if flyway.pending:
        return f"still pending: {', '.join(m.version or '?' for m in flyway.pending)}"
    if flyway.problems:
        return "; ".join(flyway.problems[:3])
    latest = flyway.latest
    if target is not None and (latest is None or latest.version != target):
        return f"at {latest.version if latest else 'nothing'}, expected {target}"
    return ""
