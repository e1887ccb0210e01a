"""Production code does not depend on the test doubles: no module of a production package
imports the Exstream emulator or the Air Inc. simulator (the demo, tests and benchmarks may)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOUBLES = ("streams.emulator", "streams.simulator")
ALLOWED = ("streams/emulator", "streams/simulator", "streams/demo")
"""Packages that may use the doubles: the doubles themselves and the demo that runs them."""


def production_modules() -> list[Path]:
    files = [*(ROOT / "streams").rglob("*.py"), *(ROOT / "topology").rglob("*.py")]
    return sorted(
        f for f in files if not any(f.relative_to(ROOT).as_posix().startswith(a) for a in ALLOWED)
    )


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            found.update(a.value for a in node.args if isinstance(a, ast.Constant))
    return found


def offenders(paths: list[Path], root: Path = ROOT) -> list[str]:
    out = []
    for path in paths:
        for module in sorted(imported_modules(path)):
            if any(module == d or module.startswith(d + ".") for d in DOUBLES):
                out.append(f"{path.relative_to(root)} imports {module}")
    return out


def test_no_production_module_imports_the_emulator_or_the_simulator() -> None:
    modules = production_modules()
    assert len(modules) > 50  # the walk really found the packages
    assert offenders(modules) == []


def test_the_check_sees_every_import_form(tmp_path: Path) -> None:
    """The check would fail on each way a module can pull a double in."""
    cases = {
        "a.py": "from streams.simulator.generator import template_catalogue\n",
        "b.py": "import streams.emulator.server\n",
        "c.py": "def f():\n    from streams.emulator import runtime\n",
        "d.py": "import importlib\nimportlib.import_module('streams.simulator')\n",
        "e.py": "from streams import routing\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    found = offenders(sorted(tmp_path.glob("*.py")), tmp_path)
    assert sorted({line.split(" imports ")[0] for line in found}) == [
        "a.py",
        "b.py",
        "c.py",
        "d.py",
    ]
