"""✔backup ─ ✔migrate ─ ✔verify ─ 5% ─ 25% ─ [50%] ─ 100%: where the release is, in text
that reads without colour: the database steps first (when the release has them), then the
traffic phases."""

from __future__ import annotations

from rich.text import Text

from backends.release.models import DbStep, StepState
from widgets.steady import SteadyStatic

_STEP_MARK = {
    StepState.DONE: ("✔", "green"),
    StepState.SKIPPED: ("↷", "yellow"),
    StepState.RUNNING: ("…", "bold reverse"),
    StepState.FAILED: ("✖", "bold reverse red"),
    StepState.WAITING: ("", "dim"),
}


def stepper_text(
    phases: tuple[int, ...],
    current: int,
    *,
    done: bool = False,
    failed: bool = False,
    database: tuple[DbStep, ...] = (),
) -> Text:
    text = Text()
    for step in database:
        mark, style = _STEP_MARK[step.state]
        label = f"[{step.name}{mark}]" if step.state is StepState.RUNNING else f"{mark}{step.name}"
        if step.state is StepState.SKIPPED:
            label += " skipped"
        text.append(label, style=style)
        text.append(" ─ ", style="dim")
    # Until the database steps are through, no phase has begun.
    before = bool(database) and not all(s.state.finished for s in database)
    for i, weight in enumerate(phases):
        if i:
            text.append(" ─ ", style="dim")
        label = f"{weight}%"
        if before:
            text.append(label, style="dim")
        elif i < current or (done and i <= current):
            text.append(f"✔{label}", style="green")
        elif i == current:
            style = "bold reverse red" if failed else "bold reverse"
            text.append(f"[{label}]", style=style)
        else:
            text.append(label, style="dim")
    return text


class PhaseStepper(SteadyStatic):
    DEFAULT_CSS = """
    PhaseStepper {
        height: auto;
    }
    """

    def show(
        self,
        phases: tuple[int, ...],
        current: int,
        *,
        done: bool = False,
        failed: bool = False,
        database: tuple[DbStep, ...] = (),
    ) -> None:
        self.update(stepper_text(phases, current, done=done, failed=failed, database=database))
