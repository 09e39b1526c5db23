"""Make text from the outside world safe to put on a terminal as one line.

Every control character is replaced by a visible escape (ESC -> ``\\x1b``) instead of parsing
and dropping whole ESC/CSI/OSC/DCS sequences: a parser can be fooled by a malformed or
truncated sequence, while escaping each control byte makes every sequence inert whatever its
shape, and leaves the evidence visible to the engineer. The 8-bit C1 introducers (CSI 0x9b,
OSC 0x9d, DCS 0x90, ST 0x9c) are control characters too, as are DEL and the Unicode
bidirectional overrides that can make a line read differently from what it contains.
"""

from __future__ import annotations

import re

__all__ = ["is_printable", "sanitize_text"]

ELLIPSIS = "…"

# C0, DEL, C1; line/paragraph separators (str.splitlines breaks on them); bidi embeddings,
# overrides and isolates; lone surrogates (from surrogateescape decoding), which would make
# the terminal's encoder raise.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NEWLINES = re.compile("\r\n|[\n\r\u2028\u2029\x0b\x0c\x1c\x1d\x1e\x85]")


def is_printable(s: str) -> bool:
    """True when ``s`` holds nothing ``sanitize_text`` would escape or replace: lets hot
    paths (log lines) skip the per-character work for the usual, clean text.

    ``str.isprintable`` is false for every character ``_UNSAFE`` matches (all are Unicode
    Cc, Cf, Zl, Zp or Cs), and about twice as fast, so it answers first.
    """
    return s.isprintable() or _UNSAFE.search(s) is None


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def sanitize_text(s: str, limit: int = 200, *, newline: str = "⏎", tab: str = " ") -> str:
    """``s`` as one printable line of at most ``limit`` characters.

    Line breaks become ``newline`` and tabs ``tab`` (both must be printable); every other
    control character becomes its ``\\xNN`` escape. A cut line ends with "…"; an escape is
    never cut in half.
    """
    if limit <= 0:
        return ""
    # Each input character yields at least one output character, so anything past `limit`
    # input characters cannot survive the cut: bounds the work on huge inputs.
    head = s[: limit + 1]
    if _UNSAFE.search(head) is None:
        return head if len(head) <= limit else head[: limit - 1] + ELLIPSIS
    head = _NEWLINES.sub("\n", head)
    pieces: list[str] = []
    for char in head:
        if char == "\n":
            pieces.append(newline)
        elif char == "\t":
            pieces.append(tab)
        elif _UNSAFE.match(char):
            pieces.append(_escape(char))
        else:
            pieces.append(char)
    return _fit(pieces, limit, truncated=len(s) > limit + 1)


def _fit(pieces: list[str], limit: int, *, truncated: bool) -> str:
    total = sum(len(p) for p in pieces)
    if total <= limit and not truncated:
        return "".join(pieces)
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS


def plural(n: int, word: str) -> str:
    """ "1 reason", "2 reasons": a count in words a person reads."""
    return f"{n} {word}" + ("" if n == 1 else "s")
