"""``oob power``: power status and power actions through the BMC."""

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
    UserOpt,
    VerboseOpt,
    ViaOpt,
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

ACTIONS = ("status", "on", "off", "shutdown", "reset", "cycle")
#: words from other tools (ipmitool, redfishtool, the shell) -> the actions they may mean
SYNONYMS: dict[str, tuple[str, ...]] = {
    "reboot": ("reset", "cycle"),
    "restart": ("reset", "cycle"),
    "hard-reset": ("reset",),
    "forcerestart": ("reset",),
    "powercycle": ("cycle",),
    "power-cycle": ("cycle",),
    "poweroff": ("off", "shutdown"),
    "power-off": ("off", "shutdown"),
    "forceoff": ("off",),
    "halt": ("shutdown", "off"),
    "stop": ("shutdown", "off"),
    "soft": ("shutdown",),
    "gracefulshutdown": ("shutdown",),
    "poweron": ("on",),
    "power-on": ("on",),
    "start": ("on",),
    "boot": ("on",),
    "state": ("status",),
    "show": ("status",),
    "query": ("status",),
}

EPILOG = """\b
Actions:
  status    the power state (asks nothing)
  on        power on (asks nothing)
  off       ForceOff: cut the power at once
  shutdown  GracefulShutdown: ask the OS to shut down
  reset     ForceRestart: a hard reset
  cycle     PowerCycle (or ForceOff then On when the BMC has none)

\b
Examples:
  oob power web01 status -i fleet.toml
  oob power @rack3 'node[01-08]' status --json
  oob power db02 reset -y
  oob power --bmc https://10.0.0.5 --user admin --password-env BMC_PW status"""


def action_problem(word: str) -> str:
    """What to say about an ACTION that is not one: the actions it may have meant."""
    from difflib import get_close_matches

    from oob.safetext import printable

    meant = SYNONYMS.get(word.lower()) or tuple(get_close_matches(word.lower(), ACTIONS, n=2, cutoff=0.5))
    hint = f"; did you mean {' or '.join(meant)}?" if meant else ""
    return (
        f"unknown power action '{printable(word[:40])}'{hint} "
        f"(usage: oob power TARGET... ACTION, ACTION one of {', '.join(ACTIONS)})"
    )


def power_command(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET... ACTION",
            help="Hosts (names, globs web*, @group, ranges node[01-20], comma lists a,b, or all), "
            "then the action: status, on, off, shutdown, reset or cycle.",
            show_default=False,
        ),
    ],
    inventory: InventoryOpt = None,
    via: ViaOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    insecure: InsecureOpt = False,
    refresh: RefreshOpt = False,
    parallel: ParallelOpt = DEFAULT_PARALLEL,
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
    """Show or change the power of hosts. off, shutdown, reset and cycle ask first unless --yes."""
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.errors import UsageError
        from oob.inventory.adhoc import HostFlags
        from oob.runbook.methods import DriverOptions
        from oob.runbook.power import PowerRequest, run_power

        if args[-1] not in ACTIONS:
            raise UsageError(action_problem(args[-1]))
        *targets, action = args
        if not targets and bmc is None:
            raise UsageError(f"which hosts? usage: oob power TARGET... {action} (or one host with --bmc URL)")
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
        renderer = make_renderer(json_output, columns=[("power", "POWER")] if action == "status" else [])
        request = PowerRequest(
            action=action,
            driver=DriverOptions(via=via, insecure=insecure, refresh=refresh),
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
