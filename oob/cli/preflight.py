"""``oob preflight``: is kdump ready on these hosts?  BMC side and host side, no changes."""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import (
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    ParallelOpt,
    PrometheusOpt,
    RefreshOpt,
    TargetsArg,
    VerboseOpt,
    ViaOpt,
    handle_errors,
    load_hosts,
    metrics_path,
    setup_logging,
    warn_insecure,
)
from oob.cli.dumpopts import AcceptNewHostKeyOpt, KnownHostsOpt, SshConfigOpt, SshKeyOpt, ssh_options
from oob.defaults import DEFAULT_PARALLEL

#: exit code when a host is not ready: not 1, which is oob's "internal error"
NOT_READY_EXIT = 8

EPILOG = """\b
Examples:
  oob preflight web01 -i fleet.toml
  oob preflight all --strict --json    # warnings count as not ready
  oob preflight @rack3 'node[01-20]' --known-hosts ~/.ssh/known_hosts

Exit 0 when every host is ready, 8 when any is not, 2 for bad input."""

StrictOpt = Annotated[bool, typer.Option("--strict", help="Count warnings as not ready too.")]


def preflight_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    strict: StrictOpt = False,
    via: ViaOpt = None,
    insecure: InsecureOpt = False,
    refresh: RefreshOpt = False,
    known_hosts: KnownHostsOpt = None,
    accept_new_host_key: AcceptNewHostKeyOpt = False,
    ssh_key: SshKeyOpt = None,
    ssh_config: SshConfigOpt = None,
    parallel: ParallelOpt = DEFAULT_PARALLEL,
    prometheus_textfile: PrometheusOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check that a crash dump would be written: BMC and kdump readiness, per host.

    BMC: reachable, credentials, TLS, power, NMI offered (and how).  Host, over SSH
    (ssh.user@address:ssh.port): crashkernel=, kexec_crash_size, kexec_crash_loaded,
    kernel.unknown_nmi_panic, kernel.panic, the kdump service, the configured dump target
    against dump.target, free space, hpwdt on HPE.  Changes nothing.  Exit 0 when every
    host is ready, 8 otherwise, 2 for bad input.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.render.preflight import make_preflight_renderer
        from oob.runbook.methods import DriverOptions
        from oob.runbook.preflight import PreflightRequest, run_preflight

        request = PreflightRequest(
            driver=DriverOptions(via=via, insecure=insecure, refresh=refresh),
            ssh=ssh_options(known_hosts, accept_new_host_key, ssh_key, ssh_config),
            parallel=parallel,
            strict=strict,
        )
        metrics_file = metrics_path(prometheus_textfile)
        hosts = load_hosts(inventory, targets or [])
        warn_insecure(insecure, hosts)
        renderer = make_preflight_renderer(json_output)
        report = run_preflight(hosts, request, emit=renderer.event)
        renderer.report(report)
        if metrics_file is not None:
            from oob import metrics
            from oob.runbook.analyze import last_dump_times

            dumps = last_dump_times(hosts, request.ssh)
            metrics.write(metrics_file, metrics.preflight_registry(report, dumps))
        # the runbook's per-host code is 1 for "not ready"; 1 is also a crash of oob itself
        raise typer.Exit(NOT_READY_EXIT if report.exit_code == 1 else report.exit_code)
