"""``oob crash``: preflight, confirm, NMI exactly once, watch the dump, recover, report."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import (
    AllowRepeatOpt,
    AuditOpt,
    BmcOpt,
    CaFileOpt,
    DomainOpt,
    DryRunOpt,
    FingerprintOpt,
    InsecureOpt,
    InventoryOpt,
    IpmiPortOpt,
    JsonOpt,
    KindOpt,
    NameOpt,
    NotifyOpt,
    ParallelOpt,
    PasswordEnvOpt,
    PasswordFileOpt,
    PrometheusOpt,
    RefreshOpt,
    TargetsArg,
    UserOpt,
    VerboseOpt,
    ViaOpt,
    YesOpt,
    confirm_hosts,
    exit_after_run,
    first_interrupt_cancels,
    handle_errors,
    metrics_path,
    open_audit,
    report_notifications,
    select_hosts,
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
    StallGraceOpt,
    TimeoutOpt,
    reboot_grace_seconds,
    ssh_options,
    watch_options,
    with_stall_grace,
)
from oob.defaults import DEFAULT_PARALLEL

EPILOG = """\b
Examples:
  oob crash web01 -i fleet.toml        # asks you to type web01
  oob crash @rack3 -n                  # preflight and plan only, nothing sent
  oob crash 'node[01-04]' -y --json --recover
  # one host, no inventory:
  oob crash --bmc https://10.0.0.5 --user admin --password-env BMC_PW \\
    --address 10.0.0.7 --target ssh://kdump@dumps/var/crash"""


def crash_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Crash a host even if it looks healthy (its probe answers).",
        ),
    ] = False,
    allow_repeat: AllowRepeatOpt = False,
    recover: RecoverOpt = False,
    fence_kdump: FenceKdumpOpt = None,
    bmc_log: BmcLogOpt = True,
    console: ConsoleOpt = True,
    console_dir: ConsoleDirOpt = None,
    timeout: TimeoutOpt = "30m",
    stall_after: StallAfterOpt = "2m",
    stall_grace: StallGraceOpt = "0",
    interval: IntervalOpt = 0.5,
    reboot_grace: RebootGraceOpt = "5m",
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
    bmc: BmcOpt = None,
    name: NameOpt = None,
    user: UserOpt = None,
    password_env: PasswordEnvOpt = None,
    password_file: PasswordFileOpt = None,
    kind: KindOpt = None,
    ca_file: CaFileOpt = None,
    fingerprint: FingerprintOpt = None,
    ipmi_port: IpmiPortOpt = None,
    domain: DomainOpt = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address", metavar="ADDRESS", help="With --bmc: the host's own address (its probe, its dumps)."
        ),
    ] = None,
    probe: Annotated[
        str | None,
        typer.Option(
            "--probe",
            metavar="PROBE",
            help="With --bmc: how to tell it is alive: ssh:PORT or tcp:[ADDRESS:]PORT (ssh:22).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="URL",
            help="With --bmc: its dump target (ssh://USER@SERVER[:PORT]/PATH or file:///PATH).",
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout", metavar="LAYOUT", help="With --bmc: auto, rhel, suse, suse-old or debian (auto)."
        ),
    ] = None,
    hypervisor_dump: Annotated[
        bool,
        typer.Option(
            "--hypervisor-dump",
            help="libvirt guests without kdump: the hypervisor writes the guest's memory (oob dump) "
            "instead of NMI + watch; with --recover the guest is reset afterwards.",
        ),
    ] = False,
    dump_dir: Annotated[
        str,
        typer.Option(
            "--dump-dir", metavar="DIR", help="With --hypervisor-dump: where the dump goes (/var/crash)."
        ),
    ] = "/var/crash",
) -> None:
    """Crash hung hosts on purpose and collect their kdump: the whole runbook.

    Per host: the BMC answers, power is On, an NMI is offered, the host looks hung, the
    dump target is readable (baseline taken). Then you confirm (type the host name, or
    the count), one NMI goes out per host, and oob watches the dump until it is complete,
    stalled, failed or late. Exit 0 when every dump is complete; see README for the rest.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        metrics_file = metrics_path(prometheus_textfile)
        from oob.render.crash import make_crash_renderer
        from oob.runbook.crash import CrashRequest, run_crash
        from oob.runbook.methods import DriverOptions
        from oob.runbook.nmi import CrashPlan

        request = CrashRequest(
            driver=DriverOptions(via=via, insecure=insecure, refresh=refresh),
            watch=with_stall_grace(
                watch_options(interval=interval, stall_after=stall_after, timeout=timeout), stall_grace
            ),
            ssh=ssh_options(known_hosts, accept_new_host_key, ssh_key, ssh_config),
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
        )
        from oob.errors import UsageError
        from oob.inventory.adhoc import HostFlags

        flags = HostFlags(
            bmc=bmc,
            name=name,
            user=user,
            password_env=password_env,
            password_file=password_file,
            kind=kind,
            ca_file=ca_file,
            fingerprint=fingerprint,
            ipmi_port=ipmi_port,
            domain=domain,
            address=address,
            probe=probe,
            target=target,
            layout=layout,
        )
        if bmc is not None and (target is None or address is None):
            raise UsageError(
                "oob crash --bmc also needs the host: --address ADDRESS (its probe tells whether it is "
                "hung; its dumps are named after it) and --target URL (where kdump writes)"
            )
        hosts = select_hosts(inventory, targets, flags)
        warn_insecure(insecure, hosts)
        if hypervisor_dump:  # no NMI, no watch: oob dump's runbook (oob.runbook.hvdump)
            from oob.cli.dump import dump_and_report
            from oob.runbook.hvdump import DumpRequest

            if dry_run:
                raise UsageError("--hypervisor-dump has no --dry-run: run oob bmc info to see the guest")
            after = "reset" if recover else "resume"
            dump_request = DumpRequest(directory=dump_dir, after=after, assume_yes=yes)
            dump_and_report(hosts, dump_request, json_output=json_output, audit_log=audit_log)
        from oob.notify import notifier_for

        notifier = notifier_for(notify, "oob crash", hosts)
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
