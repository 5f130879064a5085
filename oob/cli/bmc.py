"""``oob bmc info``: what each BMC is and whether it offers an NMI."""

from __future__ import annotations

import typer

from oob.cli.common import (
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    ParallelOpt,
    TargetsArg,
    VerboseOpt,
    ViaOpt,
    finish,
    handle_errors,
    load_hosts,
    make_renderer,
    setup_logging,
)

bmc_app = typer.Typer(help="Ask BMCs about themselves.", no_args_is_help=True)


@bmc_app.command("info")
def info_command(
    targets: TargetsArg,
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    parallel: ParallelOpt = 8,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Vendor, model, firmware, power, and whether NMI is offered (and how oob learnt it)."""
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.runbook.info import run_info
        from oob.runbook.methods import DriverOptions

        hosts = load_hosts(inventory, targets)
        renderer = make_renderer(
            json_output,
            columns=[
                ("vendor", "VENDOR"),
                ("model", "MODEL"),
                ("firmware", "FIRMWARE"),
                ("power", "POWER"),
                ("nmi_offered", "NMI"),
            ],
        )
        outcomes = run_info(
            hosts, DriverOptions(via=via, insecure=insecure), emit=renderer.event, parallel=parallel
        )
        for outcome in outcomes:
            nmi = outcome.detail.get("nmi")
            if isinstance(nmi, dict):
                offered = {True: "yes", False: "no", None: "unknown"}[nmi.get("offered")]
                outcome.detail["nmi_offered"] = f"{offered} ({nmi.get('source')})"
        renderer.report(outcomes)
        finish(outcomes)
