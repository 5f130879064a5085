"""SSH for oob (asyncssh): the one place a connection is made, to a dump server or to a host.

Every connection is made the same way, whoever asks for it (the dump watcher's ``ssh://``
targets, ``oob preflight``'s host checks and ``df`` on the dump server, ``oob drill``'s
sysrq write), and the way the engineer's own ``ssh`` would make it:

- the OpenSSH client configuration is honoured (``~/.ssh/config``, or the files in
  ``$OOB_SSH_CONFIG`` / :attr:`SshOptions.config`): Host aliases, HostName, User, Port,
  IdentityFile, ProxyJump, UserKnownHostsFile, IdentityAgent, as asyncssh reads them.  oob
  passes only what the inventory or a flag actually set; the rest is the configuration's,
  then OpenSSH's defaults (the local user, port 22, ``~/.ssh/known_hosts``);
- keys only: ``--ssh-key`` (:attr:`SshOptions.identity_files`), else the inventory's
  ``ssh.key``, else the agent, ``~/.ssh/id_*`` and the configuration's IdentityFile;
  password and keyboard-interactive logins are never tried, so nothing ever prompts;
- jump hosts (the inventory's ``ssh.jump``, else the configuration's ProxyJump) are opened
  here, one by one, each with the same rules (keys only, host key checked, bounded), and the
  connection is tunnelled through the last one (asyncssh's own ProxyJump handling would
  open them with its defaults instead);
- the server's host key is always checked against known_hosts (``--known-hosts``, else the
  inventory's ``ssh.known_hosts``, else the configuration's UserKnownHostsFile, else
  ``~/.ssh/known_hosts``; a configuration that turns checking off is not obeyed); an
  unknown key is refused unless the user accepted new keys explicitly
  (``--accept-new-host-key``: recorded, like OpenSSH's ``StrictHostKeyChecking=accept-new``),
  and a *changed* key is always refused;
- connecting is bounded (:attr:`SshOptions.connect_timeout`, per hop), commands are bounded
  (:func:`run_script`), closing is bounded (:func:`close_connection`).

What a failure becomes depends on whose SSH it is (:class:`SshErrors`): a dump server's
is :class:`~oob.errors.DumpTargetError` / :class:`~oob.errors.HostKeyError` (exit 5,
:data:`DUMP_SERVER`), the host's own is :class:`~oob.errors.HostSshError` (exit 3,
:data:`HOST`: nothing was crashed).  The messages are the same for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from oob.errors import DumpTargetError, HostKeyError, HostSshError, OobError

DEFAULT_SSH_PORT = 22
#: seconds closing an SSH connection may take before it is simply dropped
CLOSE_TIMEOUT = 2.0
#: the environment variable naming the OpenSSH client configuration file ("none": no file)
CONFIG_ENV = "OOB_SSH_CONFIG"
#: most jump hosts on the way to one server
MAX_JUMPS = 8


@dataclass(frozen=True)
class SshOptions:
    """What the command line says (it wins over the inventory and the ssh configuration)."""

    #: known_hosts file; None: the inventory's ssh.known_hosts, the ssh config's, ~/.ssh/known_hosts
    known_hosts: str | None = None
    #: accept a server whose key is not in known_hosts yet, and record it there (like
    #: OpenSSH's StrictHostKeyChecking=accept-new); a *changed* key is refused regardless
    accept_new_host_key: bool = False
    #: private key files; empty: the inventory's ssh.key, else the agent, ~/.ssh/id_* and
    #: the ssh config's IdentityFile
    identity_files: tuple[str, ...] = ()
    connect_timeout: float = 15.0
    keepalive_interval: float = 30.0
    #: OpenSSH client configuration files; None: ``$OOB_SSH_CONFIG`` (``none``: no file), else
    #: ``~/.ssh/config`` when it exists; ``()``: none
    config: tuple[str, ...] | None = None

    def known_hosts_path(self) -> Path:
        return (
            Path(self.known_hosts).expanduser() if self.known_hosts else Path.home() / ".ssh" / "known_hosts"
        )

    def config_paths(self) -> tuple[str, ...]:
        if self.config is not None:
            return tuple(str(Path(p).expanduser()) for p in self.config)
        named = os.environ.get(CONFIG_ENV)
        if named is not None:
            return () if named.strip().lower() in ("", "none") else (str(Path(named.strip()).expanduser()),)
        default = Path.home() / ".ssh" / "config"
        return (str(default),) if os.access(default, os.R_OK) else ()


@dataclass(frozen=True)
class SshAddress:
    """Who logs in where: ``[user@]server[:port]``, and what the inventory says about it.

    ``server`` may be a Host alias of the ssh configuration; ``user`` and ``port`` None: the
    configuration's, then OpenSSH's defaults."""

    user: str | None
    server: str
    port: int | None = None
    #: ProxyJump (``[user@]host[:port]``, comma list); None: the configuration's; "none": direct
    jump: str | None = None
    #: private key files (the inventory's ssh.key); --ssh-key wins
    identity_files: tuple[str, ...] = ()
    #: known_hosts file (the inventory's ssh.known_hosts); --known-hosts wins
    known_hosts: str | None = None

    @property
    def key(self) -> SshAddress:
        """Addresses with the same key share one connection in a :class:`SshPool`."""
        return replace(self, server=self.server.lower())

    @property
    def server_address(self) -> str:
        server = self.server.lower()
        return f"[{server}]" if ":" in server else server

    @property
    def where(self) -> str:
        return self.server_address if self.port is None else f"{self.server_address}:{self.port}"


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


_HOP = re.compile(
    r"(?:(?P<user>[^@\s,]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^@\s,:\[\]]+))(?::(?P<port>\d{1,5}))?"
)


def parse_jump(text: str) -> tuple[SshAddress, ...]:
    """``[user@]host[:port][,...]`` (OpenSSH's ProxyJump; ``[v6]:port``) -> the hops, in order;
    ``none``: no hop.  Raises ValueError naming what is wrong."""
    value = text.strip()
    if value.lower() == "none":
        return ()
    hops = []
    for part in value.split(","):
        match = _HOP.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"'{part.strip()}' is not [user@]host[:port]")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"'{part.strip()}': the port is not a number from 1 to 65535")
        hops.append(SshAddress(match["user"], match["v6"] or match["host"], port, jump="none"))
    if len(hops) > MAX_JUMPS:
        raise ValueError(f"more than {MAX_JUMPS} jump hosts")
    return tuple(hops)


@dataclass(frozen=True)
class SshEndpoint:
    """Where ``ssh NAME`` would connect, by the ssh configuration (nothing is connected)."""

    host: str
    port: int
    #: the configuration's ProxyJump (None: a direct connection)
    jump: str | None


def endpoint(name: str, port: int | None = None, options: SshOptions | None = None) -> SshEndpoint:
    """HostName, Port and ProxyJump the ssh configuration gives ``name`` (``port``, when given,
    wins, as ``ssh -p`` does): for checks below SSH, such as a probe waiting for the banner,
    that must look where SSH would.  Raises ValueError for an unreadable or bad configuration."""
    import getpass

    from asyncssh.config import SSHClientConfig

    paths = (options or SshOptions()).config_paths()
    missing = [path for path in paths if not os.access(path, os.R_OK)]
    if missing:
        raise ValueError(f"cannot read the ssh configuration {', '.join(missing)}")
    try:
        config = SSHClientConfig.load(
            None, list(paths), False, False, False, getpass.getuser(), (), name, port or ()
        )
    except OSError as exc:
        raise ValueError(f"cannot read the ssh configuration: {reason_of(exc)}") from None
    jump = config.get("ProxyJump")
    return SshEndpoint(
        host=str(config.get("Hostname", name) or name),
        port=int(str(config.get("Port", port or DEFAULT_SSH_PORT))),
        jump=str(jump) if jump else None,
    )


@dataclass(frozen=True)
class _Route:
    """One hop as the ssh configuration resolves it: what to connect to, and how."""

    address: SshAddress
    #: the server as messages name it: ``alias (host:port)`` or ``host:port``
    where: str
    #: "" for the server itself, "jump host " for a hop on the way
    role: str
    host: str
    port: int
    user: str
    #: known_hosts files, first is where --accept-new-host-key records; never empty
    known_hosts: tuple[str, ...]
    #: the name known_hosts lists the server under (HostKeyAlias, else the host)
    key_name: str
    #: the configuration's ProxyJump (None: none)
    proxy_jump: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def named(self) -> str:
        """``jump host host:port`` or ``host:port``: what a message starts with after ``ssh``."""
        return f"{self.role}{self.where}"


async def connect(address: SshAddress, options: SshOptions, errors: SshErrors = DUMP_SERVER) -> Any:
    """A new SSH connection (an ``asyncssh.SSHClientConnection``): keys only, host key checked,
    through the jump hosts if any (closing it closes them).

    Raises ``errors.host_key`` for an unknown or changed host key, ``errors.failure`` for
    anything else (refused, timed out, login refused, key unusable, bad ssh configuration)."""
    route = await _resolve(address, options, errors, "")
    jump = address.jump if address.jump is not None else route.proxy_jump
    try:
        hops = parse_jump(jump) if jump else ()
    except ValueError as exc:
        raise errors.failure(f"ssh {route.named}: jump host (ProxyJump): {exc}") from None
    tunnel: Any = None
    try:
        for hop in hops:
            hop = replace(hop, identity_files=address.identity_files, known_hosts=address.known_hosts)
            hop_route = await _resolve(hop, options, errors, "jump host ")
            conn = await _connect_route(hop_route, options, errors, tunnel)
            conn.set_tunnel(tunnel)  # closing a hop closes the hops before it
            tunnel = conn
        conn = await _connect_route(route, options, errors, tunnel)
    except BaseException:
        if tunnel is not None:
            tunnel.abort()
        raise
    if tunnel is not None:
        conn.set_tunnel(tunnel)
    return conn


async def _resolve(address: SshAddress, options: SshOptions, errors: SshErrors, role: str) -> _Route:
    """Read the ssh configuration for ``address`` (asyncssh's own reading of it)."""
    import asyncssh

    given = f"{role}{address.where}"
    config = options.config_paths()
    missing = [path for path in config if not os.access(path, os.R_OK)]
    if missing:
        raise errors.failure(f"ssh {given}: cannot read the ssh configuration {', '.join(missing)}")
    kwargs: dict[str, Any] = {
        "config": list(config),
        # automation never waits at a password prompt
        "password_auth": False,
        "kbdint_auth": False,
        "connect_timeout": options.connect_timeout,
        "keepalive_interval": options.keepalive_interval,
    }
    if address.user:
        kwargs["username"] = address.user
    keys = options.identity_files or address.identity_files
    if keys:
        paths = [Path(p).expanduser() for p in keys]
        absent = [str(key) for key in paths if not key.is_file()]
        if absent:
            raise errors.failure(f"ssh {given}: private key not found: {', '.join(absent)}")
        kwargs["client_keys"] = [str(key) for key in paths]
    try:
        resolved = await asyncssh.SSHClientConnectionOptions.construct(
            host=address.server, port=address.port or (), **kwargs
        )
    except asyncssh.KeyImportError as exc:
        # e.g. a passphrase-protected key: oob never asks for the passphrase (use the agent)
        raise errors.failure(
            f"ssh {given}: cannot use the private key: {exc}; load it into ssh-agent"
        ) from None
    except (ValueError, OSError) as exc:
        raise errors.failure(f"ssh {given}: bad ssh configuration: {reason_of(exc)}") from None
    host, port = str(resolved.host), int(resolved.port)
    shown = f"[{host}]" if ":" in host else host
    where = f"{shown}:{port}"
    if host.lower() != address.server.lower() or (address.port is not None and address.port != port):
        where = f"{address.server} ({where})"
    elif address.port is None and port != DEFAULT_SSH_PORT:
        where = f"{address.server}:{port}"
    known = options.known_hosts or address.known_hosts
    if known:
        files: tuple[str, ...] = (str(Path(known).expanduser()),)
    elif isinstance(resolved.known_hosts, (list, tuple)) and resolved.known_hosts:
        files = tuple(str(Path(str(f)).expanduser()) for f in resolved.known_hosts)
    else:
        # not configured, or the configuration turned checking off: oob checks regardless
        files = (str(Path.home() / ".ssh" / "known_hosts"),)
    proxy_jump = resolved.tunnel if isinstance(resolved.tunnel, str) else None
    return _Route(
        address=address,
        where=where,
        role=role,
        host=host,
        port=port,
        user=str(resolved.username),
        known_hosts=files,
        key_name=str(resolved.host_key_alias or host),
        proxy_jump=proxy_jump,
        kwargs=kwargs,
    )


async def _connect_route(route: _Route, options: SshOptions, errors: SshErrors, tunnel: Any) -> Any:
    import asyncssh

    where = route.named
    kwargs = dict(route.kwargs, tunnel=tunnel, known_hosts=_known_hosts_arg(route.known_hosts))
    address = route.address
    try:
        try:
            return await asyncssh.connect(address.server, address.port or (), **kwargs)
        except asyncssh.HostKeyNotVerifiable:
            if _known_keys(route) is not None:
                raise errors.host_key(
                    f"ssh {where}: the server's host key has CHANGED since it was recorded in "
                    f"{route.known_hosts[0]}; refusing to connect (possible man-in-the-middle; "
                    "if the server was reinstalled, remove the old line with ssh-keygen -R)"
                ) from None
            if not options.accept_new_host_key:
                raise errors.host_key(
                    f"ssh {where}: host key unknown (not in {', '.join(route.known_hosts)}); "
                    "check it and add it (ssh-keyscan), or pass --accept-new-host-key to trust and record it"
                ) from None
            return await _accept_new(route, errors, kwargs)
    except OobError:
        raise
    except asyncssh.KeyImportError as exc:
        # e.g. a passphrase-protected --ssh-key: oob never asks for the passphrase (use the agent)
        raise errors.failure(
            f"ssh {where}: cannot use the private key: {exc}; load it into ssh-agent"
        ) from None
    except asyncssh.PermissionDenied:
        raise errors.failure(
            f"ssh {route.role}{route.user}@{route.where}: login refused (publickey); "
            "check the key (--ssh-key, ssh.key), "
            "the agent or the ssh configuration; oob never uses passwords"
        ) from None
    except asyncssh.ChannelOpenError as exc:
        # the jump host would not open the tunnel to this server
        raise errors.failure(f"ssh {where}: the jump host cannot reach it: {exc.reason}") from None
    except asyncssh.Error as exc:
        raise errors.failure(f"ssh {where}: {exc.reason or type(exc).__name__}") from None
    except (TimeoutError, OSError) as exc:
        raise errors.failure(f"ssh {where}: cannot connect: {reason_of(exc)}") from None


def _known_hosts_arg(files: tuple[str, ...]) -> Any:
    """What asyncssh's ``known_hosts`` gets: the files that exist (none yet: nothing is trusted)."""
    present = [path for path in files if Path(path).is_file()]
    return present or ([], [], [])


def _known_keys(route: _Route) -> list[Any] | None:
    """The keys known_hosts holds for this server, or None when it has none."""
    import asyncssh

    trusted: list[Any] = []
    for path in route.known_hosts:
        if not Path(path).is_file():
            continue
        try:
            port = route.port if route.port != DEFAULT_SSH_PORT else None
            trusted += asyncssh.read_known_hosts(path).match(route.key_name, "", port)[0]
        except (OSError, ValueError, asyncssh.KeyImportError):
            continue
    return trusted or None


async def _accept_new(route: _Route, errors: SshErrors, kwargs: dict[str, Any]) -> Any:
    import asyncssh

    # connect once without verification, take the key this server presented, and record
    # it; the same connection is then used (what OpenSSH's accept-new does)
    address = route.address
    conn = await asyncssh.connect(address.server, address.port or (), **dict(kwargs, known_hosts=None))
    key = conn.get_server_host_key()
    if key is None:  # pragma: no cover - asyncssh always has it after the handshake
        conn.close()
        raise errors.host_key(f"ssh {route.named}: the server presented no host key")
    if _known_keys(route) is not None:  # recorded meanwhile, by someone else
        conn.close()
        raise errors.host_key(f"ssh {route.named}: host key changed while connecting; refusing")
    path = Path(route.known_hosts[0])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = route.key_name
    pattern = name if route.port == DEFAULT_SSH_PORT else f"[{name}]:{route.port}"
    line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
    await asyncio.to_thread(_append, path, line)
    return conn


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="ascii") as handle:
        handle.write(line)


def login_of(conn: Any) -> str:
    """``user@host:port`` a connection actually logged in as, the ssh configuration applied
    (what to show: the inventory may have left user and port to the configuration)."""
    user, host, port = (conn.get_extra_info(name) for name in ("username", "host", "port"))
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"{user}@{shown}:{port}"


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
    """Opens at most one connection (with its SFTP session) per address, on first use."""

    def __init__(self, options: SshOptions | None = None, errors: SshErrors = DUMP_SERVER) -> None:
        self.options = options or SshOptions()
        self.errors = errors
        self._connections: dict[SshAddress, _Connection] = {}
        self._locks: dict[SshAddress, asyncio.Lock] = {}
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
