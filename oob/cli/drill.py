"""``oob drill``: crash a healthy, ready host on purpose and check its dump (maintenance windows)."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import (
    AllowRepeatOpt,
    AuditOpt,
    DryRunOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    NotifyOpt,
    ParallelOpt,
    PrometheusOpt,
    RefreshOpt,
    TargetsArg,
    VerboseOpt,
    ViaOpt,
    YesOpt,
    confirm_hosts,
    exit_after_run,
    first_interrupt_cancels,
    handle_errors,
    load_hosts,
    metrics_path,
    open_audit,
    report_notifications,
    setup_logging,
    warn_insecure,
)
from oob.cli.dumpopts import (
    AcceptNewHostKeyOpt,
    BmcLogOpt,
    ConsoleDirOpt,
    ConsoleOpt,
    FenceKdumpOpt,
    IntervalOpt,
    KnownHostsOpt,
    ProbeTimeoutOpt,
    RebootGraceOpt,
    RecoverOpt,
    SshConfigOpt,
    SshKeyOpt,
    StallAfterOpt,
    TimeoutOpt,
    reboot_grace_seconds,
    ssh_options,
    watch_options,
)
from oob.cli.preflight import StrictOpt
from oob.defaults import DEFAULT_PARALLEL

EPILOG = """\b
Examples:
  oob drill web01 -i fleet.toml        # sysrq over SSH; asks first
  oob drill @canary -n                 # preflight and plan only
  oob drill 'node[01-04]' --method nmi -y --json"""


def drill_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            metavar="METHOD",
            help="sysrq: write c to /proc/sysrq-trigger over SSH; nmi: through the BMC.",
        ),
    ] = "sysrq",
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Drill a host even if preflight says it is not ready, or it does not look healthy.",
        ),
    ] = False,
    allow_repeat: AllowRepeatOpt = False,
    strict: StrictOpt = False,
    recover: RecoverOpt = False,
    fence_kdump: FenceKdumpOpt = None,
    bmc_log: BmcLogOpt = True,
    console: ConsoleOpt = True,
    console_dir: ConsoleDirOpt = None,
    timeout: TimeoutOpt = "30m",
    stall_after: StallAfterOpt = "2m",
    interval: IntervalOpt = 0.5,
    reboot_grace: RebootGraceOpt = "10m",
    probe_timeout: ProbeTimeoutOpt = 3.0,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    refresh: RefreshOpt = False,
    known_hosts: KnownHostsOpt = None,
    accept_new_host_key: AcceptNewHostKeyOpt = False,
    ssh_key: SshKeyOpt = None,
    ssh_config: SshConfigOpt = None,
    parallel: ParallelOpt = DEFAULT_PARALLEL,
    audit_log: AuditOpt = None,
    prometheus_textfile: PrometheusOpt = None,
    notify: NotifyOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Kdump fire drill: crash healthy hosts on purpose and check that the dump arrives.

    Runs preflight (refuses a host that is not ready unless --force), asks, crashes each
    host once (sysrq over SSH, or --method nmi through the BMC), watches the dump until it
    is complete, waits for the host to come back, and reports pass/fail with timings.
    Exit 0 when every drill passed; 5 no dump (or host not back); 7 refused.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        metrics_file = metrics_path(prometheus_textfile)
        from oob.errors import UsageError
        from oob.render.drill import make_drill_renderer
        from oob.runbook.crash import CrashRequest
        from oob.runbook.drill import METHODS, DrillRequest, run_drill
        from oob.runbook.methods import DriverOptions
        from oob.runbook.nmi import CrashPlan
        from oob.runbook.preflight import PreflightRequest

        if method not in METHODS:
            raise UsageError(f"--method must be sysrq or nmi, not '{method}'")
        driver = DriverOptions(via=via, insecure=insecure, refresh=refresh)
        ssh = ssh_options(known_hosts, accept_new_host_key, ssh_key, ssh_config)
        request = DrillRequest(
            crash=CrashRequest(
                driver=driver,
                watch=watch_options(interval=interval, stall_after=stall_after, timeout=timeout),
                ssh=ssh,
                assume_yes=yes,
                dry_run=dry_run,
                force=force,
                allow_repeat=allow_repeat,
                recover=recover,
                fence_kdump=fence_kdump,
                read_bmc_log=bmc_log,
                console=console,
                console_dir=console_dir,
                reboot_grace_s=reboot_grace_seconds(reboot_grace),
                probe_timeout_s=probe_timeout,
                parallel=parallel,
                expect_hung=False,
            ),
            preflight=PreflightRequest(driver=driver, ssh=ssh, parallel=parallel, strict=strict),
            method=method,
        )
        hosts = load_hosts(inventory, targets or [])
        warn_insecure(insecure, hosts)
        from oob.notify import notifier_for

        notifier = notifier_for(notify, "oob drill", hosts)
        renderer = make_drill_renderer(json_output, [h.name for h in hosts])
        how = "writing c to /proc/sysrq-trigger" if method == "sysrq" else "an NMI"

        def confirm(plans: list[CrashPlan]) -> bool:
            from oob.render.text import confirmation_lines

            lines = confirmation_lines(
                f"{p.host.name:<20} {p.host.ssh.login(p.host.address)}  BMC {p.host.bmc.address}"
                for p in plans
            )
            with renderer.paused():
                return confirm_hosts(
                    [p.host.name for p in plans], f"crash the kernel ({how}) as a kdump drill", lines
                )

        with first_interrupt_cancels("no new crashes; reporting") as cancel, renderer:
            report = run_drill(
                hosts,
                request,
                confirm=confirm,
                emit=notifier.wrap(renderer.event),
                audit=open_audit(audit_log),
                cancel=cancel,
            )
        renderer.report(report)
        report_notifications(notifier, renderer)
        if metrics_file is not None:
            from oob import metrics

            metrics.write(metrics_file, metrics.crash_registry(report))
        exit_after_run(cancel, [o.exit_code for o in report.outcomes])
