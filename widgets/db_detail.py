"""The selected database server in detail: its sessions (longest running first, blocked ones
marked with who blocks them), its replication (the standbys a primary feeds, or a replica's own
receive and replay), and the Flyway history."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, TabbedContent, TabPane

from backends.db.models import MigrationState, ServerReading, Session, human_bytes
from backends.sanitize import sanitize_text

SESSION_COLUMNS = (
    ("pid", "PID"),
    ("app", "APPLICATION"),
    ("state", "STATE"),
    ("wait", "WAIT"),
    ("time", "QUERY TIME"),
    ("blocked", "BLOCKED BY"),
    ("query", "QUERY"),
)
STANDBY_COLUMNS = (
    ("name", "STANDBY"),
    ("state", "STATE"),
    ("sync", "SYNC"),
    ("write", "WRITE LAG"),
    ("flush", "FLUSH LAG"),
    ("replay", "REPLAY LAG"),
    ("gap", "REPLAY GAP"),
)
REPLICA_COLUMNS = (
    ("receiver", "WAL RECEIVER"),
    ("receive", "RECEIVED LSN"),
    ("replay", "REPLAYED LSN"),
    ("gap", "UNREPLAYED"),
    ("lag", "LAG"),
    ("paused", "REPLAY"),
)
MIGRATION_COLUMNS = (
    ("rank", "RANK"),
    ("version", "VERSION"),
    ("description", "DESCRIPTION"),
    ("state", "STATE"),
    ("type", "TYPE"),
    ("ms", "TIME"),
)
QUERY_WIDTH = {"narrow": 30, "wide": 60}
_MIGRATION_STYLE = {
    MigrationState.FAILED: "bold red",
    MigrationState.PENDING: "yellow",
    MigrationState.MISSING: "magenta",
    MigrationState.FUTURE: "magenta",
}


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}s" if v < 100 else f"{v:.0f}s"


def _lag(v: float | None) -> str:
    return "no traffic" if v is None else f"{v:.3f}s"


def by_duration(sessions: tuple[Session, ...]) -> list[Session]:
    """Blocked sessions first, then the longest running active ones, then the rest."""
    return sorted(
        sessions,
        key=lambda s: (not s.blocked_by, s.state != "active", -(s.query_s or 0.0), s.pid),
    )


def session_cells(s: Session, layout: str) -> tuple[Any, ...]:
    blocked = Text(",".join(map(str, s.blocked_by)), style="bold red") if s.blocked_by else ""
    wait = Text(s.wait, style="yellow") if s.waiting else s.wait
    running = s.state == "active"
    return (
        str(s.pid),
        s.application or "—",
        s.state or "?",
        wait,
        _secs(s.query_s) if running else "—",
        blocked,
        sanitize_text(s.query, QUERY_WIDTH[layout]),
    )


class DatabaseDetail(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout_name = "narrow"
        self.shown: str | None = None  # the server drawn, for tests and the title

    def compose(self) -> ComposeResult:
        with TabbedContent(id="db-tabs", initial="db-activity"):
            with TabPane("Activity", id="db-activity"):
                yield DataTable(id="db-sessions", cursor_type="row")
            with TabPane("Replication", id="db-replication"):
                yield DataTable(id="db-standbys", cursor_type="row")
            with TabPane("Migrations", id="db-migrations"):
                yield DataTable(id="db-flyway", cursor_type="row")

    def on_mount(self) -> None:
        flyway: DataTable[Any] = self.query_one("#db-flyway", DataTable)
        for key, label in MIGRATION_COLUMNS:
            flyway.add_column(label, key=key)
        sessions: DataTable[Any] = self.query_one("#db-sessions", DataTable)
        for key, label in SESSION_COLUMNS:
            sessions.add_column(label, key=key)

    def show_tab(self, tab: str) -> None:
        self.query_one("#db-tabs", TabbedContent).active = f"db-{tab}"

    def show(self, s: ServerReading) -> None:
        self.shown = s.name
        self._sessions(s)
        self._replication(s)
        self._migrations(s)

    def _sessions(self, s: ServerReading) -> None:
        table: DataTable[Any] = self.query_one("#db-sessions", DataTable)
        table.clear()
        for session in by_duration(s.sessions):
            table.add_row(*session_cells(session, self.layout_name), key=str(session.pid))

    def _replication(self, s: ServerReading) -> None:
        table: DataTable[Any] = self.query_one("#db-standbys", DataTable)
        table.clear(columns=True)
        if s.replica is not None:
            for key, label in REPLICA_COLUMNS:
                table.add_column(label, key=key)
            r = s.replica
            table.add_row(
                r.receiver or "none",
                r.receive_lsn or "—",
                r.replay_lsn or "—",
                human_bytes(r.gap_bytes),
                f"{r.lag_s:.3f}s",
                Text("paused", style="magenta") if r.replay_paused else "running",
            )
            return
        for key, label in STANDBY_COLUMNS:
            table.add_column(label, key=key)
        for b in s.standbys:
            table.add_row(
                b.name,
                b.state,
                b.sync_state,
                _lag(b.write_lag_s),
                _lag(b.flush_lag_s),
                _lag(b.replay_lag_s),
                human_bytes(b.replay_gap_bytes),
                key=b.name,
            )

    def _migrations(self, s: ServerReading) -> None:
        table: DataTable[Any] = self.query_one("#db-flyway", DataTable)
        table.clear()
        if s.flyway is None:
            return
        for m in reversed(s.flyway.migrations):  # newest first: the one that matters at 3 a.m.
            state = Text(m.state.value, style=_MIGRATION_STYLE.get(m.state, ""))
            table.add_row(
                str(m.installed_rank) if m.installed_rank is not None else "",
                m.version or "(repeatable)",
                sanitize_text(m.description, 40),
                state,
                m.type,
                f"{m.execution_ms}ms" if m.execution_ms is not None else "",
            )
