"""A release gate's reading as the Rollout screen's table cells: its value, its limit and its
result, in words that read without colour."""

from __future__ import annotations

from backends.release.models import GateReading, GateResult

RESULT_STYLE = {
    GateResult.PASSED: ("✔ pass", "green"),
    GateResult.FAILED: ("✖ FAIL", "bold red"),
    GateResult.INCONCLUSIVE: ("? no data", "yellow"),
}


def gate_cells(last: GateReading | None) -> tuple[str, str]:
    if last is None:
        return "—", "—"
    if last.unit == "pods":
        return f"{last.value or 0:.0f}/{last.threshold:.0f} ready", "all ready"
    if last.value is None:
        value = "no data"
    elif last.unit == "%":
        value = f"{last.value:.1f}%"
    elif last.unit == "ms":
        value = f"{last.value:.0f} ms"
    else:
        value = f"{last.value:.0f}"
    limit = {"%": f"< {last.threshold:g}%", "ms": f"< {last.threshold:g} ms"}.get(
        last.unit, f"≤ {last.threshold:g}"
    )
    return value, limit
