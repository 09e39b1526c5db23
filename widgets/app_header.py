"""One line that says where you are: platform, environment (production cannot be missed, in
words as well as colour), connection state and READ-ONLY."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class AppHeader(Widget):
    DEFAULT_CSS = """
    AppHeader {
        height: 1;
        background: $panel;
        color: $text;
    }
    AppHeader.-production {
        background: $error 40%;
    }
    """

    platform: reactive[str] = reactive("")
    environment: reactive[str] = reactive("")
    production: reactive[bool] = reactive(False)
    read_only: reactive[bool] = reactive(False)
    connection: reactive[str] = reactive("connecting…")
    connected: reactive[bool | None] = reactive(None)

    def watch_production(self, production: bool) -> None:
        self.set_class(production, "-production")

    def render(self) -> Text:
        text = Text(" bva ", style="bold reverse")
        text.append(f" {self.platform} ", style="bold")
        text.append("· ")
        if self.production:
            label = (
                "PRODUCTION"
                if self.environment.lower() == "production"
                else (f"PRODUCTION ({self.environment})")
            )
            text.append(f" ⚠ {label} ", style="bold reverse red")
        else:
            text.append(f"{self.environment}", style="bold")
        if self.read_only:
            text.append(" ")
            text.append(" READ-ONLY ", style="bold reverse yellow")
        text.append(" · ")
        if self.connected is None:
            text.append(f"… {self.connection}", style="yellow")
        elif self.connected:
            text.append(f"● {self.connection}", style="green")
        else:
            text.append(f"✖ {self.connection}", style="bold red")
        return text
