"""``python -m mocks serve`` (and ``oob mock serve``): run a mock BMC fleet until signalled.

stdout carries exactly one JSON line, ``{"event": "ready", ...}``, once every BMC listens
(and the inventory, if asked for, is written); everything else goes to stderr.  SIGINT and
SIGTERM stop the fleet cleanly with exit 0.  Usage errors exit 2 with one line.

With ``--dump-root`` the simulated hosts write crash dumps there after an NMI; ``--hung``
starts them hung (their probes silent) so that ``oob crash`` runs against them as it
would against real hung machines, and ``--scale`` makes the crash cycle fast.
``--host-ssh`` makes the hosts answer SSH with a fake, ready kdump state (``oob preflight``).
``--latency-ms`` delays every Redfish response (real BMCs take 100 ms to seconds).
The ready line's ``usage`` (and the stop message) say the mock's own CPU seconds and peak
RSS, so that a benchmark can tell the mock's cost from the client's.
``--hang-kind`` (``hard``, ``softlockup``, ``hungtask``, ``rcustall``, ``oops``) gives the
hung hosts' kernel logs that hang's reports before the NMI panic (:mod:`mocks.kernellog`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, TypedDict

from .faults import FaultError
from .flavours import FLAVOURS, MAIN_FLAVOURS
from .kernellog import HANG_KINDS, hang_kinds
from .layouts import DEFAULT_LAYOUTS, HOST_LAYOUTS, host_layout
from .loopback import BindError, loopback_address, loopback_endpoint

PROG = "mocks"
#: the first word of every message: "mocks", or "oob" when run as `oob mock serve`
NAME = PROG
#: mocks.ipmi_server.CIPHER_MODES, spelt out: importing that module loads pyghmi, which
#: ``--help`` and Redfish-only fleets do not need (a test checks the two agree)
IPMI_CIPHER_MODES: tuple[str, ...] = ("strict", "always3")


class UsageError(Exception):
    """Bad input from the command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors one line (as every other error of oob), not a usage
    block: they are raised as :class:`UsageError`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the CLI with ``argv`` (without the program name); returns the exit code.

    ``prog`` is the command as the user typed it (``oob mock`` from ``oob mock serve``): the
    usage and help say it, and messages start with its first word (``oob: error: ...``).
    """
    global NAME
    NAME = prog.split()[0]
    parser = _parser(prog)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse printed the help
        return int(exit_.code or 0)
    except UsageError as error:
        print(f"{NAME}: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "vendors":
            return _vendors()
        return _serve(args)
    except UsageError as error:
        print(f"{NAME}: error: {error}", file=sys.stderr)
        return 2


#: shown under ``serve --help``
SERVE_EPILOG = """examples:
  one BMC of every flavour:
    %(prog)s --vendors all
  four of each main flavour, and an inventory naming the password as env:BMC_PW:
    %(prog)s --count 4 --write-inventory fleet.toml --password-env BMC_PW
  hung hosts that dump fast, for oob crash -i fleet.toml:
    %(prog)s --dump-root /tmp/dumps --hung --scale 0.02 --write-inventory fleet.toml

stops on SIGINT (Ctrl-C) or SIGTERM; the inventory written is removed then."""


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Mock BMC fleet (Redfish, IPMI) on loopback.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve mock BMCs until SIGINT/SIGTERM",
        description="Serve mock BMCs (and simulated hosts) on loopback until SIGINT or SIGTERM.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    serve.add_argument(
        "--vendors",
        default=",".join(MAIN_FLAVOURS),
        help=f"comma-separated flavours, or 'all' (default: {','.join(MAIN_FLAVOURS)})",
    )
    serve.add_argument("--count", type=int, default=1, help="BMCs of each flavour (default 1)")
    serve.add_argument("--bind", default="127.0.0.1", help="loopback address the BMCs listen on")
    serve.add_argument("--control", default="127.0.0.1:0", help="HOST:PORT of the control API (port 0: any)")
    serve.add_argument(
        "--write-inventory", type=Path, metavar="FILE", help="write an oob inventory once ready"
    )
    serve.add_argument("--inventory-tls", choices=("ca", "fingerprint"), default="ca")
    serve.add_argument(
        "--password-env", metavar="VAR", help="the BMC password is $VAR; the inventory says env:VAR"
    )
    serve.add_argument(
        "--workdir", type=Path, help="directory for the CA and password file (default: temporary)"
    )
    serve.add_argument("--username", default="admin", help="BMC user name (default admin)")
    serve.add_argument("--password-file", type=Path, help="read the BMC password from this file")
    serve.add_argument(
        "--ipmi",
        action="store_true",
        help="every BMC also answers IPMI 2.0 (RMCP+ lanplus) on UDP, same host and credentials "
        "(the 'ipmi' flavour always does, and only that)",
    )
    serve.add_argument(
        "--ipmi-cipher-mode",
        choices=IPMI_CIPHER_MODES,
        default="strict",
        help="strict: cipher suite 3 only, other proposals refused so clients fall back (default); "
        "always3: answer suite 3 whatever was proposed, as stock pyghmi and VirtualBMC do",
    )
    serve.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        metavar="MS",
        help="every Redfish response of every BMC comes this many milliseconds late, as real BMCs "
        "answer (the latency_ms fault; default 0)",
    )
    _host_options(serve)
    commands.add_parser("vendors", help="list the vendor flavours")
    return parser


def _host_options(serve: argparse.ArgumentParser) -> None:
    hosts = serve.add_argument_group(
        "simulated hosts",
        "Each BMC's host has its own address (127.0.1.N) and an SSH-like probe listener that "
        "answers while the host runs; an NMI panics it, kdump writes a dump, it reboots.",
    )
    hosts.add_argument(
        "--dump-root",
        type=Path,
        metavar="DIR",
        help="the hosts' kdump targets: DIR/<host> for local layouts, DIR/nfs and DIR/ssh shared "
        "(default: none, an NMI panics the host and it reboots without a dump)",
    )
    hosts.add_argument(
        "--layouts",
        default=",".join(DEFAULT_LAYOUTS),
        metavar="LIST",
        help=f"comma-separated dump layouts cycled over the hosts (default {','.join(DEFAULT_LAYOUTS)}; "
        f"known: {', '.join(HOST_LAYOUTS)})",
    )
    hosts.add_argument("--hung", action="store_true", help="start every host hung (its probe silent)")
    hosts.add_argument(
        "--vms",
        type=int,
        default=0,
        metavar="N",
        help="also N virtual machines (vm01...): guests of libvirt's test driver in the inventory "
        "(bmc.kind libvirt; needs python3-libvirt for oob to reach them; an NMI is accepted, not simulated)",
    )
    hosts.add_argument(
        "--hang-kind",
        metavar="KIND[,KIND...]",
        help="how the hosts hang, cycled over them like --layouts: the kernel log a hung host's kdump "
        f"saves shows that hang before the NMI panic ({'|'.join(HANG_KINDS)}; none: the NMI panic "
        "alone, the default)",
    )
    hosts.add_argument(
        "--not-armed", action="store_true", help="no crash kernel loaded: an NMI reboots the host, no dump"
    )
    hosts.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every duration of the crash cycle (default 1: about a minute; 0.02: about 1.2 s)",
    )
    hosts.add_argument(
        "--dump-size", default="1M", metavar="SIZE", help="vmcore bytes (K, M, G suffixes; 1M)"
    )
    hosts.add_argument(
        "--dump-rate", default="64K", metavar="SIZE", help="bytes kdump writes per second (64K)"
    )
    hosts.add_argument(
        "--boot-delay", type=float, default=15.0, metavar="S", help="seconds from NMI to dump directory (15)"
    )
    hosts.add_argument(
        "--reboot-time", type=float, default=30.0, metavar="S", help="seconds a reboot takes (30)"
    )
    hosts.add_argument(
        "--host-ssh",
        action="store_true",
        help="the hosts also answer SSH on their address (a real sshd on loopback, one port for all) "
        "with a fake, ready /proc /sys /etc each, for 'oob preflight' and 'oob drill'; the ready line "
        "gives the port, user, client key and known_hosts file",
    )


def _vendors() -> int:
    for flavour in FLAVOURS.values():
        print(f"{flavour.name:16} {flavour.kind:11} {flavour.description}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .fleet import Fleet  # the heavier imports only when serving

    vendors = (
        list(FLAVOURS) if args.vendors.strip() == "all" else [v for v in args.vendors.split(",") if v.strip()]
    )
    unknown = [v for v in vendors if v.strip() not in FLAVOURS]
    if unknown:
        raise UsageError(f"unknown vendor flavour(s) {', '.join(unknown)}; known: {', '.join(FLAVOURS)}")
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.latency_ms < 0:
        raise UsageError("--latency-ms must not be negative")
    try:
        bind = loopback_address(args.bind)
        loopback_endpoint(args.control)
    except BindError as error:
        raise UsageError(str(error)) from None
    password = _password(args)
    host_options = _host_settings(args)

    try:
        fleet = Fleet.start(
            vendors=vendors,
            count=args.count,
            bind=bind,
            workdir=args.workdir,
            control=args.control,
            username=args.username,
            password=password,
            ipmi=args.ipmi,
            ipmi_cipher_mode=args.ipmi_cipher_mode,
            latency_ms=args.latency_ms,
            vms=args.vms,
            **host_options,
        )
    except OSError as error:  # a port in use, an unwritable workdir
        print(f"{NAME}: error: cannot start the fleet: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    restore = _on_signals(stop)
    inventory = None
    try:
        if args.write_inventory is not None:
            reference = f"env:{args.password_env}" if args.password_env else "file"
            inventory = fleet.write_inventory(
                args.write_inventory, tls=args.inventory_tls, password=reference
            )
        ready = {"event": "ready", "inventory": str(inventory) if inventory else None, **fleet.describe()}
        if fleet.host_ssh is not None:
            ready["host_ssh"] = {
                "port": fleet.host_ssh.port,
                "user": fleet.host_ssh.user,
                "client_key": str(fleet.host_ssh.client_key),
                "known_hosts": str(fleet.host_ssh.known_hosts),
            }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        with_ipmi = sum(1 for bmc in fleet.bmcs if bmc.ipmi is not None)
        ipmi_note = f" ({with_ipmi} answer IPMI on UDP)" if with_ipmi else ""
        dumps_note = f"; hosts dump to {fleet.dump_root}" if fleet.dump_root else ""
        print(
            f"{NAME}: {len(fleet.bmcs)} mock BMCs listening on {bind}{ipmi_note}{dumps_note}; "
            f"control API {fleet.control_url}; SIGINT or SIGTERM to stop",
            file=sys.stderr,
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass  # signals were not ours to catch (not the main thread): Ctrl-C still stops cleanly
    except (FaultError, OSError, ValueError) as error:
        print(f"{NAME}: error: {error}", file=sys.stderr)
        return 1
    finally:
        restore()
        usage = fleet.usage()  # before stopping: the threads and descriptors still open
        fleet.stop()
        # the inventory names the fleet's CA and password file, gone with the fleet
        if inventory is not None:
            Path(inventory).unlink(missing_ok=True)
    print(
        f"{NAME}: stopped"
        + (f"; removed {inventory}" if inventory is not None else "")
        + f"; used {usage['cpu_seconds']:.2f} CPU s, peak RSS {usage['peak_rss_mib']:.0f} MiB",
        file=sys.stderr,
    )
    return 0


class HostSettings(TypedDict):
    """Fleet.start's arguments for the simulated hosts."""

    dump_root: Path | None
    layouts: list[str]
    hung: bool
    hang_kind: list[str] | None
    armed: bool
    scale: float
    dump_size: int
    dump_rate: float
    boot_delay: float
    reboot_time: float
    host_ssh: bool


def _host_settings(args: argparse.Namespace) -> HostSettings:
    """The Fleet.start arguments of the simulated hosts, checked."""
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    try:
        for name in layouts:
            host_layout(name)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not layouts:
        raise UsageError("--layouts names no layout")
    kinds = None
    if args.hang_kind is not None:
        kinds = [name.strip() for name in args.hang_kind.split(",") if name.strip()]
        try:
            hang_kinds(kinds)
        except ValueError as error:
            raise UsageError(f"--hang-kind: {error}") from None
    if not args.scale > 0:
        raise UsageError("--scale must be more than 0")
    if args.boot_delay < 0 or args.reboot_time < 0:
        raise UsageError("--boot-delay and --reboot-time must not be negative")
    return {
        "dump_root": args.dump_root,
        "layouts": layouts,
        "hung": args.hung,
        "hang_kind": kinds,
        "armed": not args.not_armed,
        "scale": args.scale,
        "dump_size": parse_size(args.dump_size, "--dump-size"),
        "dump_rate": parse_size(args.dump_rate, "--dump-rate"),
        "boot_delay": args.boot_delay,
        "reboot_time": args.reboot_time,
        "host_ssh": args.host_ssh,
    }


_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str, option: str) -> int:
    """``4096``, ``512K``, ``1M``, ``1MiB``, ``2G`` (powers of 1024) as a positive byte count."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if match is None:
        raise UsageError(f"{option} {text!r}: expected a size such as 4096, 512K, 1M or 2G")
    size = int(float(match[1]) * _UNITS[match[2].lower()])
    if size < 1:
        raise UsageError(f"{option} must be at least 1 byte")
    return size


def _password(args: argparse.Namespace) -> str | None:
    """From --password-file, else $VAR of --password-env, else None (the fleet picks one)."""
    if args.password_file is not None:
        try:
            return str(args.password_file.read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as error:
            raise UsageError(f"cannot read --password-file: {error.strerror}") from None
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise UsageError(f"--password-env {args.password_env}: that variable is not set")
        return value
    return None


def _on_signals(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
