"""Signing one checklist item: the name (remembered for the session) and an optional
comment; Escape goes back without signing."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from backends.sanitize import sanitize_text


class SignStep(ModalScreen[tuple[str, str] | None]):
    DEFAULT_CSS = """
    SignStep {
        align: center middle;
    }
    SignStep > Vertical {
        width: 76;
        max-width: 96%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="sign.back"),
    ]

    def __init__(self, title: str, version: str, who: str) -> None:
        super().__init__()
        self._title = title
        self._version = version
        self._who = who

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Sign off", style="bold"))
            yield Static(
                f"{sanitize_text(self._title, 80)}, for {sanitize_text(self._version, 60)}: "
                "your name goes on it, with the time, in the cluster and the journal."
            )
            yield Input(value=self._who, placeholder="your name", id="sign-who")
            yield Input(placeholder="comment (optional): e.g. CI run 4411 green", id="sign-comment")
            yield Static("enter signs · esc back", classes="step-help")

    def on_mount(self) -> None:
        self.query_one("#sign-comment" if self._who else "#sign-who", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        who = self.query_one("#sign-who", Input).value.strip()
        if event.input.id == "sign-who" and who:
            self.query_one("#sign-comment", Input).focus()
            return
        if not who:
            self.notify("type your name: a sign-off is someone's word", severity="error")
            self.query_one("#sign-who", Input).focus()
            return
        self.dismiss((who, self.query_one("#sign-comment", Input).value.strip()))

    def action_back(self) -> None:
        self.dismiss(None)
