"""``oob demo``: rehearse the whole crash runbook on an embedded mock fleet.

No hardware and no setup: mock BMCs (iLO 5, iDRAC 9, OpenBMC, an IPMI-only BMC and an
AMI MegaRAC that needs the IPMI fallback) in front of simulated hosts that are hung, each
a different way (:data:`DEMO_HANG_KINDS`), and write RHEL, SUSE and Debian dumps into a
temporary directory.
"""

from __future__ import annotations

from typing import Annotated

import typer

from oob.cli.common import JsonOpt, VerboseOpt, handle_errors, setup_logging

DEMO_VENDORS = "ilo5,idrac9,openbmc,ipmi,ami"
#: how each demo host hangs (cycled over the hosts in BMC order): their dumps' kernel logs
#: show a soft lockup, hung tasks, an RCU stall, an Oops and a hard hang, so the report can
#: say why each one hung
DEMO_HANG_KINDS = ("softlockup", "hungtask", "rcustall", "oops", "hard")
#: simulated time runs this much faster than real time (one crash cycle: about 3 s)
DEMO_SCALE = 0.05


def demo_command(
    vendors: Annotated[str, typer.Option(help="Mock BMC flavours to start, comma-separated.")] = DEMO_VENDORS,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the fleet running afterwards and say how to point oob at it."),
    ] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Crash a mock fleet of hung hosts end to end: preflight, NMI, dumps, report."""
    setup_logging(verbose)
    with handle_errors(verbose):
        import os
        import shutil
        import signal
        import sys
        import tempfile
        import threading
        from pathlib import Path

        from oob.audit import AuditLog
        from oob.dump.watcher import WatchOptions
        from oob.inventory import load_inventory
        from oob.mockfleet import mock_module
        from oob.render.crash import make_crash_renderer
        from oob.runbook.crash import CrashRequest, run_crash

        work = Path(tempfile.mkdtemp(prefix="oob-demo-"))
        # the mock BMCs live as long as the demo: what is learnt of them (the Redfish
        # discovery cache) goes with it, never into the user's cache
        os.environ["OOB_CACHE_DIR"] = str(work / "cache")
        try:
            fleet = mock_module("fleet").Fleet.start(
                vendors=vendors.split(","),
                workdir=work,
                control="127.0.0.1:0" if keep else None,
                ipmi=True,
                dump_root=work / "crash",
                layouts=("rhel", "suse", "debian"),
                hung=True,
                hang_kind=DEMO_HANG_KINDS,
                scale=DEMO_SCALE,
            )
            with fleet:
                inventory = work / "inventory.toml"
                fleet.write_inventory(inventory)
                hosts = list(load_inventory([inventory]).hosts.values())
                renderer = make_crash_renderer(json_output, [h.name for h in hosts])
                renderer.message(
                    f"mock fleet: {len(hosts)} hung hosts behind {', '.join(b.vendor for b in fleet.bmcs)} "
                    f"BMCs on loopback; dumps go to {work / 'crash'}"
                )
                request = CrashRequest(
                    assume_yes=True,
                    watch=WatchOptions(interval=0.2, timeout=60, stall_after=20),
                    reboot_grace_s=30,
                    probe_timeout_s=0.5,
                )
                with renderer:
                    report = run_crash(
                        hosts,
                        request,
                        confirm=lambda plans: True,
                        emit=renderer.event,
                        audit=AuditLog(work / "audit.jsonl", command=["oob", "demo"]),
                    )
                renderer.report(report)
                if not keep:
                    renderer.message(
                        f"(the demo removes {work} now; run it with --keep to look at the dumps)"
                    )
                if keep:
                    stop = threading.Event()
                    # explicit handlers: a shell's background job starts with SIGINT ignored; set
                    # before the control API is announced, so a client that stops us at once is heard
                    for signum in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(signum, lambda *_: stop.set())
                    renderer.message(
                        f"\nthe fleet keeps running (Ctrl-C to stop it). Try:\n"
                        f"  oob bmc info all -i {inventory}\n"
                        f'  curl -X POST {fleet.control_url}/bmcs/{hosts[0].name}/host -d \'{{"state": "hung"}}\'\n'
                        f"  oob crash {hosts[0].name} -i {inventory}\n"
                        f"control API: {fleet.control_url}/bmcs   audit log: {work / 'audit.jsonl'}\n"
                        f"(when stopped, the fleet and {work} are removed)"
                    )
                    sys.stdout.flush()
                    while not stop.wait(1.0):
                        pass
        finally:
            # --keep too, once stopped: the folder holds the fleet's CA and password file
            shutil.rmtree(work, ignore_errors=True)
        raise typer.Exit(report.exit_code)
