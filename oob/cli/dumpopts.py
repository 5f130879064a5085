"""Options shared by the commands that watch dumps (``oob watch``, ``oob crash``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oob.errors import UsageError

if TYPE_CHECKING:
    from oob.dump.watcher import WatchOptions
    from oob.ssh import SshOptions

TimeoutOpt = Annotated[
    str,
    typer.Option("--timeout", metavar="DURATION", help="Give up on the dump after this long (90s, 30m, 1h)."),
]
IntervalOpt = Annotated[
    float,
    typer.Option(
        "--interval", min=0.05, metavar="SECONDS", help="Seconds between two looks at each dump target."
    ),
]
StallAfterOpt = Annotated[
    str,
    typer.Option(
        "--stall-after", metavar="DURATION", help="Report a dump stalled after this long without growth."
    ),
]
KnownHostsOpt = Annotated[
    Path | None,
    typer.Option(
        "--known-hosts",
        metavar="FILE",
        help="known_hosts file for SSH (dump servers, hosts, jump hosts). Default: the inventory's "
        "ssh.known_hosts, ~/.ssh/config's UserKnownHostsFile, ~/.ssh/known_hosts.",
    ),
]
AcceptNewHostKeyOpt = Annotated[
    bool,
    typer.Option(
        "--accept-new-host-key",
        help="Trust a dump server whose host key is not in known_hosts yet, and record it (a changed key "
        "is still refused).",
    ),
]
SshKeyOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--ssh-key",
        exists=True,
        dir_okay=False,
        metavar="FILE",
        help="Private key for SSH (repeatable; dump servers, hosts, jump hosts). Default: the inventory's "
        "ssh.key, else the agent, ~/.ssh/id_* and ~/.ssh/config's IdentityFile.",
    ),
]
SshConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--ssh-config",
        dir_okay=False,
        metavar="FILE",
        help="OpenSSH client configuration (Host aliases, User, Port, IdentityFile, ProxyJump, "
        "UserKnownHostsFile). Default: $OOB_SSH_CONFIG, else ~/.ssh/config.",
    ),
]

RecoverOpt = Annotated[
    bool,
    typer.Option(
        "--recover",
        help="Power-cycle a host that never dumps, or does not come back after its dump; power on "
        "one that powered off after its dump.",
    ),
]
BmcLogOpt = Annotated[
    bool,
    typer.Option(
        "--bmc-log/--no-bmc-log",
        help="When the watch ends, read each BMC's own event log from 30 minutes before the NMI "
        "(its NMI entry, hardware errors): one more login per host.",
    ),
]
ConsoleOpt = Annotated[
    bool,
    typer.Option(
        "--console/--no-console",
        help="Record each host's serial console over IPMI SOL from before the NMI until the watch "
        "ends (hosts whose BMC speaks IPMI; one more IPMI session each).",
    ),
]
ConsoleDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--console-dir",
        metavar="DIR",
        help="Where consoles are saved (default: consoles/ beside the audit log).",
    ),
]
FenceKdumpOpt = Annotated[
    str | None,
    typer.Option(
        "--fence-kdump",
        metavar="[ADDR:]PORT",
        help="Listen for fence_kdump's 'kdump has started' from the hosts' crash kernels (RHEL "
        "kdump.conf fence_kdump_nodes); default: for hosts with dump.fence_kdump = true, on port 7410.",
    ),
]
RebootGraceOpt = Annotated[
    str,
    typer.Option(
        "--reboot-grace",
        metavar="DURATION",
        help="How long to wait for the host to come back after its dump (0: do not wait).",
    ),
]
ProbeTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--probe-timeout", min=0.1, metavar="SECONDS", help="Seconds the host's probe may take to answer."
    ),
]


def reboot_grace_seconds(text: str) -> float:
    return 0.0 if text.strip() == "0" else parse_duration(text, "--reboot-grace")


def watch_options(*, interval: float, stall_after: str, timeout: str) -> WatchOptions:
    from oob.dump.watcher import WatchOptions

    return WatchOptions(
        interval=interval,
        stall_after=parse_duration(stall_after, "--stall-after"),
        timeout=parse_duration(timeout, "--timeout"),
    )


def ssh_options(
    known_hosts: Path | None,
    accept_new_host_key: bool,
    ssh_key: list[Path] | None,
    ssh_config: Path | None = None,
) -> SshOptions:
    """Only what the flags set: the rest is the inventory's, then ~/.ssh/config's (oob.ssh)."""
    from oob.ssh import SshOptions

    if ssh_config is not None and not ssh_config.expanduser().is_file():
        raise UsageError(f"--ssh-config: {ssh_config} is not a readable file")
    return SshOptions(
        known_hosts=str(known_hosts) if known_hosts else None,
        accept_new_host_key=accept_new_host_key,
        identity_files=tuple(str(p) for p in ssh_key or ()),
        config=(str(ssh_config),) if ssh_config is not None else None,
    )


_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str, option: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1h30m`` -> seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groupdict().values()):
        raise UsageError(f"{option}: '{text}' is not a duration (like 90, 90s, 15m, 2h, 1h30m)")
    hours, minutes, seconds = (float(match[k] or 0) for k in ("h", "m", "s"))
    return hours * 3600 + minutes * 60 + seconds


def parse_since(text: str, now: datetime | None = None) -> float:
    """``--since``: an ISO time (``2024-05-02T03:10``, with or without zone), ``03:10``
    (today, this machine's local time) or a duration ago (``15m``). Seconds since the epoch."""
    now = now or datetime.now().astimezone()
    value = text.strip()
    when: datetime | None = None
    if re.fullmatch(r"\d{1,2}:\d\d(?::\d\d)?", value):
        parts = [int(p) for p in value.split(":")] + [0]
        try:
            when = now.replace(hour=parts[0], minute=parts[1], second=parts[2], microsecond=0)
        except ValueError:
            raise UsageError(f"--since: '{text}' is not a time of day") from None
    elif re.fullmatch(r"\d{4}-\d\d-\d\d([T ].*)?", value):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f"--since: '{text}' is not an ISO date and time (2024-05-02T03:10)") from None
        if when.tzinfo is None:
            when = when.astimezone()  # local time of this machine
    else:
        try:
            return (now - timedelta(seconds=parse_duration(value, "--since"))).timestamp()
        except UsageError:
            raise UsageError(
                f"--since: '{text}' is neither a time (2024-05-02T03:10, 03:10) nor a duration ago (15m)"
            ) from None
    if when > now + timedelta(seconds=60):
        raise UsageError(f"--since: {when.isoformat()} is in the future")
    return when.timestamp()


#: shared by watch, crash and drill
StallGraceOpt = Annotated[
    str,
    typer.Option(
        "--stall-grace",
        metavar="DURATION",
        help="Keep waiting this much longer for a stalled dump to grow again (default 0: a dump "
        "stalled for --stall-after ends the wait, status stalled, exit 5).",
    ),
]


def with_stall_grace(options: WatchOptions, text: str) -> WatchOptions:
    """``options`` with ``--stall-grace`` (``0`` or a duration)."""
    from dataclasses import replace

    grace = 0.0 if text.strip() == "0" else parse_duration(text, "--stall-grace")
    return replace(options, stall_grace=grace)
