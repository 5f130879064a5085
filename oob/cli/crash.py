"""``oob crash``: preflight, confirm, NMI exactly once, watch the dump, recover, report."""

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
    open_audit,
    setup_logging,
)
from oob.cli.dumpopts import (
    AcceptNewHostKeyOpt,
    IntervalOpt,
    KnownHostsOpt,
    ProbeTimeoutOpt,
    RebootGraceOpt,
    RecoverOpt,
    SshKeyOpt,
    StallAfterOpt,
    TimeoutOpt,
    reboot_grace_seconds,
    ssh_options,
    watch_options,
)
from oob.cli.watch import StallGraceOpt, with_stall_grace


def crash_command(
    targets: TargetsArg,
    inventory: InventoryOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Crash a host even if it looks healthy (its probe answers), "
            "or got an NMI in the last 15 minutes.",
        ),
    ] = False,
    recover: RecoverOpt = False,
    timeout: TimeoutOpt = "30m",
    stall_after: StallAfterOpt = "2m",
    stall_grace: StallGraceOpt = "0",
    interval: IntervalOpt = 0.5,
    reboot_grace: RebootGraceOpt = "5m",
    probe_timeout: ProbeTimeoutOpt = 3.0,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    known_hosts: KnownHostsOpt = None,
    accept_new_host_key: AcceptNewHostKeyOpt = False,
    ssh_key: SshKeyOpt = None,
    parallel: ParallelOpt = 8,
    audit_log: AuditOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Crash hung hosts on purpose and collect their kdump: the whole runbook.

    Per host: the BMC answers, power is On, an NMI is offered, the host looks hung, the
    dump target is readable (baseline taken). Then you confirm (type the host name, or
    the count), one NMI goes out per host, and oob watches the dump until it is complete,
    stalled, failed or late. Exit 0 when every dump is complete; see README for the rest.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.render.crash import make_crash_renderer
        from oob.runbook.crash import CrashRequest, run_crash
        from oob.runbook.methods import DriverOptions
        from oob.runbook.nmi import CrashPlan

        request = CrashRequest(
            driver=DriverOptions(via=via, insecure=insecure),
            watch=with_stall_grace(
                watch_options(interval=interval, stall_after=stall_after, timeout=timeout), stall_grace
            ),
            ssh=ssh_options(known_hosts, accept_new_host_key, ssh_key),
            assume_yes=yes,
            dry_run=dry_run,
            force=force,
            recover=recover,
            reboot_grace_s=reboot_grace_seconds(reboot_grace),
            probe_timeout_s=probe_timeout,
            parallel=parallel,
        )
        hosts = load_hosts(inventory, targets)
        renderer = make_crash_renderer(json_output, [h.name for h in hosts])

        def confirm(plans: list[CrashPlan]) -> bool:
            from oob.render.text import confirmation_lines

            lines = confirmation_lines(
                f"{p.host.name:<20} BMC {p.host.bmc.address}  via {p.method}  power {p.power.value}"
                for p in plans
            )
            with renderer.paused():
                return confirm_hosts(
                    [p.host.name for p in plans], "crash the kernel (NMI) and collect the dump", lines
                )

        with first_interrupt_cancels("no new NMIs; closing sessions and reporting") as cancel, renderer:
            report = run_crash(
                hosts,
                request,
                confirm=confirm,
                emit=renderer.event,
                audit=open_audit(audit_log),
                cancel=cancel,
            )
        renderer.report(report)
        exit_after_run(cancel, [o.exit_code for o in report.outcomes])
