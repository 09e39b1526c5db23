"""A Static that ignores an update with what it already shows."""

from __future__ import annotations

from textual.visual import VisualType
from textual.widgets import Static


class SteadyStatic(Static):
    """Screens redraw on a timer (ages move) and on each sweep; an update of a Static is a
    refresh and a new layout of the whole screen even when its text is the same, which was
    most of an idle console's CPU. Only a change is drawn."""

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        if content == self.content:
            return
        super().update(content, layout=layout)
