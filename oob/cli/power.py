"""``oob power``: power status and power actions through the BMC."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import (
    AuditOpt,
    DryRunOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    ParallelOpt,
    VerboseOpt,
    ViaOpt,
    YesOpt,
    confirm_hosts,
    exit_after_run,
    first_interrupt_cancels,
    handle_errors,
    load_hosts,
    make_renderer,
    open_audit,
    setup_logging,
)

ACTIONS = ("status", "on", "off", "shutdown", "reset", "cycle")


def power_command(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET... ACTION",
            help="Hosts, then one of: status, on, off (ForceOff), shutdown (graceful), reset (ForceRestart), cycle.",
        ),
    ],
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    insecure: InsecureOpt = False,
    parallel: ParallelOpt = 8,
    audit_log: AuditOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show or change the power of hosts. off, shutdown, reset and cycle ask first unless --yes."""
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.errors import UsageError
        from oob.runbook.methods import DriverOptions
        from oob.runbook.power import PowerRequest, run_power

        if len(args) < 2 or args[-1] not in ACTIONS:
            raise UsageError(f"usage: oob power TARGET... {{{'|'.join(ACTIONS)}}}")
        *targets, action = args
        hosts = load_hosts(inventory, targets)
        renderer = make_renderer(json_output, columns=[("power", "POWER")] if action == "status" else [])
        request = PowerRequest(
            action=action,
            driver=DriverOptions(via=via, insecure=insecure),
            assume_yes=yes,
            dry_run=dry_run,
            parallel=parallel,
        )

        def confirm(selected: list, what: str) -> bool:  # type: ignore[type-arg]
            from oob.render.text import confirmation_lines

            lines = confirmation_lines(f"{h.name:<20} BMC {h.bmc.address}" for h in selected)
            return confirm_hosts([h.name for h in selected], f"power {what}", lines)

        audit = None if (dry_run or action == "status") else open_audit(audit_log)
        with first_interrupt_cancels(
            "no new power actions; waiting for requests in flight, then reporting"
        ) as cancel:
            outcomes = run_power(
                hosts, request, confirm=confirm, emit=renderer.event, audit=audit, cancel=cancel
            )
        renderer.report(outcomes)
        exit_after_run(cancel, [o.exit_code for o in outcomes])
