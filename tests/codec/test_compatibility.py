from __future__ import annotations

import copy
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams.codec.cli import schemas as schemas_cli
from streams.codec.compatibility import check_backward
from streams.codec.schemas import SchemaStore, schemas_dir

pytestmark = pytest.mark.unit


def rec(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "ns", "fields": list(fields)}


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


COMPATIBLE = [
    ("identical", rec(f("a", "string")), rec(f("a", "string"))),
    (
        "field added with default",
        rec(f("a", "string")),
        rec(f("a", "string"), f("b", "long", default=0)),
    ),
    (
        "optional field added",
        rec(f("a", "string")),
        rec(f("a", "string"), f("b", ["null", "string"], default=None)),
    ),
    ("field removed", rec(f("a", "string"), f("b", "long")), rec(f("a", "string"))),
    ("int promoted to long", rec(f("a", "int")), rec(f("a", "long"))),
    ("long promoted to double", rec(f("a", "long")), rec(f("a", "double"))),
    ("string to bytes", rec(f("a", "string")), rec(f("a", "bytes"))),
    ("made optional", rec(f("a", "string")), rec(f("a", ["null", "string"], default=None))),
    (
        "union branch added",
        rec(f("a", ["null", "string"])),
        rec(f("a", ["null", "string", "long"])),
    ),
    (
        "enum symbol added",
        rec(f("e", {"type": "enum", "name": "E", "symbols": ["A"]})),
        rec(f("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]})),
    ),
    (
        "enum symbol removed with default",
        rec(f("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]})),
        rec(f("e", {"type": "enum", "name": "E", "symbols": ["A"], "default": "A"})),
    ),
    ("renamed field with alias", rec(f("a", "string")), rec(f("b", "string", aliases=["a"]))),
    (
        "renamed record with alias",
        rec(f("a", "string"), name="Old"),
        {**rec(f("a", "string"), name="New"), "aliases": ["Old"]},
    ),
    (
        "map values promoted",
        rec(f("m", {"type": "map", "values": "int"})),
        rec(f("m", {"type": "map", "values": "long"})),
    ),
]

INCOMPATIBLE = [
    (
        "field added without default",
        rec(f("a", "string")),
        rec(f("a", "string"), f("b", "long")),
        "b: field added without a default",
    ),
    (
        "long narrowed to int",
        rec(f("a", "long")),
        rec(f("a", "int")),
        "a: type changed from long to int",
    ),
    (
        "string to long",
        rec(f("a", "string")),
        rec(f("a", "long")),
        "a: type changed from string to long",
    ),
    (
        "made required",
        rec(f("a", ["null", "string"], default=None)),
        rec(f("a", "string")),
        "a: type changed from null to string",
    ),
    (
        "union branch removed",
        rec(f("a", ["null", "string", "long"])),
        rec(f("a", ["null", "string"])),
        "no branch of the new union",
    ),
    (
        "enum symbol removed",
        rec(f("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]})),
        rec(f("e", {"type": "enum", "name": "E", "symbols": ["A"]})),
        "enum symbols removed without an enum default: B",
    ),
    (
        "record renamed",
        rec(f("a", "string"), name="Old"),
        rec(f("a", "string"), name="New"),
        "renamed from Old to New",
    ),
    (
        "array items changed",
        rec(f("l", {"type": "array", "items": "string"})),
        rec(f("l", {"type": "array", "items": "long"})),
        "l[]: type changed",
    ),
    (
        "nested field added",
        rec(f("n", rec(f("x", "string"), name="N"))),
        rec(f("n", rec(f("x", "string"), f("y", "string"), name="N"))),
        "n.y: field added without a default",
    ),
]


@pytest.mark.parametrize(("label", "old", "new"), COMPATIBLE, ids=[c[0] for c in COMPATIBLE])
def test_compatible_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    assert check_backward(new, old) == []


@pytest.mark.parametrize(
    ("label", "old", "new", "expected"), INCOMPATIBLE, ids=[c[0] for c in INCOMPATIBLE]
)
def test_incompatible_changes(
    label: str, old: dict[str, Any], new: dict[str, Any], expected: str
) -> None:
    problems = [str(p) for p in check_backward(new, old)]
    assert problems, f"{label} must be reported"
    assert any(expected in p for p in problems), problems


def test_every_project_schema_is_compatible_with_itself() -> None:
    for path in schemas_dir().glob("*.avsc"):
        schema = json.loads(path.read_text())
        assert check_backward(schema, copy.deepcopy(schema)) == [], path.name


def _copy_schemas(tmp_path: Path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), root)
    return root


def test_cli_passes_on_the_repository_schemas() -> None:
    result = CliRunner().invoke(schemas_cli, ["check"])
    assert result.exit_code == 0, result.output
    assert "backward compatible" in result.output


def test_cli_fails_on_an_incompatible_change(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    path = root / "composition_command.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "priority_class", "type": "string", "doc": "new"})
    path.write_text(json.dumps(schema))
    result = CliRunner().invoke(schemas_cli, ["check", "--dir", str(root)])
    assert result.exit_code == 1
    assert (
        "composition_command.avsc: priority_class: field added without a default" in result.output
    )


def test_cli_fails_when_a_released_schema_is_removed(tmp_path: Path) -> None:
    root = _copy_schemas(tmp_path)
    (root / "dead_letter.avsc").unlink()
    result = CliRunner().invoke(schemas_cli, ["check", "--dir", str(root)])
    assert result.exit_code == 1
    latest = SchemaStore(root).released_versions()[-1].name
    assert f"dead_letter.avsc: released in {latest} but removed" in result.output


def test_each_release_reads_the_data_of_the_release_before() -> None:
    """The CLI compares schemas/ with the newest release only; the releases themselves must
    form a backward-compatible chain (release 2 added DocumentRequest.fields with a default)."""
    releases = SchemaStore(schemas_dir()).released_versions()
    assert [r.name for r in releases][:2] == ["1", "2"]
    for old, new in itertools.pairwise(releases):
        for old_path in sorted(old.glob("*.avsc")):
            new_path = new / old_path.name
            assert new_path.exists(), f"{old_path.name} released in {old.name}, not in {new.name}"
            problems = check_backward(
                json.loads(new_path.read_text()), json.loads(old_path.read_text())
            )
            assert problems == [], (old.name, new.name, old_path.name, problems)
