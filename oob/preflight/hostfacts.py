"""Gather a host's kdump facts over SSH: one script, then ``df`` of a local dump target."""

from __future__ import annotations

import socket
from dataclasses import replace

from oob.errors import HostSshError
from oob.model import Host
from oob.preflight.checks import HostView, local_dump_path
from oob.preflight.facts import FACTS_SCRIPT, HostFacts, df_script, parse_facts
from oob.preflight.hostssh import HostShell
from oob.ssh import SshOptions


async def gather(
    host: Host, options: SshOptions | None = None, *, hpe: bool | None = None, timeout: float = 30.0
) -> HostView:
    """The host's facts (raises :class:`~oob.errors.HostSshError` when SSH fails)."""
    async with HostShell(host, options) as shell:
        ran = await shell.run(FACTS_SCRIPT, timeout=timeout)
        facts: HostFacts = parse_facts(ran.stdout)
        if ran.rc is None and not facts.files:
            raise HostSshError(f"the facts script did not run: {ran.stderr.strip()}", host=host.name)
        view = HostView.of(host, facts, hpe=hpe)
        path = local_dump_path(view)
        if path is not None:
            df = await shell.run(df_script(path), timeout=timeout)
            view = HostView.of(host, facts.with_free(path, df.stdout + df.stderr), hpe=hpe)
        return replace(view, login=shell.login, this_machine=this_machine(facts.ssh_client()))


def this_machine(ssh_client: str | None) -> tuple[str, ...]:
    """How the host may name this machine: the address its SSH login came from, when that is an
    address of this machine (not a jump host's), then this machine's host name."""
    names: list[str] = []
    if ssh_client is not None and is_local_address(ssh_client):
        names.append(ssh_client)
    hostname = socket.gethostname()
    if hostname:
        names.append(hostname.lower())
    return tuple(dict.fromkeys(names))


def is_local_address(address: str) -> bool:
    """Whether ``address`` is one of this machine's: only a local address can be bound to."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True
