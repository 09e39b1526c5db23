"""Starting a release from the Rollout screen: the confirmation says what will happen (the
phases, the database step, the checklist's verdict) and, where the environment requires a Go
and the checklist does not give one, a typed reason (journalled) comes first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from widgets.confirm import GiveReason, TypeToConfirm

if TYPE_CHECKING:
    from backends.platform import Platform
    from backends.release.models import DatabasePlan
    from screens.base import BvaScreen


def confirm_start(
    screen: BvaScreen,
    platform: Platform,
    chosen: list[str],
    version: str,
    database_plan: DatabasePlan | None,
) -> None:
    phases = platform.config.rollout_for(platform.env_name).phases
    steps = " → ".join(f"{w}%" for w in phases)
    body = f"Release {version} to {', '.join(chosen)} on {platform.env_name}, in phases {steps}."
    database = database_plan
    if database is not None:
        skip = " (backup skipped)" if database.no_backup_reason is not None else ""
        body += (
            f"\nFirst the database{skip}: backup, migrate {database.span}, verify; a failure "
            "stops the release before any service changes."
        )
    gate = screen.bva.checklist_gate(version)
    needed = "required here" if gate.required else "advised here"
    body += f"\nChecklist: {gate.words} (a Go is {needed})."

    def go(confirmed: bool | None, override: str = "") -> None:
        if confirmed:
            screen.bva.start_release(chosen, version, override)

    def confirm(override: str = "") -> None:
        screen.app.push_screen(
            TypeToConfirm("Start this release?", body, platform.env_name),
            lambda ok: go(ok, override),
        )

    if gate.required and not gate.go:
        # No Go where one is required: only a typed reason (journalled) goes on.
        def reasoned(reason: str | None) -> None:
            if reason:
                confirm(reason)

        screen.app.push_screen(
            GiveReason(
                "The checklist says NO-GO",
                f"{version} on {platform.env_name}: {gate.words}",
            ),
            reasoned,
        )
        return
    confirm()
