"""``oob dump``: a virtual machine's memory written by its hypervisor (libvirt), for guests
whose own kdump cannot write one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from oob.cli.common import (
    AuditOpt,
    InventoryOpt,
    JsonOpt,
    TargetsArg,
    VerboseOpt,
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

EPILOG = """\b
Examples:
  oob dump vm01 -i fleet.toml              # pauses vm01, dumps, resumes; asks first
  oob dump vm01 --live -y                  # the guest keeps running (pages from different moments)
  oob dump vm01 --after reset --dir /srv/crash
\b
The file: <dir>/<host>-<YYYY-MM-DD-HH:MM:SS>/vmcore (UTC) on this machine for a local
libvirt URI; for a remote one (qemu+ssh://...) <dir>/<host>-<...>.vmcore on the
hypervisor's machine, in a directory that must exist there.  Then: the crash command."""


def dump_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    directory: Annotated[
        str,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Directory for the dump (absolute; on the hypervisor's machine for a remote URI).",
        ),
    ] = "/var/crash",
    live: Annotated[
        bool, typer.Option("--live", help="Keep the guest running during the dump (not paused).")
    ] = False,
    after: Annotated[
        str,
        typer.Option(
            "--after",
            metavar="WHAT",
            help="After a paused dump: resume (default), reset, or off (left stopped as crashed).",
        ),
    ] = "resume",
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="auto (kdump-zlib, else elf, else the hypervisor's own), kdump-zlib, elf or native.",
        ),
    ] = "auto",
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline", metavar="SECONDS", help="Abort the dump job after this long (3600).", min=1
        ),
    ] = 3600.0,
    yes: YesOpt = False,
    audit_log: AuditOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Have the hypervisor write a guest's memory to a file crash reads (bmc.kind libvirt).

    Memory-only, kdump-compressed where the hypervisor can, ELF otherwise. Without
    --live the guest is paused while its memory is written, then resumed (--after).
    Checks the free space against the guest's memory first (here only) and asks you to
    type the host name unless --yes.
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.runbook.hvdump import DumpRequest

        request = DumpRequest(
            directory=directory, live=live, after=after, fmt=fmt, assume_yes=yes, deadline_s=deadline
        )
        hosts = load_hosts(inventory, list(targets or []))
        dump_and_report(hosts, request, json_output=json_output, audit_log=audit_log)


def dump_and_report(hosts: list[Any], request: Any, *, json_output: bool, audit_log: Path | None) -> None:
    """Run :func:`oob.runbook.hvdump.run_dump` for ``hosts``, report, and exit (also for
    ``oob crash --hypervisor-dump``)."""
    from oob.runbook.hvdump import DumpPlan, run_dump

    renderer = make_renderer(json_output, (("format", "FORMAT"), ("path", "PATH")))

    def confirm(plans: list[DumpPlan]) -> bool:
        from oob.render.text import confirmation_lines

        what = "dump the memory of" if request.live else "pause and dump the memory of"
        lines = confirmation_lines(p.describe(request) for p in plans)
        return confirm_hosts([p.host.name for p in plans], what, lines)

    audit = open_audit(audit_log)
    with first_interrupt_cancels("aborting the dump job") as cancel:
        outcomes = run_dump(hosts, request, confirm=confirm, emit=renderer.event, audit=audit, cancel=cancel)
    renderer.report(outcomes)
    for outcome in outcomes:
        handoff = outcome.detail.get("handoff")
        if outcome.status == "ok" and isinstance(handoff, dict) and not json_output:
            lines = "\n".join(f"  {line}" for line in handoff_lines(handoff))
            renderer.message(f"{outcome.host}: to open it in crash:\n{lines}")
    exit_after_run(cancel, [o.exit_code for o in outcomes])


def handoff_lines(data: dict[str, Any]) -> list[str]:
    """The hand-off (``CrashHandoff.to_dict()``, as the outcome carries it for --json) for people."""
    from oob.safetext import printable

    lines = [f"kernel: {data.get('release') or 'unknown'}", f"format: {data.get('format') or 'unknown'}"]
    debuginfo = data.get("debuginfo")
    if isinstance(debuginfo, dict):
        lines.append(f"vmlinux: {debuginfo.get('namelist')}; install: {debuginfo.get('install')}")
    lines += [f"first: {step}" for step in data.get("prepare") or ()]
    if data.get("crash_command"):
        lines.append(f"crash: {data['crash_command']}")
    lines += [f"note: {note}" for note in data.get("notes") or ()]
    return [printable(line) for line in lines]
