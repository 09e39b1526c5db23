"""What changing the database needs: the owner's DSN (resolved only when used, so read-only
refuses before any secret is read or connection opened), where backups go, the RPO and the
retention, and which client binaries to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from backends.errors import ReadOnlyError


@dataclass(frozen=True)
class DatabaseAdmin:
    environment: str
    backup_dir: Path
    rpo_s: float
    retention_s: float
    read_only: bool
    pg_bin: str | None = None
    migrations_dir: Path | None = None
    flyway_table: str = "public.flyway_schema_history"
    migrate_command: tuple[str, ...] | None = None  # None: `flyway migrate` if on PATH
    migrate_timeout_s: float = 1800.0
    # Resolves the admin DSN (a secret reference); raises ConfigError when it does not.
    resolve_dsn: Callable[[], str] = field(default=lambda: "", repr=False)

    def dsn(self, action: str) -> str:
        """The owner's DSN for ``action``; read-only refuses here, before anything is read."""
        if self.read_only:
            raise ReadOnlyError(f"read-only: {action} refused")
        return self.resolve_dsn()


def default_backup_dir(environment: str) -> Path:
    return Path(platformdirs.user_data_dir("bva")) / "backups" / environment
