"""Commands on the host itself over SSH (asyncssh): keys only, host keys checked.

The connection is made exactly as for ``ssh://`` dump targets (:class:`oob.dump.targets.SshPool`):
``--ssh-key``, the agent, ``~/.ssh/id_*``; known_hosts; ``--accept-new-host-key``; never a
password.  The login is the inventory's ``ssh.user`` (root) on ``address``:``ssh.port`` (22).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Self

from oob.dump.targets import SshOptions, SshPool, TargetSpec
from oob.errors import DumpTargetError, UsageError
from oob.model import Host


@dataclass(frozen=True)
class Ran:
    stdout: str
    stderr: str
    #: None: the connection closed before the command said how it ended
    rc: int | None


def host_spec(host: Host) -> TargetSpec:
    if not host.address:
        raise UsageError(f"host '{host.name}' has no address in the inventory: oob cannot log in to it", host=host.name)
    return TargetSpec(url=f"ssh://{host.ssh.user}@{host.address}:{host.ssh.port}/", scheme="ssh", path="/",
                      user=host.ssh.user, server=host.address, port=host.ssh.port)


class HostShell:
    """One SSH connection to one host; run commands on it, then close."""

    def __init__(self, host: Host, options: SshOptions | None = None) -> None:
        self.host = host
        self.options = options or SshOptions()
        self._conn: Any = None

    async def __aenter__(self) -> Self:
        pool = SshPool(self.options)
        try:
            self._conn = await pool.connect(host_spec(self.host))
        except DumpTargetError as exc:
            exc.for_host(self.host.name)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except (TimeoutError, OSError):
                conn.abort()

    async def run(self, script: str, *, timeout: float = 30.0) -> Ran:
        """Run ``script`` with ``sh -s`` (the script on stdin, so it never shows in ``ps``)."""
        import asyncssh

        try:
            result = await asyncio.wait_for(self._conn.run("sh -s", input=script, check=False), timeout)
        except asyncssh.Error as exc:
            return Ran("", exc.reason or type(exc).__name__, None)
        except (TimeoutError, OSError) as exc:
            return Ran("", str(exc) or type(exc).__name__, None)
        return Ran(_text(result.stdout), _text(result.stderr), result.exit_status)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
