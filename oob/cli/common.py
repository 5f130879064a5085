"""Options, inventory loading, confirmation and error handling shared by every command."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from oob.defaults import IN_FLIGHT_GRACE_S, MAX_PARALLEL, MAX_WORKERS
from oob.errors import OobError, worst_exit_code

InventoryOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--inventory",
        "-i",
        metavar="FILE",
        help="Inventory file (TOML, YAML or Ansible YAML); repeatable. Default: $OOB_INVENTORY.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")]
NotifyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--notify",
        metavar="FORMAT=REF",
        help="Post each host's outcome to a webhook: generic=REF, slack=REF or pagerduty=REF[@URL]; "
        "REF is env:VAR, file:PATH or keyring:SERVICE/USER (never the URL itself). Repeatable.",
    ),
]
PrometheusOpt = Annotated[
    Path | None,
    typer.Option(
        "--prometheus-textfile",
        metavar="FILE.prom",
        help="Also write the results as Prometheus metrics for node_exporter's textfile collector (atomically).",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail, and tracebacks on errors.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (automation).")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", "-n", help="Check and show what would happen; send nothing.")
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Do not verify BMC certificates (a warning names each host).")
]
RefreshOpt = Annotated[
    bool,
    typer.Option(
        "--refresh",
        help="Discover each Redfish BMC afresh (service root, system) instead of trusting what oob learnt in the last day.",
    ),
]
ViaOpt = Annotated[
    str | None, typer.Option("--via", metavar="METHOD", help="Use only this method: redfish or ipmi.")
]
ParallelOpt = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        max=MAX_PARALLEL,
        metavar="N",
        help="Hosts handled at once (each BMC one at a time).",
    ),
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        max=MAX_WORKERS,
        metavar="N",
        help="Processes that plan and send, each with its share of the hosts (needs --yes; one CPU each).",
    ),
]
AuditOpt = Annotated[
    Path | None,
    typer.Option(
        "--audit-log",
        metavar="FILE",
        help="Audit log (JSON lines). Default: $OOB_AUDIT_LOG or ~/.local/state/oob/audit.jsonl",
    ),
]
#: how hosts are named on every command line (the inventory's selectors)
SELECTORS_HELP = (
    "Hosts: names (web01), globs (web*), @group, ranges (node[01-20]), comma lists (web01,db02), "
    "or all; several may be given."
)
AllowRepeatOpt = Annotated[
    bool,
    typer.Option(
        "--allow-repeat",
        help="Crash even if the audit log says this host (or its BMC) got an NMI or a SysRq crash "
        "in the last 15 minutes.",
    ),
]
TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="TARGET...", help=SELECTORS_HELP, show_default=False),
]

# --- one host without an inventory (the one-liners) ---------------------------------------
BmcOpt = Annotated[
    str | None,
    typer.Option(
        "--bmc",
        metavar="URL",
        help="One host without an inventory: its BMC (https://10.0.0.5[:PORT], or an address).",
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", metavar="NAME", help="With --bmc: the host's name (default: the BMC's address)."),
]
UserOpt = Annotated[str | None, typer.Option("--user", metavar="USER", help="With --bmc: the BMC user name.")]
PasswordEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--password-env",
        metavar="VAR",
        help="With --bmc: the environment variable holding the BMC password (never the password itself).",
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        metavar="FILE",
        help="With --bmc: a file holding the BMC password (not readable by group or others).",
    ),
]
KindOpt = Annotated[
    str | None,
    typer.Option("--kind", metavar="KIND", help="With --bmc: the BMC kind, as bmc.kind (default auto)."),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-file", metavar="FILE", help="With --bmc: the CA (PEM) the BMC's certificate chains to."
    ),
]
FingerprintOpt = Annotated[
    str | None,
    typer.Option(
        "--fingerprint", metavar="SHA256", help="With --bmc: the SHA-256 of the BMC's certificate (pinned)."
    ),
]
DomainOpt = Annotated[
    str | None,
    typer.Option(
        "--domain",
        metavar="GUEST",
        help="With --bmc and --kind libvirt|esxi: the guest (libvirt name or UUID, ESXi VM name); --bmc is its hypervisor.",
    ),
]
IpmiPortOpt = Annotated[
    int | None,
    typer.Option("--ipmi-port", metavar="PORT", help="With --bmc: the BMC's IPMI (RMCP+) UDP port (623)."),
]


def setup_logging(verbose: bool) -> None:
    import logging  # here, not at the top: `oob --help` should not pay for it

    from oob.safetext import printable

    class TerminalSafeFormatter(logging.Formatter):
        """Log lines quote BMCs, hosts and dump targets: their control characters are
        escaped (one record, one line); a traceback keeps its own line breaks."""

        def format(self, record: logging.LogRecord) -> str:
            record.message = record.getMessage()
            if self.usesTime():
                record.asctime = self.formatTime(record, self.datefmt)
            parts = [printable(self.formatMessage(record))]
            # not record.exc_text: another handler may have cached it unescaped
            if record.exc_info:
                parts.append(self.formatException(record.exc_info))
            elif record.exc_text:
                parts.append(record.exc_text)
            if record.stack_info:
                parts.append(self.formatStack(record.stack_info))
            return "\n".join([parts[0], *(printable(part, keep_newlines=True) for part in parts[1:])])

    class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to whatever sys.stderr is at the time (a test may have replaced it)."""

        oob_terminal_safe = True

        @property
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, value: Any) -> None:
            pass

    root = logging.getLogger()
    # once per process: a second call (tests) replaces the formatter, not the handler
    handler = next((h for h in root.handlers if getattr(h, "oob_terminal_safe", False)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(TerminalSafeFormatter("%(name)s: %(message)s"))
    root.setLevel(logging.WARNING)
    logging.getLogger("oob").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # urllib3 logs each request line at DEBUG; oob's own -v log says what it needs
    logging.getLogger("urllib3").setLevel(logging.WARNING)


@contextmanager
def handle_errors(verbose: bool) -> Iterator[None]:
    """One line and the error's exit code; a traceback only with -v."""
    try:
        yield
    except typer.Exit:
        raise
    except OobError as exc:
        # an error's message may quote a BMC, a host or a dump target: escaped, one line
        from oob.safetext import printable

        if verbose:
            import traceback

            sys.stderr.write(printable(traceback.format_exc(), keep_newlines=True))
        sys.stderr.write(f"oob: error: {printable(exc)}\n")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        sys.stderr.write("oob: interrupted\n")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        from oob.render.jsonl import stdout_gone

        stdout_gone()
        sys.stderr.write("oob: error: the standard output was closed before the report was written\n")
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep the trace for -v
        from oob.safetext import printable

        if verbose:
            import traceback

            sys.stderr.write(printable(traceback.format_exc(), keep_newlines=True))
        sys.stderr.write(
            f"oob: internal error: {type(exc).__name__}: {printable(exc)} (run with -v for details)\n"
        )
        raise typer.Exit(1) from None


def select_hosts(inventory: list[Path] | None, targets: Sequence[str] | None, flags: Any) -> list[Any]:
    """The hosts of a command: from the inventory by selectors, or the one host that
    ``--bmc`` and its companions (``flags``, an :class:`oob.inventory.adhoc.HostFlags`) describe."""
    from dataclasses import replace

    from oob.errors import UsageError
    from oob.inventory.adhoc import host_from_flags

    targets = list(targets or [])
    if flags.bmc is not None:
        if inventory:
            raise UsageError("--bmc describes the host on the command line: no -i/--inventory with it")
        if len(targets) > 1:
            raise UsageError("--bmc describes one host; name it with --name (or as the one TARGET)")
        if targets:
            if flags.name is not None and flags.name != targets[0]:
                raise UsageError("the host is named twice (TARGET and --name): give one")
            flags = replace(flags, name=targets[0])
        return [host_from_flags(flags)]
    if flags.given:
        raise UsageError(f"{', '.join(flags.given)} describe a host without an inventory: add --bmc URL")
    if not targets:
        raise UsageError(
            "which hosts? TARGET... (names, globs, @group, ranges, a,b or all), or one host with --bmc URL"
        )
    return load_hosts(inventory, targets)


def warn_insecure(insecure: bool, hosts: Sequence[Any]) -> None:
    """``--insecure``, said on every command that takes it: certificates are not checked."""
    if not insecure:
        return
    from oob.safetext import printable

    names = ", ".join(printable(h.name) for h in hosts[:10]) + (", ..." if len(hosts) > 10 else "")
    sys.stderr.write(
        f"oob: warning: --insecure: BMC certificates are NOT verified (anyone on the path can "
        f"impersonate the BMC and read its password): {names}\n"
    )


def load_hosts(inventory: list[Path] | None, targets: Sequence[str]) -> list[Any]:
    """The one way every command loads its inventories (``-i``, else ``$OOB_INVENTORY``) and
    selects hosts from them."""
    from oob.errors import UsageError
    from oob.inventory import inventory_paths, load_inventory

    if not targets:
        raise UsageError("which hosts? TARGET... (names, globs, @group, ranges, a,b or all)")
    paths = inventory_paths(list(inventory or []), os.environ)
    return load_inventory(paths).select(list(targets))


def make_renderer(json_output: bool, columns: Sequence[tuple[str, str]] = ()) -> Any:
    """The renderer of per-host outcomes; ``columns`` (detail key, title) for the table."""
    if json_output:
        from oob.render.jsonl import JsonRenderer

        return JsonRenderer(columns)
    from oob.render.console import ConsoleRenderer

    return ConsoleRenderer(columns)


def ask(prompt: str) -> str | None:
    """Ask on stderr, read one line from the terminal. None when there is no terminal:
    automation must say --yes, never pipe an answer in by accident."""
    if sys.stdin is None or not sys.stdin.isatty():
        sys.stderr.write("no terminal to confirm on and no --yes: refusing\n")
        return None
    try:
        _prompting.set()  # from here on, a stop signal raises KeyboardInterrupt (caught below)
        if _stopping.is_set():  # it came just before the question
            return None
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return sys.stdin.readline().strip()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM/SIGHUP) at the question: the answer is no
        sys.stderr.write("\n")
        return None
    finally:
        _prompting.clear()


#: set while ask() waits for an answer: a stop signal then ends the question at once
_prompting = threading.Event()
#: set by the first stop signal of the run
_stopping = threading.Event()


def confirm_hosts(names: Sequence[str], what: str, lines: Sequence[str]) -> bool:
    """The engineer types the host name (one host) or the count (several)."""
    sys.stderr.write(f"About to {what} on {len(names)} host{'s' if len(names) != 1 else ''}:\n")
    for line in lines:
        sys.stderr.write(f"  {line}\n")
    from oob.safetext import printable

    expected = names[0] if len(names) == 1 else str(len(names))
    shown = printable(names[0])
    what_to_type = f"the host name ({shown})" if len(names) == 1 else f"the number of hosts ({len(names)})"
    answer = ask(f"Type {what_to_type} to confirm: ")
    if answer != expected:
        sys.stderr.write("not confirmed; nothing was sent\n")
        return False
    return True


def open_audit(path: Path | None) -> Any:
    from oob.audit import AuditLog, default_audit_path

    return AuditLog(path or default_audit_path(), command=["oob", *sys.argv[1:]])


def finish(outcomes: Sequence[Any]) -> None:
    raise typer.Exit(worst_exit_code([o.exit_code for o in outcomes]))


class Interruption(threading.Event):
    """Set by the first SIGINT, SIGTERM or SIGHUP; ``signum`` says which."""

    signum: int | None = None


#: what ends a run the way Ctrl-C does: the terminal closing (SIGHUP) or a supervisor (SIGTERM)
_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextmanager
def first_interrupt_cancels(message: str) -> Iterator[Interruption]:
    """The first Ctrl-C, SIGTERM or SIGHUP sets the returned event: the runbook starts no
    new crash, lets requests in flight finish within their deadline, logs out and reports
    (``--json`` result lines included).  A second Ctrl-C aborts at once."""
    import signal

    cancel = Interruption()
    signals = [signal.Signals[name] for name in _STOP_SIGNALS]
    previous = {signum: signal.getsignal(signum) for signum in signals}

    def interrupt(signum: int, frame: Any) -> None:
        if cancel.is_set():
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        cancel.signum = signum
        cancel.set()
        _stopping.set()
        # requests in flight get a moment to be answered (a real outcome beats "unknown"),
        # then they are ended: Ctrl-C never waits out a silent BMC's timeout
        grace = threading.Timer(IN_FLIGHT_GRACE_S, _abort_in_flight)
        grace.daemon = True
        grace.start()
        if _prompting.is_set():
            raise KeyboardInterrupt  # ends the question; ask() answers no
        sys.stderr.write(
            f"\ninterrupted ({signal.Signals(signum).name}): {message} (Ctrl-C again to abort)\n"
        )

    _stopping.clear()
    for signum in signals:
        signal.signal(signum, interrupt)
    try:
        yield cancel
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _abort_in_flight() -> None:
    from oob.drivers.redfish.wire import abort_in_flight

    abort_in_flight()


def exit_after_run(cancel: Interruption, exit_codes: Sequence[int]) -> None:
    """A run cut short by a signal never exits 0: 6 when any crash request may have left
    without an answer (the host may be crashing), else 128 + the signal (130 for Ctrl-C,
    143 for SIGTERM, 129 for SIGHUP)."""
    if not cancel.is_set():
        raise typer.Exit(worst_exit_code(list(exit_codes)))
    from oob.errors import OutcomeUnknown

    if OutcomeUnknown.exit_code in exit_codes:
        raise typer.Exit(OutcomeUnknown.exit_code)
    raise typer.Exit(128 + (cancel.signum or 2))


def metrics_path(path: Path | None) -> Path | None:
    """``--prometheus-textfile``, checked before anything is done (a bad path is exit 2 then,
    not after a crash)."""
    if path is None:
        return None
    from oob.metrics import check_path

    return check_path(path.expanduser())


def report_notifications(notifier: Any, renderer: Any) -> None:
    """The end of a run: deliveries get a few seconds; failures are warnings, never an exit code."""
    for line in notifier.close():
        renderer.message(f"warning: {line}")
