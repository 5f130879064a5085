"""``oob analyze``: why the host hung, read from a dump's kernel log (thin over
:mod:`oob.runbook.analyze`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oob.cli.common import InventoryOpt, JsonOpt, VerboseOpt, handle_errors, setup_logging
from oob.cli.dumpopts import (
    AcceptNewHostKeyOpt,
    KnownHostsOpt,
    SshConfigOpt,
    SshKeyOpt,
    parse_duration,
    ssh_options,
)
from oob.errors import UsageError

EPILOG = """\b
Examples:
  oob analyze /var/crash/127.0.0.1-2026-11-30-03:12:09   # a local dump directory
  oob analyze vmcore-dmesg.txt                            # a kernel log file
  oob analyze ssh://kdump@dumps/var/crash/10.0.0.7-2026-11-30-03:12:09
  oob analyze web42 -i fleet.toml                         # web42's newest dump on its target
  oob analyze /var/crash/*/ --json                        # one JSON object per dump"""

DumpsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="DUMP...",
        help="A dump directory (path, file:// or ssh:// URL), a kernel log or vmcore file, or an inventory host (its newest dump).",
        show_default=False,
    ),
]


def analyze_command(
    dumps: DumpsArg = None,
    inventory: InventoryOpt = None,
    extract: Annotated[
        bool,
        typer.Option(
            "--extract/--no-extract",
            help="When kdump saved no kernel log, read it from a local vmcore with makedumpfile --dump-dmesg.",
        ),
    ] = True,
    fetch: Annotated[
        bool,
        typer.Option(
            "--fetch",
            help="When kdump saved no kernel log and the vmcore is on a dump server, copy it to --fetch-dir to read it.",
        ),
    ] = False,
    fetch_dir: Annotated[
        Path,
        typer.Option("--fetch-dir", metavar="DIR", help="Where --fetch copies vmcores (a folder per dump)."),
    ] = Path("."),
    fetch_timeout: Annotated[
        str, typer.Option("--fetch-timeout", metavar="DURATION", help="Deadline of one --fetch copy.")
    ] = "30m",
    run_crash: Annotated[
        bool,
        typer.Option(
            "--crash",
            help="Run crash in batch mode (bt -a, log, D-state tasks, kmem -i) when crash and the vmlinux are here; output saved in --crash-dir.",
        ),
    ] = False,
    crash_dir: Annotated[
        Path,
        typer.Option(
            "--crash-dir", metavar="DIR", help="Where --crash saves its output (never overwriting)."
        ),
    ] = Path("."),
    bmc_log: Annotated[
        bool,
        typer.Option(
            "--bmc-log/--no-bmc-log",
            help="For an inventory host: also read its BMC's event log around the dump (NMI entry, hardware errors).",
        ),
    ] = True,
    layout: Annotated[
        str,
        typer.Option(
            "--layout", metavar="LAYOUT", help="auto, rhel, suse, suse-old or debian (for paths and URLs)."
        ),
    ] = "auto",
    known_hosts: KnownHostsOpt = None,
    accept_new_host_key: AcceptNewHostKeyOpt = False,
    ssh_key: SshKeyOpt = None,
    ssh_config: SshConfigOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Tell why each host hung, from the kernel log its dump saved.

    Finds the log kdump saved beside the vmcore (vmcore-dmesg.txt, dmesg.<stamp>, dmesg.txt,
    dmesg), or extracts it from a local vmcore with makedumpfile; lists every report the
    kernel printed (lockups, stalls, hung tasks, Oopses, BUGs, machine checks, OOM kills,
    panics) with time, CPU, task and code; and gives the most likely cause, its culprit
    (module or subsystem) and how sure that is. A vmcore on a dump server is copied here
    only with --fetch (and only when kdump saved no log beside it).
    Exit 0 when every dump was analysed, 5 when a dump or its log could not be read,
    2 for bad input.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.dump.layouts import families_for
        from oob.runbook.analyze import AnalyzeRequest, InventoryHosts, run_analyze

        if not dumps:
            raise UsageError("which dumps? DUMP... (a dump directory, a log file, an ssh:// URL or a host)")
        families_for(layout)
        ssh = ssh_options(known_hosts, accept_new_host_key, ssh_key, ssh_config)
        lookup = InventoryHosts(inventory or [])
        results = run_analyze(
            dumps,
            AnalyzeRequest(
                extract=extract,
                layout=layout,
                ssh=ssh,
                fetch_dir=fetch_dir if fetch else None,
                fetch_timeout=parse_duration(fetch_timeout, "--fetch-timeout"),
                run_crash=run_crash,
                crash_dir=crash_dir,
                bmc_log=bmc_log,
            ),
            hosts=lookup.host,
            sharing=lookup.sharing,
        )
        if json_output:
            from oob.render.jsonl import write_json

            for result in results:
                write_json({"event": "result", **result.to_dict()})
        else:
            from rich.console import Console

            from oob.render.analysis import print_analyses

            print_analyses(results, Console(highlight=False))
        raise typer.Exit(max((r.exit_code for r in results), default=0))
