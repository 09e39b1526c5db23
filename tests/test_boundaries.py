"""DESIGN.md's boundaries, enforced: backends never import the UI; screens and widgets never
import the SDKs; the sandbox and the adapters never import each other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI = ("textual", "tui", "screens", "widgets")
SDKS = ("kubernetes", "docker", "psycopg", "httpx", "aiohttp")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _py(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _py("backends"), ids=lambda p: str(p.relative_to(ROOT)))
def test_backends_never_import_the_ui(path: Path) -> None:
    bad = {n for n in _imports(path) if _top(n) in UI}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "path", _py("screens") + _py("widgets"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_ui_never_imports_sdks(path: Path) -> None:
    bad = {n for n in _imports(path) if _top(n) in SDKS}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_sandbox_imports_only_the_platform_schema() -> None:
    """The sandbox is the world on the other side of the wire: it may read the platform file,
    never an adapter."""
    for path in _py("backends/sandbox"):
        for name in _imports(path):
            if _top(name) == "backends":
                assert name.startswith(("backends.sandbox", "backends.config")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )


def test_no_adapter_imports_the_sandbox() -> None:
    """Only the Platform facade reads where a running sandbox announced itself."""
    for path in _py("backends"):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "sandbox":
            continue
        for name in _imports(path):
            if name == "backends.sandbox" or name.startswith("backends.sandbox."):
                assert (str(rel), name) == ("backends/platform.py", "backends.sandbox.state"), (
                    f"{rel} imports {name}"
                )


def test_importing_all_backends_loads_no_ui() -> None:
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in _py("backends")
        if p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {UI!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


# What a screen or widget may import from backends: contracts, models and the facade. Never an
# adapter (kube/, health.prober, metrics.scrape, …) or an engine's insides.
UI_MAY_IMPORT = {
    "backends.errors",
    "backends.sanitize",
    "backends.models",
    "backends.orchestrator",
    "backends.sources",
    "backends.platform",
    "backends.db.models",
    "backends.db.restore_models",
    "backends.checklist.models",
    "backends.health.models",
    "backends.logs.models",
    "backends.metrics.source",
    "backends.release.models",
    "backends.rollback.models",
    "backends.status.monitor",
}


@pytest.mark.parametrize(
    "path", _py("screens") + _py("widgets"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_ui_imports_only_contracts_and_models(path: Path) -> None:
    names = _imports(path)
    bad = {n for n in names if _top(n) == "backends" and n not in UI_MAY_IMPORT}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    assert not {n for n in names if _top(n) == "tui"}, f"{path.relative_to(ROOT)} imports tui"


def test_no_import_cycle_among_the_cli_modules() -> None:
    modules = {p.stem: p for p in (ROOT / "tui").glob("cli*.py")}
    edges = {
        name: {n.split(".", 1)[1] for n in _imports(p) if n.startswith("tui.cli")}
        for name, p in modules.items()
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, set()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cyclic = sorted(name for name in edges if reaches(name, name, {name}))
    assert not cyclic, f"import cycle among {cyclic}"


_CODE = ("backends", "screens", "tui", "widgets")


@pytest.mark.parametrize(
    "path",
    [p for folder in _CODE for p in _py(folder)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_long_modules_say_why_at_the_top(path: Path) -> None:
    lines = path.read_text().count("\n")
    if lines <= 500:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "Over 500 lines" in doc, (
        f"{path.relative_to(ROOT)} has {lines} lines: split it by job, or say at its top "
        '("Over 500 lines ...") why it is one module'
    )
