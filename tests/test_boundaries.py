"""Production code does not depend on the test doubles: no module of a production package
imports the Exstream emulator or the Air Inc. simulator (the demo, tests and benchmarks may)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from streams.errors import AirExstreamError

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


# ---- third-party internals live in the compat modules only

COMPAT = ("streams/aiokafka_compat.py",)
"""The modules allowed to touch private attributes of aiokafka objects."""
PUBLIC_UNDERSCORED = {
    "KafkaError._PARTITION_EOF",
    "KafkaError._AUTHENTICATION",
    "KafkaError._INVALID_ARG",
    "KafkaError._UNKNOWN_PARTITION",
    "KafkaError._UNKNOWN_TOPIC",
    "KafkaError._TIMED_OUT",
    "os._exit",
}
"""Names with a leading underscore that their library documents as public (librdkafka's local
error codes, ``os._exit``)."""


def foreign_private_accesses(path: Path) -> list[str]:
    """``x._name`` in ``path`` where ``x`` is not ``self``/``cls`` and no class of the same
    module sets ``self._name``: a private attribute of someone else's object."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            own.add(node.attr)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in own:
            continue
        owner = ast.unparse(node.value)
        if owner in ("self", "cls") or f"{owner}.{name}" in PUBLIC_UNDERSCORED:
            continue
        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {owner}.{name}")
    return found


def test_only_the_compat_modules_touch_third_party_internals() -> None:
    modules = [m for m in production_modules() if m.relative_to(ROOT).as_posix() not in COMPAT]
    assert [f for m in modules for f in foreign_private_accesses(m)] == []


def test_the_internals_check_sees_a_private_attribute_of_a_library_object(tmp_path: Path) -> None:
    inside = ROOT / "streams" / "routing"
    probe = inside / f"_probe_{tmp_path.name}.py"
    probe.write_text(
        "class Own:\n"
        "    def __init__(self) -> None:\n"
        "        self._mine = 1\n"
        "def f(consumer, other):\n"
        "    return consumer._committed_offset, other._mine, self_like._x\n"
    )
    try:
        found = foreign_private_accesses(probe)
    finally:
        probe.unlink()
    assert [f.split(": ", 1)[1] for f in found] == ["consumer._committed_offset", "self_like._x"]


@pytest.mark.parametrize(
    ("installed", "accepted"),
    [
        ("0.14.0", True),
        ("0.14.9", True),
        ("0.15.0", False),
    ],
)
def test_the_compat_module_refuses_a_release_it_was_not_read_against(
    installed: str, accepted: bool
) -> None:
    from streams import aiokafka_compat

    verify = aiokafka_compat.check_aiokafka_version
    if accepted:
        verify(installed)
        return
    with pytest.raises(AirExstreamError, match=f"{installed} is installed"):
        verify(installed)
