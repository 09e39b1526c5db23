"""Label and field selectors with the API server's syntax (equality- and set-based)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]


class SelectorError(ValueError):
    pass


_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)\s*$")


def _label_eq(key: str, value: str, want: bool, labels: Mapping[str, str]) -> bool:
    return (labels.get(key) == value) == want


def _label_in(key: str, allowed: frozenset[str], want: bool, labels: Mapping[str, str]) -> bool:
    return (labels.get(key) in allowed) == want


def _label_exists(key: str, want: bool, labels: Mapping[str, str]) -> bool:
    return (key in labels) == want


def _field_eq(path: str, value: str, want: bool, obj: Obj) -> bool:
    return (_field(obj, path) == value) == want


def _split_terms(text: str) -> list[str]:
    # Commas inside "in (a,b)" belong to the term, not the selector.
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def parse_label_selector(text: str | None) -> Predicate:
    if not text:
        return lambda _o: True
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if m:
            key, op, val = m.groups()
            checks.append(functools.partial(_label_eq, key, val, op != "!="))
            continue
        m = _SET_RE.match(term)
        if not m:
            raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
        neg, key, op, values = m.groups()
        if op:
            if neg:
                raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
            allowed = frozenset(v.strip() for v in values.split(",") if v.strip())
            checks.append(functools.partial(_label_in, key, allowed, op == "in"))
        else:
            checks.append(functools.partial(_label_exists, key, not neg))

    def match(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(c(labels) for c in checks)

    return match


def _field(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None) -> Predicate:
    if not text:
        return lambda _o: True
    checks: list[Predicate] = []
    for term in _split_terms(text):
        m = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not m:
            raise SelectorError(f"invalid field selector: {term.strip()!r}")
        path, op, val = m.groups()
        checks.append(functools.partial(_field_eq, path, val, op != "!="))
    return lambda o: all(c(o) for c in checks)


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object (matchLabels/matchExpressions) as query syntax."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, vals = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
