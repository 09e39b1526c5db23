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


def test_sandbox_and_adapters_do_not_import_each_other() -> None:
    sandbox = ROOT / "backends" / "sandbox"
    allowed_outside = {"backends.sandbox_state", "backends.config"}
    for path in sandbox.rglob("*.py"):
        for name in _imports(path):
            if name.startswith("backends.") and not name.startswith("backends.sandbox"):
                assert name in allowed_outside, f"{path.name} imports adapter module {name}"
    for path in (ROOT / "backends").glob("*.py"):
        assert not any(
            n == "backends.sandbox" or n.startswith("backends.sandbox.")
            for n in _imports(path)
            if path.name != "sandbox_state.py"
        ), f"{path.name} imports the sandbox"


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
