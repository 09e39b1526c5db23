"""The smallest Textual app worth a first frame: a Header, a Static and a Footer, nothing
loaded from the project. The Health benchmark launches it in tmux beside `bva` as the floor a
Textual 8 console's first frame stands on. Run as

    python tests/bench/bare_textual.py

`q` quits (ctrl+q too, as in any Textual app)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Static

# Printed in the Static: the benchmark's first-frame check looks for it on the screen.
MARKER = "bare-textual-first-frame"


class BareApp(App[None]):
    TITLE = "bare"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(MARKER)
        yield Footer()


if __name__ == "__main__":
    BareApp().run()
