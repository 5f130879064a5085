"""SSH for oob (asyncssh): the one place a connection is made, to a dump server or to a host.

Every connection is made the same way, whoever asks for it (the dump watcher's ``ssh://``
targets, ``oob preflight``'s host checks and ``df`` on the dump server, ``oob drill``'s
sysrq write):

- keys only: ``--ssh-key`` (:attr:`SshOptions.identity_files`), else the agent,
  ``~/.ssh/id_*`` and ``~/.ssh/config`` as asyncssh reads them; password and
  keyboard-interactive logins are never tried, so nothing ever prompts;
- the server's host key is checked against known_hosts; an unknown key is refused unless
  the user accepted new keys explicitly (``--accept-new-host-key``: recorded, like
  OpenSSH's ``StrictHostKeyChecking=accept-new``), and a *changed* key is always refused;
- connecting is bounded (:attr:`SshOptions.connect_timeout`), commands are bounded
  (:func:`run_script`), closing is bounded (:func:`close_connection`).

What a failure becomes depends on whose SSH it is (:class:`SshErrors`): a dump server's
is :class:`~oob.errors.DumpTargetError` / :class:`~oob.errors.HostKeyError` (exit 5,
:data:`DUMP_SERVER`), the host's own is :class:`~oob.errors.HostSshError` (exit 3,
:data:`HOST`: nothing was crashed).  The messages are the same for both.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oob.errors import DumpTargetError, HostKeyError, HostSshError, OobError

DEFAULT_SSH_PORT = 22
#: seconds closing an SSH connection may take before it is simply dropped
CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True)
class SshOptions:
    #: known_hosts file; None: asyncssh's default (~/.ssh/known_hosts, or ~/.ssh/config's)
    known_hosts: str | None = None
    #: accept a server whose key is not in known_hosts yet, and record it there (like
    #: OpenSSH's StrictHostKeyChecking=accept-new); a *changed* key is refused regardless
    accept_new_host_key: bool = False
    #: private key files; empty: the agent, ~/.ssh/id_* and ~/.ssh/config's IdentityFile
    identity_files: tuple[str, ...] = ()
    connect_timeout: float = 15.0
    keepalive_interval: float = 30.0

    def known_hosts_path(self) -> Path:
        return (
            Path(self.known_hosts).expanduser() if self.known_hosts else Path.home() / ".ssh" / "known_hosts"
        )


@dataclass(frozen=True)
class SshAddress:
    """Who logs in where: ``user@server:port``."""

    user: str
    server: str
    port: int = DEFAULT_SSH_PORT

    @property
    def key(self) -> tuple[str, str, int]:
        """Addresses with the same key share one connection in a :class:`SshPool`."""
        return (self.user, self.server.lower(), self.port)

    @property
    def server_address(self) -> str:
        server = self.server.lower()
        return f"[{server}]" if ":" in server else server

    @property
    def where(self) -> str:
        return f"{self.server_address}:{self.port}"


@dataclass(frozen=True)
class SshErrors:
    """The error classes an SSH failure becomes, by whose SSH it is."""

    #: cannot connect, login refused, key unusable, session refused
    failure: type[OobError]
    #: the server's host key is unknown or changed
    host_key: type[OobError]


#: a dump server's SSH: the dump target cannot be read (exit 5)
DUMP_SERVER = SshErrors(DumpTargetError, HostKeyError)
#: the host's own SSH (preflight, drill): the host was not reached, nothing was crashed (exit 3)
HOST = SshErrors(HostSshError, HostSshError)


def asyncssh_error() -> type[Exception]:
    """asyncssh's base exception (asyncssh is imported on first use: the CLI starts fast)."""
    import asyncssh

    return asyncssh.Error


def reason_of(exc: BaseException) -> str:
    """A short reason for an asyncssh or socket failure (never a traceback)."""
    return getattr(exc, "reason", "") or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


async def connect(address: SshAddress, options: SshOptions, errors: SshErrors = DUMP_SERVER) -> Any:
    """A new SSH connection (an ``asyncssh.SSHClientConnection``): keys only, host key checked.

    Raises ``errors.host_key`` for an unknown or changed host key, ``errors.failure`` for
    anything else (refused, timed out, login refused, key unusable)."""
    import asyncssh

    where = address.where
    kwargs: dict[str, Any] = {
        "username": address.user,
        # automation never waits at a password prompt
        "password_auth": False,
        "kbdint_auth": False,
        "connect_timeout": options.connect_timeout,
        "keepalive_interval": options.keepalive_interval,
    }
    if options.identity_files:
        keys = [Path(p).expanduser() for p in options.identity_files]
        missing = [str(key) for key in keys if not key.is_file()]
        if missing:
            raise errors.failure(f"ssh {where}: private key not found: {', '.join(missing)}")
        kwargs["client_keys"] = [str(key) for key in keys]
    if options.known_hosts:
        path = options.known_hosts_path()
        kwargs["known_hosts"] = str(path) if path.exists() else ([], [], [])
    try:
        try:
            return await asyncssh.connect(address.server, address.port, **kwargs)
        except asyncssh.HostKeyNotVerifiable:
            if _known_keys(address, options) is not None:
                raise errors.host_key(
                    f"ssh {where}: the server's host key has CHANGED since it was recorded in "
                    f"{options.known_hosts_path()}; refusing to connect (possible man-in-the-middle; "
                    "if the server was reinstalled, remove the old line with ssh-keygen -R)"
                ) from None
            if not options.accept_new_host_key:
                raise errors.host_key(
                    f"ssh {where}: host key unknown (not in {options.known_hosts_path()}); "
                    "check it and add it (ssh-keyscan), or pass --accept-new-host-key to trust and record it"
                ) from None
            return await _accept_new(address, options, errors, kwargs)
    except OobError:
        raise
    except asyncssh.KeyImportError as exc:
        # e.g. a passphrase-protected --ssh-key: oob never asks for the passphrase (use the agent)
        raise errors.failure(
            f"ssh {where}: cannot use the private key: {exc}; load it into ssh-agent"
        ) from None
    except asyncssh.PermissionDenied:
        raise errors.failure(
            f"ssh {address.user}@{where}: login refused (publickey); check the key (--ssh-key), "
            "the agent or ~/.ssh/config; oob never uses passwords"
        ) from None
    except asyncssh.Error as exc:
        raise errors.failure(f"ssh {where}: {exc.reason or type(exc).__name__}") from None
    except (TimeoutError, OSError) as exc:
        raise errors.failure(f"ssh {where}: cannot connect: {reason_of(exc)}") from None


def _known_keys(address: SshAddress, options: SshOptions) -> list[Any] | None:
    """The keys known_hosts holds for this server, or None when it has none."""
    import asyncssh

    path = options.known_hosts_path()
    if not path.exists():
        return None
    try:
        trusted = asyncssh.read_known_hosts(str(path)).match(address.server, "", address.port)[0]
    except (OSError, ValueError, asyncssh.KeyImportError):
        return None
    return list(trusted) or None


async def _accept_new(
    address: SshAddress, options: SshOptions, errors: SshErrors, kwargs: dict[str, Any]
) -> Any:
    import asyncssh

    # connect once without verification, take the key this server presented, and record
    # it; the same connection is then used (what OpenSSH's accept-new does)
    conn = await asyncssh.connect(address.server, address.port, **dict(kwargs, known_hosts=None))
    key = conn.get_server_host_key()
    if key is None:  # pragma: no cover - asyncssh always has it after the handshake
        conn.close()
        raise errors.host_key(f"ssh {address.server}:{address.port}: the server presented no host key")
    if _known_keys(address, options) is not None:  # recorded meanwhile, by someone else
        conn.close()
        raise errors.host_key(
            f"ssh {address.server}:{address.port}: host key changed while connecting; refusing"
        )
    path = options.known_hosts_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pattern = address.server if address.port == DEFAULT_SSH_PORT else f"[{address.server}]:{address.port}"
    line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
    await asyncio.to_thread(_append, path, line)
    return conn


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="ascii") as handle:
        handle.write(line)


async def close_connection(conn: Any, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close politely; a connection whose server stopped answering (or that already broke)
    is dropped after ``timeout`` seconds, which also ends any call abandoned on it."""
    try:
        conn.close()
        async with asyncio.timeout(timeout):
            await conn.wait_closed()
    except (OSError, TimeoutError, asyncssh_error()):
        conn.abort()
    except BaseException:
        conn.abort()
        raise


@dataclass(frozen=True)
class Ran:
    stdout: str
    stderr: str
    #: None: the command did not say how it ended (the connection closed, or the time ran out)
    rc: int | None


async def run_script(conn: Any, script: str, *, timeout: float) -> Ran:
    """Run ``script`` with ``sh -s`` (the script on stdin, so it never shows in ``ps``),
    for at most ``timeout`` seconds.  A failure is a :class:`Ran` without ``rc``."""
    try:
        result = await asyncio.wait_for(conn.run("sh -s", input=script, check=False), timeout)
    except (asyncssh_error(), TimeoutError, OSError) as exc:
        return Ran("", reason_of(exc), None)
    return Ran(_text(result.stdout), _text(result.stderr), result.exit_status)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class _Connection:
    """One SSH connection and its SFTP session, shared by every user of one address."""

    def __init__(self, conn: Any, sftp: Any) -> None:
        self.conn = conn
        self.sftp = sftp


class SshPool:
    """Opens at most one connection (with its SFTP session) per (user, server, port), on first use."""

    def __init__(self, options: SshOptions | None = None, errors: SshErrors = DUMP_SERVER) -> None:
        self.options = options or SshOptions()
        self.errors = errors
        self._connections: dict[tuple[str, str, int], _Connection] = {}
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        #: connections opened since the pool was made (the benchmark's figure; 1 per server)
        self.opened = 0

    async def sftp(self, address: SshAddress) -> Any:
        lock = self._locks.setdefault(address.key, asyncio.Lock())
        async with lock:
            connection = self._connections.get(address.key)
            if connection is not None and connection.conn.is_closed():
                connection = None  # the server went away since the last call
            if connection is None:
                connection = await self._open(address)
                self._connections[address.key] = connection
            return connection.sftp

    def forget(self, address: SshAddress) -> None:
        """Drop a connection that broke; the next call opens a new one."""
        connection = self._connections.pop(address.key, None)
        if connection is not None:
            connection.conn.abort()

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            # a connection that already broke has nothing to close: it is dropped below
            with contextlib.suppress(OSError, asyncssh_error()):
                connection.sftp.exit()
            await close_connection(connection.conn)

    async def _open(self, address: SshAddress) -> _Connection:
        import asyncssh

        self.opened += 1
        conn = await connect(address, self.options, self.errors)
        try:
            sftp = await conn.start_sftp_client()
        except asyncssh.Error as exc:
            conn.abort()
            raise self.errors.failure(f"ssh {address.where}: {exc.reason or type(exc).__name__}") from None
        except BaseException:
            conn.abort()
            raise
        return _Connection(conn, sftp)
