"""The error every `bva` command raises for bad flags, files or values (one line on stderr,
exit 2): its own module so the command modules and the entry point share it without
importing each other."""

from __future__ import annotations


class UsageError(Exception):
    """Bad flags, files or values: one line on stderr, exit 2."""
