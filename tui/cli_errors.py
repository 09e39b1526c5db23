"""The error every `bva` command raises for bad flags, files or values (one line on stderr,
exit 2): its own module so the command modules and the entry point share it without
importing each other."""

from __future__ import annotations

import argparse
from typing import NoReturn, Protocol, TypeAlias


class UsageError(Exception):
    """Bad flags, files or values: one line on stderr, exit 2."""


# What the entry point hands each command module to add its subcommand: the subparsers and
# the function that adds the environment flags (--env, --platform, ...) to a parser.
class Parser(argparse.ArgumentParser):
    """Every bva parser: a bad flag is a UsageError (one line, exit 2), not argparse's exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


Subcommands: TypeAlias = "argparse._SubParsersAction[Parser]"


class EnvFlags(Protocol):
    def __call__(self, p: argparse.ArgumentParser, *, sub: bool = False) -> None: ...


def positive_seconds(text: str) -> float:
    """An argparse type: a duration in seconds, greater than 0 (NaN refused too)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value
