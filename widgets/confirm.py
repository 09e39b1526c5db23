"""Typed confirmations: a destructive step happens only after its target's name is typed.
Escape always goes back, bare Enter never confirms anything by itself."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class TypeToConfirm(ModalScreen[bool]):
    DEFAULT_CSS = """
    TypeToConfirm {
        align: center middle;
    }
    TypeToConfirm > Vertical {
        width: 72;
        max-width: 95%;
        height: auto;
        border: thick $error;
        background: $surface;
        padding: 1 2;
    }
    TypeToConfirm #confirm-error {
        color: $error;
        height: auto;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back", id="confirm.cancel"),
    ]

    def __init__(self, title: str, body: str, expected: str) -> None:
        super().__init__()
        self._title = title
        self._body = body
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self._title, style="bold"))
            yield Static(Text(self._body), id="confirm-body")
            yield Static(
                Text.assemble(
                    "Type ",
                    (self.expected, "bold reverse"),
                    " to confirm, or press Escape to go back.",
                )
            )
            yield Input(placeholder=self.expected, id="confirm-input")
            yield Static("", id="confirm-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#confirm-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)
        else:
            self.query_one("#confirm-error", Static).update(
                f"That is not {self.expected!r}: nothing was done."
            )
            event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)


class YesNo(ModalScreen[bool]):
    """A non-destructive question: y answers yes, n or Escape answers no."""

    DEFAULT_CSS = """
    YesNo {
        align: center middle;
    }
    YesNo > Static {
        width: 64;
        max-width: 95%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="yesno.yes"),
        Binding("n,escape", "answer(False)", "No", id="yesno.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self._question = question

    def compose(self) -> ComposeResult:
        yield Static(Text(self._question + "\n\n[y] yes   [n] no"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class GiveReason(ModalScreen[str | None]):
    """Going on against advice (a No-Go checklist): the reason is typed, then journalled.
    Escape goes back; a reason of a word or two is refused."""

    DEFAULT_CSS = """
    GiveReason {
        align: center middle;
    }
    GiveReason > Vertical {
        width: 76;
        max-width: 95%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    GiveReason #reason-error {
        color: $error;
        height: auto;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back", id="reason.cancel"),
    ]
    MIN_CHARS = 12

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self._title = title
        self._body = body

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self._title, style="bold"))
            yield Static(Text(self._body), id="reason-body")
            yield Static("Type why it should go ahead anyway (it is journalled), or Escape.")
            yield Input(placeholder="the reason", id="reason-input")
            yield Static("", id="reason-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#reason-input")
    def _submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if len(reason) < self.MIN_CHARS:
            self.query_one("#reason-error", Static).update(
                f"Say more (at least {self.MIN_CHARS} characters): nothing was done."
            )
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
