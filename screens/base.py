"""What every bva screen shares: the typed app, and the header it keeps up to date."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

from widgets.app_header import AppHeader

if TYPE_CHECKING:
    from backends.platform import Platform
    from tui.app import BvaApp


class BvaScreen(Screen[None]):
    @property
    def bva(self) -> BvaApp:
        from tui.app import BvaApp

        assert isinstance(self.app, BvaApp)
        return self.app

    def init_header(self) -> None:
        """What is known before the platform is open: names from the platform file."""
        header = self.query_one(AppHeader)
        header.platform = self.bva.platform_label
        header.environment = self.bva.environment_label
        header.read_only = self.bva.settings.read_only

    def header_live(self, platform: Platform) -> None:
        header = self.query_one(AppHeader)
        header.platform, header.environment = platform.name, platform.env_name
        header.production, header.read_only = platform.production, platform.read_only
        header.connected, header.connection = True, f"live · {platform.kube_target}"
