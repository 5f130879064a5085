"""``oob bmc info``: what each BMC is and whether it offers an NMI; ``oob bmc log``: its own
event log around an incident."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from oob.cli.common import (
    BmcOpt,
    CaFileOpt,
    DomainOpt,
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
    finish,
    handle_errors,
    make_renderer,
    select_hosts,
    setup_logging,
    warn_insecure,
)
from oob.defaults import DEFAULT_PARALLEL

if TYPE_CHECKING:
    from oob.runbook.common import Outcome

#: strings, so that --help does not import the signal module
TIME_HELP = "an ISO 8601 time (no offset: local time) or an age such as 90s, 30m, 2h, 1d"
HARDWARE_KINDS = ("machine_check", "memory", "pcie", "power")

EPILOG = """\b
Examples:
  oob bmc info all -i fleet.toml
  oob bmc info 'web*' @db --json
  oob bmc info --bmc https://10.0.0.5 --user admin --password-env BMC_PW
  oob bmc info --bmc 10.0.0.9 --kind ipmi --user ADMIN \\
    --password-file ~/.bmc-pw"""

LOG_EPILOG = """\b
Examples:
  oob bmc log web1 -i fleet.toml --since 30m
  oob bmc log 'db*' --since 2026-11-30T04:30:00Z --until 2026-11-30T05:30:00Z --json
  oob bmc log --bmc 10.0.0.9 --kind ipmi --user ADMIN --password-file ~/.bmc-pw"""

bmc_app = typer.Typer(help="Ask BMCs about themselves.", no_args_is_help=True)


@bmc_app.command("info", epilog=EPILOG)
def info_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    refresh: RefreshOpt = False,
    parallel: ParallelOpt = DEFAULT_PARALLEL,
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
    """Vendor, model, firmware, power, and whether NMI is offered (and how oob learnt it)."""
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.inventory.adhoc import HostFlags
        from oob.runbook.info import run_info
        from oob.runbook.methods import DriverOptions

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
            hosts,
            DriverOptions(via=via, insecure=insecure, refresh=refresh),
            emit=renderer.event,
            parallel=parallel,
        )
        for outcome in outcomes:
            nmi = outcome.detail.get("nmi")
            if isinstance(nmi, dict):
                offered = {True: "yes", False: "no", None: "unknown"}[nmi.get("offered")]
                outcome.detail["nmi_offered"] = f"{offered} ({nmi.get('source')})"
        renderer.report(outcomes)
        finish(outcomes)


@bmc_app.command("log", epilog=LOG_EPILOG)
def log_command(
    targets: TargetsArg = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Start of the window (default: 1h ago): " + TIME_HELP),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME", help="End of the window (default: now): " + TIME_HELP),
    ] = None,
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    refresh: RefreshOpt = False,
    parallel: ParallelOpt = DEFAULT_PARALLEL,
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
    """The BMC's own event log in a window: the NMI, hardware errors (machine check,
    memory, PCIe, power), from Redfish LogServices or the IPMI SEL."""
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.inventory.adhoc import HostFlags
        from oob.runbook.bmclog import make_window, run_bmc_log
        from oob.runbook.methods import DriverOptions

        window = make_window(since, until)
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
        renderer = make_renderer(json_output, columns=[("kept", "ENTRIES"), ("summary", "SUMMARY")])
        outcomes = run_bmc_log(
            hosts,
            window,
            DriverOptions(via=via, insecure=insecure, refresh=refresh),
            emit=renderer.event,
            parallel=parallel,
        )
        renderer.report(outcomes)
        if not json_output:
            _print_entries(outcomes)
        finish(outcomes)


def _print_entries(outcomes: Sequence[Outcome]) -> None:
    """Each host's entries under the table (every string through safetext)."""
    from oob.render.console import print_plain

    for outcome in outcomes:
        entries = outcome.detail.get("entries")
        if not entries:
            continue
        print_plain(f"\n{outcome.host}:")
        for entry in entries:
            mark = "*" if entry["kind"] == "nmi" else "!" if entry["kind"] in HARDWARE_KINDS else " "
            sensor = f" [{entry['sensor']}]" if entry.get("sensor") else ""
            print_plain(
                f"{mark} {entry['time']} {entry['severity']:<8} {entry['source']}: {entry['message']}{sensor}"
            )
