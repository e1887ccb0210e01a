"""``air-exstream schemas check``: fail on a backward-incompatible schema change."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from streams.codec.compatibility import check_backward
from streams.codec.schemas import SchemaStore, schemas_dir


@click.group()
def schemas() -> None:
    """Avro schemas of the project's topics."""


@schemas.command()
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Schemas directory (default: the repository's schemas/).",
)
def check(root: Path | None) -> None:
    """Compare schemas/ with the newest release in schemas/released/.

    Exit 1 when a schema cannot read data written with its released version (a BACKWARD
    incompatible change) or a released schema was removed.
    """
    store = SchemaStore(root or schemas_dir())
    releases = store.released_versions()
    if not releases:
        raise click.ClickException(f"no released schemas under {store.root / 'released'}")
    latest = releases[-1]
    failures = 0
    checked = 0
    for old_path in sorted(latest.glob("*.avsc")):
        old = orjson.loads(old_path.read_bytes())
        new_path = store.root / old_path.name
        if not new_path.exists():
            click.echo(f"FAIL {old_path.name}: released in {latest.name} but removed")
            failures += 1
            continue
        new = orjson.loads(new_path.read_bytes())
        problems = check_backward(new, old)
        checked += 1
        for problem in problems:
            click.echo(f"FAIL {new_path.name}: {problem}")
        failures += len(problems)
    new_only = sorted(
        {p.name for p in store.root.glob("*.avsc")} - {p.name for p in latest.glob("*.avsc")}
    )
    for name in new_only:
        click.echo(f"new  {name}: not yet released")
    if failures:
        click.echo(f"{failures} backward-incompatible change(s) against release {latest.name}")
        raise SystemExit(1)
    click.echo(f"ok: {checked} schema(s) backward compatible with release {latest.name}")
