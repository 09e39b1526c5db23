"""Health and rollout states as text that reads without colour: a symbol and a word, with
colour only as a second channel (16-colour terminals, NO_COLOR, screen readers)."""

from __future__ import annotations

from rich.text import Text

from backends.health.models import ProbeStatus
from backends.models import RolloutState, RolloutStatus

_HEALTH: dict[ProbeStatus, tuple[str, str]] = {
    ProbeStatus.UP: ("✔ UP", "green"),
    ProbeStatus.DOWN: ("✖ DOWN", "bold red"),
    ProbeStatus.OUT_OF_SERVICE: ("✖ OUT", "bold red"),
    ProbeStatus.UNREACHABLE: ("✖ UNREACH", "bold red"),
    ProbeStatus.UNKNOWN: ("? UNKNOWN", "yellow"),
}

_ROLLOUT: dict[RolloutState, str] = {
    RolloutState.COMPLETE: "green",
    RolloutState.PROGRESSING: "yellow",
    RolloutState.PAUSED: "magenta",
    RolloutState.FAILED: "bold red",
}

SPARKS = "▁▂▃▄▅▆▇█"


def health_badge(status: ProbeStatus) -> Text:
    label, style = _HEALTH[status]
    return Text(label, style=style)


def rollout_badge(status: RolloutStatus | None, text: str) -> Text:
    if status is None:
        return Text(text, style="dim")
    prefix = {"complete": "✔ ", "failed": "✖ ", "paused": "‖ "}.get(status.state.value, "↻ ")
    return Text(prefix + text, style=_ROLLOUT[status.state])


def sparkline(values: tuple[float, ...] | list[float], width: int = 8) -> str:
    """The last ``width`` values as block characters, scaled to their own range."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    lo, hi = min(tail), max(tail)
    span = hi - lo
    if span <= 0:
        return SPARKS[0] * len(tail)
    return "".join(SPARKS[min(int((v - lo) / span * (len(SPARKS) - 1) + 0.5), 7)] for v in tail)


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"
