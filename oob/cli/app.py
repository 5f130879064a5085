"""The ``oob`` command.

Beyond Typer: usage errors are one line (``oob: error: ...``, exit 2) like every other
error; the global options (``-v``, ``--json``, ``--insecure``, ``-y``, ``-n``, ``-i FILE``)
may come before the command (``oob -v nmi web01``); and the help shows no framework
internals (``<list[str]>``, ``{TARGET}...``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from oob import __version__
from oob.cli import analyze, crash, drill, dump, nmi, power, preflight, watch
from oob.cli.analyze import analyze_command
from oob.cli.bmc import bmc_app
from oob.cli.crash import crash_command
from oob.cli.demo import demo_command
from oob.cli.drill import drill_command
from oob.cli.dump import dump_command
from oob.cli.inventory import inventory_app
from oob.cli.mock import mock_app
from oob.cli.nmi import nmi_command
from oob.cli.power import power_command
from oob.cli.preflight import preflight_command
from oob.cli.watch import watch_command

app = typer.Typer(
    name="oob",
    help="Unstick hung Linux servers: NMI through the BMC, then collect the kdump.\n\n"
    "Hosts are named by selectors: names (web01), globs (web*), @group, ranges (node[01-20]), "
    "comma lists (web01,db02) or all; from the inventory (-i FILE or $OOB_INVENTORY), or one "
    "host on the command line with --bmc URL.  Global options (-v, --json, --insecure, -y, -n, "
    "-i FILE) may come before the command.  Shell completion: oob --install-completion.",
    no_args_is_help=True,
    # never print local variables: they may hold credentials
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    # `oob --install-completion` / `--show-completion` (bash, zsh, fish, PowerShell)
    add_completion=True,
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
    """Unstick hung Linux servers: NMI through the BMC, then collect the kdump.

    Hosts are named by selectors: names (web01), globs (web*), @group, ranges
    (node[01-20]), comma lists (web01,db02) or all; from the inventory (-i FILE or
    $OOB_INVENTORY), or one host on the command line with --bmc URL.  Global options
    (-v, --json, --insecure, -y, -n, -i FILE) may come before the command.
    """


app.command("crash", epilog=crash.EPILOG)(crash_command)
app.command("nmi", epilog=nmi.EPILOG)(nmi_command)
app.command("power", epilog=power.EPILOG)(power_command)
app.command("watch", epilog=watch.EPILOG)(watch_command)
app.command("analyze", epilog=analyze.EPILOG)(analyze_command)
app.command("demo")(demo_command)
app.command("preflight", epilog=preflight.EPILOG)(preflight_command)
app.command("drill", epilog=drill.EPILOG)(drill_command)
app.command("dump", epilog=dump.EPILOG)(dump_command)
app.add_typer(bmc_app, name="bmc")
app.add_typer(inventory_app, name="inventory")
app.add_typer(mock_app, name="mock")

#: options every command that has them also takes before its name; value: takes an argument
GLOBAL_OPTIONS: dict[str, bool] = {
    "-v": False,
    "--verbose": False,
    "--json": False,
    "--insecure": False,
    "-y": False,
    "--yes": False,
    "-n": False,
    "--dry-run": False,
    "-i": True,
    "--inventory": True,
}
#: commands that have subcommands: the global options go after both words
GROUPS = ("bmc", "inventory", "mock")


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """``oob -v nmi web01`` -> ``oob nmi -v web01``: leading global options move after the
    command (and subcommand) name, where Click looks for them.  Anything else stays put."""
    args = list(args)
    leading: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        name = word.split("=", 1)[0] if word.startswith("--") else word
        short_with_value = word[:2] == "-i" and len(word) > 2
        if name not in GLOBAL_OPTIONS and not short_with_value:
            break
        takes_value = GLOBAL_OPTIONS.get(name, False) and "=" not in word and not short_with_value
        if takes_value and index + 1 < len(args):
            leading.extend(args[index : index + 2])
            index += 2
        else:
            leading.append(word)
            index += 1
    rest = args[index:]
    if not leading or not rest or rest[0].startswith("-"):
        return args
    depth = 2 if rest[0] in GROUPS and len(rest) > 1 and not rest[1].startswith("-") else 1
    return [*rest[:depth], *leading, *rest[depth:]]


def _clean_arguments(command: Any) -> None:
    """Arguments shown as their metavar (``TARGET...``): never Typer's ``<list[str]>`` nor
    ``{TARGET}...``."""
    import typer.core

    class CleanArgument(typer.core.TyperArgument):
        def _usage_display_name(self) -> str:
            shown = self.metavar or self.display_name_raw
            return shown if self.required else f"[{shown}]"

        def _rich_display_name(self) -> str:
            return self.metavar or self.display_name_raw

        def display_type_rich(self, ctx: Any) -> str:
            return ""

    for param in getattr(command, "params", ()):
        if isinstance(param, typer.core.TyperArgument):
            param.__class__ = CleanArgument
    for sub in getattr(command, "commands", {}).values():
        _clean_arguments(sub)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``oob`` entry point: exits with the command's code."""
    from typer import _click

    from oob.fdlimit import raise_open_files_limit
    from oob.safetext import printable

    # a run over hundreds of hosts needs more descriptors than many shells' soft limit
    raise_open_files_limit()
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    _clean_arguments(command)
    try:
        code = command.main(args=args, prog_name="oob", standalone_mode=False)
    except _click.exceptions.UsageError as error:
        where = error.ctx.command_path if error.ctx is not None else "oob"
        message = printable(error.format_message().replace("\n", " "))
        sys.stderr.write(f"oob: error: {message} (see '{where} --help')\n")
        raise SystemExit(2) from None
    except _click.exceptions.ClickException as error:
        sys.stderr.write(f"oob: error: {printable(error.format_message())}\n")
        raise SystemExit(error.exit_code) from None
    except typer.Abort:
        sys.stderr.write("oob: interrupted\n")
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
