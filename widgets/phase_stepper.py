"""5% ─ 25% ─ [50%] ─ 100%: where the release is, in text that reads without colour."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def stepper_text(
    phases: tuple[int, ...], current: int, *, done: bool = False, failed: bool = False
) -> Text:
    text = Text()
    for i, weight in enumerate(phases):
        if i:
            text.append(" ─ ", style="dim")
        label = f"{weight}%"
        if i < current or (done and i <= current):
            text.append(f"✔{label}", style="green")
        elif i == current:
            style = "bold reverse red" if failed else "bold reverse"
            text.append(f"[{label}]", style=style)
        else:
            text.append(label, style="dim")
    return text


class PhaseStepper(Static):
    DEFAULT_CSS = """
    PhaseStepper {
        height: 1;
    }
    """

    def show(
        self, phases: tuple[int, ...], current: int, *, done: bool = False, failed: bool = False
    ) -> None:
        self.update(stepper_text(phases, current, done=done, failed=failed))
