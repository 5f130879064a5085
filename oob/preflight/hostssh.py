"""Commands on the host itself over SSH: one connection made by :mod:`oob.ssh`.

Keys only (``--ssh-key``, ``ssh.key``, the agent, ``~/.ssh/id_*``), known_hosts,
``--accept-new-host-key``, never a password, exactly as for ``ssh://`` dump targets.  The login
is the inventory's ``ssh.user`` on ``address``:``ssh.port`` through ``ssh.jump``; what the
inventory leaves out is the user's ssh configuration's (``~/.ssh/config``), then OpenSSH's.  A failure to connect or log in is
:class:`~oob.errors.HostSshError` (the host's own SSH, exit 3), never a dump target's error.
"""

from __future__ import annotations

from typing import Any, Self

from oob.errors import OobError, UsageError
from oob.model import Host
from oob.ssh import HOST, Ran, SshAddress, SshOptions, close_connection, connect, login_of, run_script

__all__ = ["HostShell", "Ran", "host_address"]


def host_address(host: Host) -> SshAddress:
    if not host.address:
        raise UsageError(
            f"host '{host.name}' has no address in the inventory: oob cannot log in to it", host=host.name
        )
    ssh = host.ssh
    keys = (ssh.key,) if ssh.key else ()
    return SshAddress(ssh.user, host.address, ssh.port, ssh.jump, keys, ssh.known_hosts)


class HostShell:
    """One SSH connection to one host; run commands on it, then close."""

    def __init__(self, host: Host, options: SshOptions | None = None) -> None:
        self.host = host
        self.options = options or SshOptions()
        self._conn: Any = None

    async def __aenter__(self) -> Self:
        try:
            self._conn = await connect(host_address(self.host), self.options, HOST)
        except OobError as exc:
            exc.for_host(self.host.name)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await close_connection(conn)

    @property
    def login(self) -> str:
        """``user@host:port`` as logged in (the ssh configuration applied)."""
        return login_of(self._conn)

    async def run(self, script: str, *, timeout: float = 30.0) -> Ran:
        """Run ``script`` with ``sh -s`` (the script on stdin, so it never shows in ``ps``)."""
        return await run_script(self._conn, script, timeout=timeout)
