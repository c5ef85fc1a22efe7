"""`migrator schema convert`: offline conversion of a DDL dump (issue 9)."""

from __future__ import annotations

import click


@click.command("convert")
@click.argument("dump", type=click.Path(exists=True, dir_okay=False))
def convert_command(dump: str) -> None:
    """Convert a mysqldump --no-data script for the target (not built yet)."""
    raise click.ClickException("schema convert is not built yet")
