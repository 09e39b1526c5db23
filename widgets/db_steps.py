"""The release's database steps, one line each with what it did or is doing; a failure says
why and which backup to restore from."""

from __future__ import annotations

from rich.text import Text

from backends.release.models import DbStep, StepState
from backends.sanitize import sanitize_text
from widgets.steady import SteadyStatic

DB_STEP_STYLE = {
    StepState.WAITING: ("·", "dim"),
    StepState.RUNNING: ("…", "bold"),
    StepState.DONE: ("✔", "green"),
    StepState.SKIPPED: ("↷", "yellow"),
    StepState.FAILED: ("✖", "bold red"),
}


def steps_text(steps: tuple[DbStep, ...]) -> Text:
    """One line per database step with what it did or is doing (a failure says why and
    which backup to restore from)."""
    text = Text()
    for i, step in enumerate(steps):
        mark, style = DB_STEP_STYLE[step.state]
        if i:
            text.append("\n")
        text.append(f"{mark} {step.name:<8}", style=style)
        text.append(
            sanitize_text(step.detail, 300), style="red" if step.state is StepState.FAILED else ""
        )
    return text


class DatabaseSteps(SteadyStatic):
    DEFAULT_CSS = """
    DatabaseSteps {
        height: auto;
        padding: 0 1;
    }
    """

    def show(self, steps: tuple[DbStep, ...]) -> None:
        self.update(steps_text(steps))
