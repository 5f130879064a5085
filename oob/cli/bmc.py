"""``oob bmc info``: what each BMC is and whether it offers an NMI."""

from __future__ import annotations

import typer

from oob.cli.common import (
    BmcOpt,
    CaFileOpt,
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

EPILOG = """\b
Examples:
  oob bmc info all -i fleet.toml
  oob bmc info 'web*' @db --json
  oob bmc info --bmc https://10.0.0.5 --user admin --password-env BMC_PW
  oob bmc info --bmc 10.0.0.9 --kind ipmi --user ADMIN \\
    --password-file ~/.bmc-pw"""

bmc_app = typer.Typer(help="Ask BMCs about themselves.", no_args_is_help=True)


@bmc_app.command("info", epilog=EPILOG)
def info_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    parallel: ParallelOpt = 8,
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
            hosts, DriverOptions(via=via, insecure=insecure), emit=renderer.event, parallel=parallel
        )
        for outcome in outcomes:
            nmi = outcome.detail.get("nmi")
            if isinstance(nmi, dict):
                offered = {True: "yes", False: "no", None: "unknown"}[nmi.get("offered")]
                outcome.detail["nmi_offered"] = f"{offered} ({nmi.get('source')})"
        renderer.report(outcomes)
        finish(outcomes)
