"""Errors every adapter raises: one line of text a human can act on, never a traceback."""

from __future__ import annotations


class BvaError(Exception):
    """Base of every error shown to the user; ``str()`` is a single line."""

    def __init__(self, message: str) -> None:
        # Server messages can span lines; the UI and the CLI promise one line.
        one_line = " ".join(message.split())
        super().__init__(one_line)
        self.message = one_line


class ReadOnlyError(BvaError):
    """A mutation was asked of a read-only adapter; nothing was sent."""


class SourceUnavailable(BvaError):
    """The external system could not be reached (refused, timed out, reset)."""


class NotFound(BvaError):
    """The named object does not exist (HTTP 404)."""


class Conflict(BvaError):
    """The write lost a race or the object already exists (HTTP 409)."""


class RolloutRefused(BvaError):
    """A rollout action was refused by the rules (paused undo, unknown revision, ...)."""
