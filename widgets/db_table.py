"""The Health screen's Database panel: one row per PostgreSQL server (role, state, connections
against the pool and max_connections, replication lag with its trend, data age) and the
Flyway line under it. Rows update cell by cell, like the services table."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from backends.db.models import (
    DatabasePicture,
    ServerReading,
    ServerState,
    flyway_words,
    human_bytes,
)
from widgets.badges import SPARKS, age_text

_STATE: dict[ServerState, tuple[str, str]] = {
    ServerState.UP: ("✔ UP", "green"),
    ServerState.DEGRADED: ("! DEGRADED", "yellow"),
    ServerState.DOWN: ("✖ DOWN", "bold red"),
}
COLUMNS = {
    "narrow": (
        ("server", "DATABASE", 9),
        ("state", "STATE", 10),
        ("conns", "CONNS/POOL", 15),
        ("lag", "LAG", 17),
        ("age", "AGE", 3),
    ),
    "wide": (
        ("server", "DATABASE", 10),
        ("role", "ROLE", 7),
        ("state", "STATE", 10),
        ("conns", "CONNECTIONS (POOL · MAX)", 30),
        ("lag", "REPLICATION LAG", 36),
        ("age", "AGE", 5),
    ),
}
BAR = {"narrow": 5, "wide": 10}
SPARK = {"narrow": 0, "wide": 8}


def state_badge(state: ServerState) -> Text:
    label, style = _STATE[state]
    return Text(label, style=style)


def bar(pct: float, width: int, limit: float) -> Text:
    """A meter with the threshold's colour: over the line it reads red without colour too."""
    filled = max(0, min(width, round(pct / 100.0 * width)))
    style = "bold red" if pct > limit else "yellow" if pct > limit * 0.8 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    return text


def connections_cell(s: ServerReading, layout: str, limit: float) -> Text:
    c = s.connections
    if c is None or s.state is ServerState.DOWN:
        return Text("—", style="dim")
    text = bar(c.pool_pct, BAR[layout], limit)
    text.append(f" {c.total}/{c.pool_size} {c.pool_pct:.0f}%")
    if layout == "wide":
        text.append(f" · {c.total}/{c.max_connections}")
    return text


def lag_cell(s: ServerReading, layout: str, limit: float) -> Text:
    lag = s.lag_s
    if s.state is ServerState.DOWN:
        return Text("—", style="dim")
    if lag is None:
        quiet = "no traffic" if s.standbys else "—"
        return Text(quiet, style="dim")
    paused = s.replica is not None and s.replica.replay_paused
    text = Text("‖" if paused else " ", style="magenta")
    text.append(f"{lag:5.2f}s", style="bold red" if lag > limit else "")
    text.append(f" {human_bytes(s.gap_bytes)}")
    if paused and layout == "wide":
        text.append(" paused", style="magenta")
    width = SPARK[layout]
    if width:
        text.append(" " + lag_spark(s.lag_history, width, limit))
    return text


def lag_spark(values: tuple[float, ...], width: int, limit: float) -> str:
    """The lag's trend on a scale from 0 to the threshold (or beyond, if the lag went
    there): a few milliseconds of jitter stays flat instead of filling the cell."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    tail = [max(v, 0.0) for v in tail]  # a replica whose clock is behind reads negative
    top = max(limit, *tail)
    if top <= 0:
        return SPARKS[0] * len(tail)
    return "".join(SPARKS[min(int(v / top * (len(SPARKS) - 1) + 0.5), 7)] for v in tail)


def row_cells(
    s: ServerReading, layout: str, picture: DatabasePicture, now: float
) -> tuple[Any, ...]:
    age = age_text(now - s.last_good) if s.last_good else "—"
    cells: dict[str, Any] = {
        "server": s.name,
        "role": s.role.value,
        "state": state_badge(s.state),
        "conns": connections_cell(s, layout, picture.connections_pct_limit),
        "lag": lag_cell(s, layout, picture.lag_limit_s),
        "age": age,
    }
    return tuple(cells[key] for key, _, _ in COLUMNS[layout])


class DatabaseTable(DataTable[Any]):
    """The servers, in the platform file's order (primary first)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._layout = ""
        self._cells: dict[str, tuple[Any, ...]] = {}

    def set_layout(self, layout: str) -> None:
        if layout == self._layout:
            return
        self._layout = layout
        self.clear(columns=True)
        self._cells.clear()
        for key, label, width in COLUMNS[layout]:
            self.add_column(label, width=width, key=key)

    def show(self, picture: DatabasePicture, now: float) -> None:
        layout = self._layout or "narrow"
        keys = [key for key, _, _ in COLUMNS[layout]]
        for s in picture.servers:
            cells = row_cells(s, layout, picture, now)
            old = self._cells.get(s.name)
            if old is None:
                self.add_row(*cells, key=s.name)
            else:
                for key, new, prev in zip(keys, cells, old, strict=True):
                    if new != prev:
                        self.update_cell(s.name, key, new)
            self._cells[s.name] = cells

    @property
    def selected_server(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return str(row_key.value)


def flyway_line(picture: DatabasePicture) -> Text:
    primary = picture.primary
    fw = primary.flyway if primary is not None else None
    text = Text(" Flyway ", style="bold")
    if primary is None or primary.last_good is None:
        text.append("unknown (primary not read yet)", style="dim")
        return text
    words = flyway_words(fw)
    text.append(words, style="bold red" if fw is not None and fw.failed else "")
    return text
