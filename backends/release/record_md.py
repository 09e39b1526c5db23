"""The release record as Markdown, rendered from its JSON document (the JSON is the source:
`bva release record --md` and the file beside it say the same)."""

from __future__ import annotations

from typing import Any

from backends.sanitize import sanitize_text


def _md(value: Any, limit: int = 300) -> str:
    text = sanitize_text("" if value is None else str(value), limit)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'") or "—"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def record_markdown(doc: dict[str, Any]) -> str:
    out = [f"# Release {_md(doc['release_id'])} — {_md(doc['outcome']['state'])}", ""]
    out += _summary(doc)
    out += _services(doc)
    out += _checklist(doc.get("checklist"))
    out += _database(doc.get("database"))
    out += _config(doc.get("config_changes") or {})
    out += _phases(doc.get("phases") or [], doc.get("strategy", ""))
    out += _rollback(doc.get("rollback") or {})
    return "\n".join(out).rstrip() + "\n"


def _summary(doc: dict[str, Any]) -> list[str]:
    outcome = doc["outcome"]
    ended = doc.get("ended_at") or "not over"
    rows = [
        ("Environment", doc["environment"]),
        ("Version", doc["version"]),
        ("Strategy", doc["strategy"]),
        ("Started", doc["started_at"]),
        ("Ended", ended),
        ("Duration", _duration(float(doc.get("duration_s") or 0))),
        ("Run by", f"{doc['who']['actor']} (driver {doc['who']['driver']})"),
        ("Outcome", outcome["state"] + (f": {outcome['reason']}" if outcome.get("reason") else "")),
    ]
    lines = ["| | |", "|---|---|", *[f"| {k} | {_md(v)} |" for k, v in rows], ""]
    return lines


def _services(doc: dict[str, Any]) -> list[str]:
    lines = [
        "## Services",
        "",
        "| Service | Deployment | Before | Now |",
        "|---|---|---|---|",
    ]
    for s in doc.get("services") or []:
        before = f"{s.get('from_image') or '?'} (revision {s.get('from_revision') or '?'})"
        now = (
            f"{s['now_image']} (revision {s.get('now_revision') or '?'})"
            if s.get("now_image")
            else "—"
        )
        lines.append(
            f"| {_md(s['service'])} | {_md(s['deployment'])} | {_md(before)} | {_md(now)} |"
        )
    return [*lines, ""]


def _checklist(section: dict[str, Any] | None) -> list[str]:
    lines = ["## Pre-deployment checklist", ""]
    if section is None:
        return [*lines, "Not run for this release.", ""]
    gate = section.get("gate")
    if gate is not None:
        need = "required" if gate["required"] else "not required"
        lines += [f"At start: {_md(gate['words'])} (a Go is {need} here).", ""]
    if section.get("override_reason"):
        lines += [f"**Started on a No-Go, overridden:** {_md(section['override_reason'])}", ""]
    report = section.get("report")
    if report is None:
        return [*lines, "No checklist result was kept.", ""]
    lines += [
        f"Checked {_md(report.get('taken_at'))}.",
        "",
        "| Section | Item | Result | Evidence | Signed by |",
        "|---|---|---|---|---|",
    ]
    for item in report.get("items") or []:
        signed = "; ".join(
            f"{s['who']} {s['at']}" + (f" ({s['comment']})" if s.get("comment") else "")
            for s in item.get("signoffs") or []
        )
        lines.append(
            f"| {_md(item['section'])} | {_md(item['title'])} | {_md(item['state'])} | "
            f"{_md(item.get('evidence'))} | {_md(signed)} |"
        )
    return [*lines, ""]


def _database(db: dict[str, Any] | None) -> list[str]:
    lines = ["## Database changes", ""]
    if db is None:
        return [*lines, "None: the release brought no migrations.", ""]
    lines += [f"Schema {_md(db['from'])} → {_md(db['to'])}.", ""]
    for m in db.get("migrations") or []:
        lines.append(f"- V{_md(m.get('version'))} {_md(m.get('description'))}")
    if db.get("no_backup_reason"):
        lines += ["", f"**Backup skipped:** {_md(db['no_backup_reason'])}"]
    if db.get("steps"):
        lines += ["", "| Step | State | Detail |", "|---|---|---|"]
        lines += [
            f"| {_md(s['step'])} | {_md(s['state'])} | {_md(s.get('detail'))} |"
            for s in db["steps"]
        ]
    return [*lines, ""]


def _config(changes: dict[str, Any]) -> list[str]:
    lines = ["## Configuration changes (pod template)", ""]
    if not changes:
        return [*lines, "No stable pod template changed.", ""]
    lines += ["| Service | Container | Field | Before | After |", "|---|---|---|---|---|"]
    for service, rows in changes.items():
        for c in rows:
            lines.append(
                f"| {_md(service)} | {_md(c['container'])} | {_md(c['field'])} | "
                f"{_md(c['from'])} | {_md(c['to'])} |"
            )
    return [*lines, ""]


def _phases(phases: list[dict[str, Any]], strategy: str) -> list[str]:
    lines = ["## Phases and gates", ""]
    if strategy != "canary":
        return [*lines, "A rolling update: no canary phases.", ""]
    if not phases:
        return [*lines, "No phase began.", ""]
    lines += [
        "| Phase | Weight | Started | Ended | Service | Gates (passed/failed/inconclusive, last) |"
    ]
    lines += ["|---|---|---|---|---|---|"]
    for p in phases:
        head = f"| {p['phase']} | {p['weight']}% | {_md(p['started_at'])} | {_md(p['ended_at'])} "
        gates = p.get("gates") or {}
        if not gates:
            lines.append(head + "| — | no sample |")
        for service, by_gate in gates.items():
            cells = []
            for gate, t in by_gate.items():
                last = "" if t.get("last") is None else f", {t['last']:g} {t.get('unit', '')}"
                cells.append(
                    f"{gate} {t['passed']}/{t['failed']}/{t['inconclusive']}{last.rstrip()}"
                )
            lines.append(head + f"| {_md(service)} | {_md('; '.join(cells), 600)} |")
    return [*lines, ""]


def _rollback(rb: dict[str, Any]) -> list[str]:
    lines = ["## Rollback procedure", ""]
    if rb.get("note"):
        lines += [_md(rb["note"]), ""]
    if rb.get("commands"):
        lines += ["```", *[sanitize_text(c, 300) for c in rb["commands"]], "```", ""]
    if rb.get("database"):
        lines += [f"Database: `{_md(rb['database'])}` (the services first, then the data).", ""]
    return lines
