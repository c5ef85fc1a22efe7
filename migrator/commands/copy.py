"""CLI commands of the copy stage."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
