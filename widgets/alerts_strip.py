"""The alerts that apply now, one per line, worst first; a calm line when there are none."""

from __future__ import annotations

from rich.text import Text

from backends.sanitize import sanitize_text
from backends.status.monitor import Alert, AlertLevel
from widgets.steady import SteadyStatic

MAX_LINES = 3


class AlertsStrip(SteadyStatic):
    DEFAULT_CSS = """
    AlertsStrip {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $boost;
    }
    AlertsStrip.-alerting {
        background: $error 20%;
    }
    """

    def show(self, alerts: tuple[Alert, ...]) -> None:
        self.set_class(bool(alerts), "-alerting")
        if not alerts:
            self.update(Text("✔ no alerts", style="green"))
            return
        ordered = sorted(alerts, key=lambda a: a.level is not AlertLevel.CRITICAL)
        text = Text()
        for i, alert in enumerate(ordered[:MAX_LINES]):
            if i:
                text.append("\n")
            critical = alert.level is AlertLevel.CRITICAL
            text.append(
                "✖ CRITICAL " if critical else "! WARNING  ",
                style="bold red" if critical else "bold yellow",
            )
            text.append(sanitize_text(alert.message, 160))
        if len(ordered) > MAX_LINES:
            text.append(f"\n  … and {len(ordered) - MAX_LINES} more", style="dim")
        self.update(text)
