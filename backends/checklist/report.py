"""The checklist as `bva check` prints it: a line per item, the verdict last; as JSON for
scripts (versioned by "schema"; fields are only ever added); and as Markdown for the
release record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from backends.checklist.models import ChecklistReport, ItemResult, ItemState
from backends.sanitize import plural, sanitize_text

SCHEMA = "bva.check/v1"
MARK = {
    ItemState.PASS: "✔",
    ItemState.WARN: "!",
    ItemState.FAIL: "✖",
    ItemState.UNKNOWN: "?",
    ItemState.RUNNING: "…",
    ItemState.NOT_RUN: "·",
    ItemState.SIGNED: "✔",
    ItemState.UNSIGNED: "○",
}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def _took(r: ItemResult) -> str:
    return f"{r.duration_s:.1f}s" if r.duration_s is not None else ""


def report_lines(report: ChecklistReport) -> list[str]:
    width = max((len(r.title) for r in report.results), default=0)
    out: list[str] = []
    section = ""
    for r in report.results:
        if r.section != section:
            section = r.section
            out.append(f"{section}:")
        state = f"  {MARK[r.state]} {r.state.value:<8}"
        out.append(
            f"{state} {r.title:<{width}}  {_took(r):>5}  {sanitize_text(r.evidence, 200)}".rstrip()
        )
    v = report.verdict
    out.append(f"verdict: {v.word}" + ("" if v.go else f" ({plural(len(v.reasons), 'reason')})"))
    out += [f"  ✖ {sanitize_text(x, 200)}" for x in v.reasons]
    out += [f"  ! {sanitize_text(x, 200)}" for x in v.warnings]
    return out


def report_json(report: ChecklistReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "environment": report.environment,
        "version": report.version,
        "taken_at": _iso(report.taken_at),
        "require_go": report.require_go,
        "stale_after_s": report.stale_after_s,
        "verdict": {
            "go": report.verdict.go,
            "reasons": list(report.verdict.reasons),
            "warnings": list(report.verdict.warnings),
        },
        "items": [
            {
                "id": r.item,
                "section": r.section,
                "title": r.title,
                "kind": "check" if r.automated else "signoff",
                "state": r.state.value,
                "evidence": r.evidence,
                "duration_s": round(r.duration_s, 3) if r.duration_s is not None else None,
                "ran_at": _iso(r.ran_at),
                "required": r.required,
                "signoffs": [
                    {"who": s.who, "at": _iso(s.at), "comment": s.comment} for s in r.signoffs
                ],
            }
            for r in report.results
        ],
    }


def report_text_json(report: ChecklistReport) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False)


def _md(text: str) -> str:
    return sanitize_text(text, 300).replace("|", "\\|")


def report_markdown(report: ChecklistReport) -> str:
    v = report.verdict
    lines = [
        f"## Pre-deployment checklist — {v.word}",
        "",
        f"Environment `{report.environment}`, version `{report.version or '—'}`, "
        f"checked {_iso(report.taken_at)}.",
        "",
    ]
    for section in report.sections:
        lines += [f"### {section}", "", "| | Item | Result | Evidence |", "|---|---|---|---|"]
        for r in report.results:
            if r.section == section:
                box = "x" if r.state in (ItemState.PASS, ItemState.SIGNED) else " "
                lines.append(
                    f"| [{box}] | {_md(r.title)} | {r.state.value} {_took(r)} | {_md(r.evidence)} |"
                )
        lines.append("")
    if v.reasons:
        lines += ["**No-Go because:**", "", *[f"- {_md(x)}" for x in v.reasons], ""]
    if v.warnings:
        lines += ["**Warnings:**", "", *[f"- {_md(x)}" for x in v.warnings], ""]
    return "\n".join(lines)
