"""``oob mock serve``: run the mock BMC fleet (same as ``python -m oob_mock serve``)."""

from __future__ import annotations

import typer

mock_app = typer.Typer(help="The mock BMC fleet, for tests and rehearsals.", no_args_is_help=True)


@mock_app.command(
    "serve",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def serve_command(ctx: typer.Context) -> None:
    """Serve mock BMCs on loopback (see `oob mock serve --help`)."""
    from oob.mockfleet import mock_module

    raise typer.Exit(mock_module("cli").main(["serve", *ctx.args], prog="oob mock"))
