"""``oob nmi``: send one NMI to each target host (the host crashes; kdump saves a dump)."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import (
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
    ParallelOpt,
    PasswordEnvOpt,
    PasswordFileOpt,
    RefreshOpt,
    TargetsArg,
    UserOpt,
    VerboseOpt,
    ViaOpt,
    WorkersOpt,
    YesOpt,
    confirm_hosts,
    exit_after_run,
    first_interrupt_cancels,
    handle_errors,
    make_renderer,
    open_audit,
    select_hosts,
    setup_logging,
    warn_insecure,
)
from oob.defaults import DEFAULT_PARALLEL

#: shown under the options of ``oob nmi --help``
EPILOG = """\b
Examples:
  oob nmi web01 -i fleet.toml          # asks you to type web01, sends one NMI
  oob nmi @web -y --json               # a group, no question ($OOB_INVENTORY)
  oob nmi 'node[01-04]',db02 -n        # plan only (--dry-run), send nothing
  # one host, no inventory (the ipmitool habit):
  oob nmi --bmc https://10.0.0.5 --user admin --password-env BMC_PW

Then follow the dump: oob watch HOST --since TIME (printed at the end)."""


def nmi_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    allow_repeat: Annotated[
        bool,
        typer.Option(
            "--allow-repeat",
            "--force",
            help="Send even if this host got an NMI in the last 15 minutes (--force: the old name).",
        ),
    ] = False,
    insecure: InsecureOpt = False,
    refresh: RefreshOpt = False,
    parallel: ParallelOpt = DEFAULT_PARALLEL,
    workers: WorkersOpt = 1,
    audit_log: AuditOpt = None,
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
) -> None:
    """Send a non-maskable interrupt to hung hosts through their BMC, exactly once each.

    Lists the hosts and asks you to type the host name (or the count for several)
    unless --yes. Refuses hosts whose power is off, and hosts that got an NMI in the
    last 15 minutes (unless --allow-repeat).
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.inventory.adhoc import HostFlags
        from oob.runbook.nmi import CrashPlan, NmiRequest, run_nmi

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
        )
        hosts = select_hosts(inventory, targets, flags)
        warn_insecure(insecure, hosts)
        renderer = make_renderer(json_output)
        request = NmiRequest(
            via=via,
            insecure=insecure,
            refresh=refresh,
            dry_run=dry_run,
            assume_yes=yes,
            parallel=parallel,
            allow_repeat=allow_repeat,
            workers=workers,
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
                    + ("".join(f" -i {path}" for path in inventory or ()) if bmc is None else " --target URL")
                    for o in sent
                )
            )
        exit_after_run(cancel, [o.exit_code for o in outcomes])
