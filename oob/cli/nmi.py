"""``oob nmi``: send one NMI to each target host (the host crashes; kdump saves a dump)."""

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
    TargetsArg,
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


def nmi_command(
    targets: TargetsArg,
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send even if this host got an NMI in the last 15 minutes.")
    ] = False,
    insecure: InsecureOpt = False,
    parallel: ParallelOpt = 8,
    audit_log: AuditOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Send a non-maskable interrupt to hung hosts through their BMC, exactly once each.

    Lists the hosts and asks you to type the host name (or the count for several)
    unless --yes. Refuses hosts whose power is off.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.runbook.nmi import CrashPlan, NmiRequest, run_nmi

        hosts = load_hosts(inventory, targets)
        renderer = make_renderer(json_output)
        request = NmiRequest(
            via=via, insecure=insecure, dry_run=dry_run, assume_yes=yes, parallel=parallel, force=force
        )

        def confirm(plans: list[CrashPlan]) -> bool:
            from oob.render.text import confirmation_lines

            lines = confirmation_lines(
                f"{p.host.name:<20} BMC {p.host.bmc.address}  via {p.method}  power {p.power.value}"
                for p in plans
            )
            return confirm_hosts([p.host.name for p in plans], "send an NMI (crash the kernel)", lines)

        audit = open_audit(audit_log)
        with first_interrupt_cancels("no new NMIs; waiting for requests in flight, then reporting") as cancel:
            outcomes = run_nmi(
                hosts, request, confirm=confirm, emit=renderer.event, audit=audit, cancel=cancel
            )
        renderer.report(outcomes)
        sent = [o for o in outcomes if o.status == "ok" and o.detail.get("at")]
        if sent:
            # the engineer's next step: follow the dump the NMI should bring
            renderer.message(
                "next: follow each dump with\n"
                + "\n".join(
                    f"  oob watch {o.host} --since {o.detail['at']}"
                    + "".join(f" -i {path}" for path in inventory or ())
                    for o in sent
                )
            )
        exit_after_run(cancel, [o.exit_code for o in outcomes])
