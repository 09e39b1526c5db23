"""Colour for log lines that are plain text: the level (also spelled out), a stable colour per
pod, the canary marker, search matches. Nothing in a line is ever read as markup."""

from __future__ import annotations

import re
import zlib

from rich.highlighter import Highlighter
from rich.text import Text

POD_COLOURS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
)
LEVEL_STYLE = {
    "FATAL": "bold reverse red",
    "ERROR": "bold red",
    "WARN": "yellow",
    "INFO": "green",
    "DEBUG": "dim",
    "TRACE": "dim",
}
_HEAD = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d\.\d{3} )?(?P<pod>\S+) (?P<canary>\[canary\] )?"
    r"(?P<level>FATAL|ERROR|WARN |INFO |DEBUG|TRACE|  ·  )"
)


def pod_colour(pod: str) -> str:
    return POD_COLOURS[zlib.crc32(pod.encode()) % len(POD_COLOURS)]


class LogHighlighter(Highlighter):
    def __init__(self) -> None:
        self.search: re.Pattern[str] | None = None

    def highlight(self, text: Text) -> None:
        plain = text.plain
        m = _HEAD.match(plain)
        if m:
            if m.group("time"):
                text.stylize("dim", *m.span("time"))
            text.stylize(pod_colour(m.group("pod")), *m.span("pod"))
            if m.group("canary"):
                text.stylize("bold magenta", *m.span("canary"))
            level = m.group("level").strip()
            if level in LEVEL_STYLE:
                text.stylize(LEVEL_STYLE[level], *m.span("level"))
        if self.search is not None:
            for hit in self.search.finditer(plain):
                if hit.end() > hit.start():
                    text.stylize("reverse", hit.start(), hit.end())
