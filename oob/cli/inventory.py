"""``oob inventory``: list and check inventories."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import InventoryOpt, JsonOpt, VerboseOpt, handle_errors, load_hosts, setup_logging

inventory_app = typer.Typer(help="List and check inventories.", no_args_is_help=True)
OptionalTargets = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TARGET...",
        help="Hosts: names (web01), globs (web*), @group, ranges (node[01-20]), comma lists "
        "(web01,db02) or all (the default).",
        show_default=False,
    ),
]

LIST_EPILOG = """\b
Examples:
  oob inventory list -i fleet.toml
  oob inventory list @rack3 'node[01-04]' --json"""

CHECK_EPILOG = """\b
Examples:
  oob inventory check -i fleet.toml -i more.yaml
  oob inventory check @prod"""


def _hosts(inventory: InventoryOpt, targets: list[str] | None) -> list:  # type: ignore[type-arg]
    return load_hosts(inventory, targets or ["all"])


@inventory_app.command("list", epilog=LIST_EPILOG)
def list_command(
    targets: OptionalTargets = None,
    inventory: InventoryOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show the hosts an inventory resolves to (secrets shown as references only)."""
    setup_logging(verbose)
    with handle_errors(verbose):
        hosts = _hosts(inventory, targets)
        if json_output:
            from oob.render.jsonl import write_json

            for host in hosts:
                write_json(host.to_dict())
            return
        from rich.table import Table

        from oob.render.console import make_console
        from oob.render.text import cell

        table = Table(box=None, pad_edge=False, header_style="bold")
        for title in ("HOST", "ADDRESS", "GROUPS", "BMC", "KIND", "METHODS", "DUMP TARGET"):
            table.add_column(title)
        for host in hosts:
            # an inventory (Ansible's especially) may be generated from host-supplied facts
            table.add_row(
                cell(host.name),
                cell(host.address),
                cell(",".join(host.groups)),
                cell(host.bmc.address),
                cell(host.bmc.kind),
                cell(",".join(host.bmc.effective_methods)),
                cell(host.dump.target),
            )
        make_console(stderr=False).print(table)


@inventory_app.command("check", epilog=CHECK_EPILOG)
def check_command(
    targets: OptionalTargets = None,
    inventory: InventoryOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Load the inventory and resolve every credential reference; exit 2 on the first problem."""
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.errors import InventoryError
        from oob.inventory.checks import describe_shared, shared_bmcs
        from oob.secrets import check_secrets

        hosts = _hosts(inventory, targets)
        for first, second in shared_bmcs(hosts):
            raise InventoryError(f"{first.source}: {describe_shared(first, second)}")
        check_secrets(hosts)
        if json_output:
            from oob.render.jsonl import write_json

            write_json({"status": "ok", "hosts": len(hosts)})
        else:
            typer.echo(
                f"inventory ok: {len(hosts)} host{'s' if len(hosts) != 1 else ''}, credentials resolved",
                err=True,
            )
