"""The ``oob`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from oob import __version__
from oob.cli.bmc import bmc_app
from oob.cli.crash import crash_command
from oob.cli.demo import demo_command
from oob.cli.drill import drill_command
from oob.cli.inventory import inventory_app
from oob.cli.mock import mock_app
from oob.cli.nmi import nmi_command
from oob.cli.power import power_command
from oob.cli.preflight import preflight_command
from oob.cli.watch import watch_command

app = typer.Typer(
    name="oob",
    help="Unstick hung Linux servers: NMI through the BMC, then collect the kdump.",
    no_args_is_help=True,
    # never print local variables: they may hold credentials
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oob {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Unstick hung Linux servers: NMI through the BMC, then collect the kdump."""


app.command("crash")(crash_command)
app.command("nmi")(nmi_command)
app.command("power")(power_command)
app.command("watch")(watch_command)
app.command("demo")(demo_command)
app.command("preflight")(preflight_command)
app.command("drill")(drill_command)
app.add_typer(bmc_app, name="bmc")
app.add_typer(inventory_app, name="inventory")
app.add_typer(mock_app, name="mock")


def main() -> None:
    app()
