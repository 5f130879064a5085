"""``oob demo``: rehearse on an embedded mock fleet, no hardware and no setup."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import JsonOpt, VerboseOpt, handle_errors, setup_logging

DEMO_VENDORS = "ilo5,idrac9,openbmc,supermicro,xcc,ami"


def demo_command(
    vendors: Annotated[str, typer.Option(help="Mock BMC flavours to start, comma-separated.")] = DEMO_VENDORS,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Start a mock BMC fleet on loopback, show it, and send one NMI to its first host."""
    setup_logging(verbose)
    with handle_errors(verbose):
        import tempfile
        from pathlib import Path

        from mocks.fleet import Fleet
        from oob.audit import AuditLog
        from oob.cli.common import make_renderer
        from oob.inventory import load_inventory
        from oob.runbook.common import DriverOptions
        from oob.runbook.info import run_info
        from oob.runbook.nmi import NmiRequest, run_nmi

        renderer = make_renderer(json_output)
        with tempfile.TemporaryDirectory(prefix="oob-demo-") as workdir:
            work = Path(workdir)
            with Fleet.start(vendors=vendors.split(","), count=1, workdir=work) as fleet:
                inventory_file = work / "inventory.toml"
                fleet.write_inventory(inventory_file)
                renderer.message(f"mock fleet of {len(fleet.bmcs)} BMCs on loopback; inventory {inventory_file}")
                hosts = list(load_inventory([inventory_file]).hosts.values())
                renderer.outcomes(
                    run_info(hosts, DriverOptions(), emit=renderer.event),
                    columns=[("vendor", "VENDOR"), ("model", "MODEL"), ("power", "POWER")],
                )
                target = hosts[0]
                renderer.message(f"sending one NMI to {target.name} (mock: no real host is harmed)")
                audit = AuditLog(work / "audit.jsonl")
                outcomes = run_nmi(
                    [target], NmiRequest(assume_yes=True), confirm=lambda plans: True, emit=renderer.event, audit=audit
                )
                renderer.outcomes(outcomes)
                bmc = fleet.bmc(target.name)
                renderer.message(
                    f"mock {bmc.name}: nmi_count={bmc.nmi_count} open_sessions={bmc.open_sessions} "
                    f"requests={bmc.requests}"
                )
                code = max(o.exit_code for o in outcomes)
        raise typer.Exit(code)
