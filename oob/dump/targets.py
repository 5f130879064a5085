"""Where dumps land, and the few things the watcher does there.

A :class:`DumpTarget` lists directories, stats files, and reads the first bytes or the
last bytes of a file.  Nothing more: the watcher never copies a vmcore.

- ``file:///path``: a local directory or an NFS export mounted here (:class:`FileTarget`).
  Calls run in worker threads, so a hung NFS server blocks one call, not the event loop.
- ``ssh://user@server[:port]/path``: a dump server, over SFTP (:class:`SshTarget`).  All
  targets on one server share **one** SSH connection (:class:`Targets` keeps them), so a
  hundred hosts dumping to one server cost one login.  Host keys are checked against
  known_hosts; an unknown key is refused unless the user accepted new keys explicitly, and
  a changed key is always refused.  Keys come from ``--ssh-key``, the agent, ``~/.ssh/id_*``
  and ``~/.ssh/config`` as asyncssh reads them; passwords are never tried, so nothing ever
  prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import stat as stat_module
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from oob.dump.layouts import FileInfo
from oob.errors import DumpTargetError, HostKeyError, UsageError

DEFAULT_SSH_PORT = 22


@dataclass(frozen=True)
class TargetSpec:
    """A parsed dump target URL (no I/O)."""

    url: str
    scheme: Literal["file", "ssh"]
    path: str
    user: str | None = None
    server: str | None = None
    port: int = DEFAULT_SSH_PORT

    @property
    def server_key(self) -> tuple[str, str, int] | None:
        """Targets with the same key share one SSH connection."""
        if self.scheme != "ssh" or self.server is None or self.user is None:
            return None
        return (self.user, self.server.lower(), self.port)

    @property
    def key(self) -> str:
        """Targets with the same key are the same directory (hosts sharing it are listed once)."""
        path = posixpath.normpath(self.path)
        if self.scheme == "file":
            return f"file://{path}"
        return f"ssh://{self.user}@{self.server_address}:{self.port}{path}"

    @property
    def server_address(self) -> str:
        server = (self.server or "").lower()
        return f"[{server}]" if ":" in server else server

    def path_of(self, *parts: str) -> str:
        """The absolute path of a directory or file under the target, on its own machine."""
        return posixpath.join(self.path, *parts)

    def location(self, *parts: str) -> str:
        """Where a directory or file is, as an engineer would type it."""
        path = posixpath.join(self.path, *parts)
        if self.scheme == "file":
            return path
        port = "" if self.port == DEFAULT_SSH_PORT else f":{self.port}"
        return f"{self.user}@{self.server_address}{port}:{path}"


def parse_target(url: str) -> TargetSpec:
    """``ssh://user@server[:port]/path``, ``file:///path`` (or a bare absolute path)."""
    text = url.strip()
    if text.startswith("/"):
        return TargetSpec(url=text, scheme="file", path=posixpath.normpath(text))
    expected = "expected ssh://USER@SERVER[:PORT]/PATH or file:///PATH"
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise UsageError(f"dump target '{text}': {expected} (no '?' or '#' parts)")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"dump target '{text}': a file:// target is a local path (file:///PATH)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise UsageError(f"dump target '{text}': {expected}")
        return TargetSpec(url=text, scheme="file", path=posixpath.normpath(path))
    if parts.scheme == "ssh":
        if parts.password is not None:
            raise UsageError(f"dump target '{text}': no password in the URL; ssh uses keys")
        try:
            port = parts.port or DEFAULT_SSH_PORT
        except ValueError:
            raise UsageError(f"dump target '{text}': the port must be a number from 1 to 65535") from None
        if not parts.username or not parts.hostname:
            raise UsageError(f"dump target '{text}': {expected} (user and server are required)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise UsageError(f"dump target '{text}': {expected} (the path must be absolute)")
        return TargetSpec(
            url=text, scheme="ssh", path=posixpath.normpath(path), user=unquote(parts.username),
            server=parts.hostname, port=port,
        )
    raise UsageError(f"dump target '{text}': {expected}")


def _check_parts(parts: tuple[str, ...]) -> None:
    # names come from the server's own listings; still, never let one climb out of the target
    for part in parts:
        if not part or part in (".", "..") or "/" in part:
            raise DumpTargetError(f"refusing the path component {part!r}")


class DumpTarget(ABC):
    """The read-only operations the watcher needs on a dump target."""

    spec: TargetSpec

    @abstractmethod
    async def listdir(self, *parts: str) -> list[FileInfo] | None:
        """Entries of the target directory (or a directory under it); None if it does not exist."""

    @abstractmethod
    async def stat(self, *parts: str) -> FileInfo | None:
        """One entry; None if it does not exist."""

    @abstractmethod
    async def read_head(self, *parts: str, size: int) -> bytes:
        """Up to ``size`` bytes from the start of a file."""

    @abstractmethod
    async def read_tail(self, *parts: str, size: int) -> bytes:
        """Up to ``size`` bytes from the end of a file."""

    async def close(self) -> None:
        """Release what this target holds (shared connections are closed by :class:`Targets`)."""


class FileTarget(DumpTarget):
    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec

    def _path(self, parts: tuple[str, ...]) -> str:
        _check_parts(parts)
        return os.path.join(self.spec.path, *parts)

    async def listdir(self, *parts: str) -> list[FileInfo] | None:
        return await asyncio.to_thread(self._list, self._path(parts), not parts)

    def _list(self, path: str, is_root: bool) -> list[FileInfo] | None:
        try:
            with os.scandir(path) as entries:
                found = []
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # renamed between listing and stat (vmcore-incomplete -> vmcore)
                    found.append(FileInfo(entry.name, info.st_size, info.st_mtime, stat_module.S_ISDIR(info.st_mode)))
                return found
        except FileNotFoundError:
            if is_root:
                raise DumpTargetError(f"{path}: no such directory") from None
            return None
        except NotADirectoryError:
            raise DumpTargetError(f"{path}: not a directory") from None
        except PermissionError:
            raise DumpTargetError(f"{path}: permission denied") from None
        except OSError as exc:
            raise DumpTargetError(f"{path}: {exc.strerror or exc}") from None

    async def stat(self, *parts: str) -> FileInfo | None:
        path = self._path(parts)
        try:
            info = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DumpTargetError(f"{path}: {exc.strerror or exc}") from None
        return FileInfo(parts[-1] if parts else "", info.st_size, info.st_mtime, stat_module.S_ISDIR(info.st_mode))

    async def read_head(self, *parts: str, size: int) -> bytes:
        return await asyncio.to_thread(self._read, self._path(parts), size, False)

    async def read_tail(self, *parts: str, size: int) -> bytes:
        return await asyncio.to_thread(self._read, self._path(parts), size, True)

    @staticmethod
    def _read(path: str, size: int, tail: bool) -> bytes:
        try:
            with open(path, "rb") as handle:
                if tail:
                    end = handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, end - size))
                return handle.read(size)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise DumpTargetError(f"{path}: {exc.strerror or exc}") from None


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
        return Path(self.known_hosts).expanduser() if self.known_hosts else Path.home() / ".ssh" / "known_hosts"


class _Connection:
    """One SSH connection and its SFTP session, shared by every target on a server."""

    def __init__(self, conn: Any, sftp: Any) -> None:
        self.conn = conn
        self.sftp = sftp

    async def close(self) -> None:
        self.sftp.exit()
        self.conn.close()
        await self.conn.wait_closed()


class SshPool:
    """Opens at most one connection per (user, server, port), on first use."""

    def __init__(self, options: SshOptions | None = None) -> None:
        self.options = options or SshOptions()
        self._connections: dict[tuple[str, str, int], _Connection] = {}
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        #: connections opened since the pool was made (the benchmark's figure; 1 per server)
        self.opened = 0

    async def sftp(self, spec: TargetSpec) -> Any:
        key = spec.server_key
        assert key is not None
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            connection = self._connections.get(key)
            if connection is not None and connection.conn.is_closed():
                connection = None  # the server went away since the last call
            if connection is None:
                connection = await self._open(spec)
                self._connections[key] = connection
            return connection.sftp

    def forget(self, spec: TargetSpec) -> None:
        """Drop a connection that broke; the next call opens a new one."""
        key = spec.server_key
        if key is not None:
            connection = self._connections.pop(key, None)
            if connection is not None:
                connection.conn.abort()

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            # closing a connection that already broke: nothing to report
            with contextlib.suppress(OSError, asyncio.TimeoutError, asyncssh_errors()):
                await connection.close()

    async def _open(self, spec: TargetSpec) -> _Connection:
        import asyncssh

        conn = await self.connect(spec)
        try:
            sftp = await conn.start_sftp_client()
        except asyncssh.Error as exc:
            conn.abort()
            raise DumpTargetError(f"ssh {spec.server_address}:{spec.port}: {exc.reason or type(exc).__name__}") from None
        except BaseException:
            conn.abort()
            raise
        return _Connection(conn, sftp)

    async def connect(self, spec: TargetSpec) -> Any:
        """A new SSH connection (asyncssh) to ``spec``'s server: keys only, host key checked as
        for dump targets.  Also what ``oob preflight`` and ``oob drill`` use to reach a host."""
        import asyncssh

        where = f"{spec.server_address}:{spec.port}"
        options: dict[str, Any] = {
            "username": spec.user,
            # automation never waits at a password prompt
            "password_auth": False,
            "kbdint_auth": False,
            "connect_timeout": self.options.connect_timeout,
            "keepalive_interval": self.options.keepalive_interval,
        }
        if self.options.identity_files:
            keys = [Path(p).expanduser() for p in self.options.identity_files]
            missing = [str(key) for key in keys if not key.is_file()]
            if missing:
                raise DumpTargetError(f"ssh {where}: private key not found: {', '.join(missing)}")
            options["client_keys"] = [str(key) for key in keys]
        if self.options.known_hosts:
            path = self.options.known_hosts_path()
            options["known_hosts"] = str(path) if path.exists() else ([], [], [])
        self.opened += 1
        try:
            try:
                conn = await asyncssh.connect(spec.server, spec.port, **options)
            except asyncssh.HostKeyNotVerifiable:
                if self._known_key_for(spec) is not None:
                    raise HostKeyError(
                        f"ssh {where}: the server's host key has CHANGED since it was recorded in "
                        f"{self.options.known_hosts_path()}; refusing to connect (possible man-in-the-middle; "
                        "if the server was reinstalled, remove the old line with ssh-keygen -R)"
                    ) from None
                if not self.options.accept_new_host_key:
                    raise HostKeyError(
                        f"ssh {where}: host key unknown (not in {self.options.known_hosts_path()}); "
                        "check it and add it (ssh-keyscan), or pass --accept-new-host-key to trust and record it"
                    ) from None
                conn = await self._accept_new(spec, options)
        except (HostKeyError, DumpTargetError):
            raise
        except asyncssh.KeyImportError as exc:
            # e.g. a passphrase-protected --ssh-key: oob never asks for the passphrase (use the agent)
            raise DumpTargetError(f"ssh {where}: cannot use the private key: {exc}; load it into ssh-agent") from None
        except asyncssh.PermissionDenied:
            raise DumpTargetError(
                f"ssh {spec.user}@{where}: login refused (publickey); check the key (--ssh-key), "
                "the agent or ~/.ssh/config; oob never uses passwords"
            ) from None
        except asyncssh.Error as exc:
            raise DumpTargetError(f"ssh {where}: {exc.reason or type(exc).__name__}") from None
        except (TimeoutError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise DumpTargetError(f"ssh {where}: cannot connect: {reason}") from None
        return conn

    def _known_key_for(self, spec: TargetSpec) -> list[Any] | None:
        """The keys known_hosts holds for this server, or None when it has none."""
        import asyncssh

        path = self.options.known_hosts_path()
        if not path.exists():
            return None
        try:
            trusted = asyncssh.read_known_hosts(str(path)).match(spec.server or "", "", spec.port)[0]
        except (OSError, ValueError, asyncssh.KeyImportError):
            return None
        return list(trusted) or None

    async def _accept_new(self, spec: TargetSpec, options: dict[str, Any]) -> Any:
        import asyncssh

        # connect once without verification, take the key this server presented, and record
        # it; the same connection is then used (what OpenSSH's accept-new does)
        options = dict(options, known_hosts=None)
        conn = await asyncssh.connect(spec.server, spec.port, **options)
        key = conn.get_server_host_key()
        if key is None:  # pragma: no cover - asyncssh always has it after the handshake
            conn.close()
            raise HostKeyError(f"ssh {spec.server}:{spec.port}: the server presented no host key")
        if self._known_key_for(spec) is not None:  # recorded meanwhile, by someone else
            conn.close()
            raise HostKeyError(f"ssh {spec.server}:{spec.port}: host key changed while connecting; refusing")
        path = self.options.known_hosts_path()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pattern = spec.server if spec.port == DEFAULT_SSH_PORT else f"[{spec.server}]:{spec.port}"
        line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
        await asyncio.to_thread(_append, path, line)
        return conn


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="ascii") as handle:
        handle.write(line)


def asyncssh_errors() -> type[Exception]:
    import asyncssh

    return asyncssh.Error


class SshTarget(DumpTarget):
    def __init__(self, spec: TargetSpec, pool: SshPool) -> None:
        self.spec = spec
        self.pool = pool

    def _path(self, parts: tuple[str, ...]) -> str:
        _check_parts(parts)
        return posixpath.join(self.spec.path, *parts)

    async def _call(self, what: str, path: str, operation: Any) -> Any:
        import asyncssh

        sftp = await self.pool.sftp(self.spec)
        try:
            return await operation(sftp)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return None
        except asyncssh.SFTPPermissionDenied:
            raise DumpTargetError(f"{what} {path}: permission denied") from None
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection, asyncssh.ConnectionLost,
                asyncssh.DisconnectError, OSError) as exc:
            # the next call opens a new connection
            self.pool.forget(self.spec)
            reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
            raise DumpTargetError(f"connection lost ({reason})") from None
        except asyncssh.SFTPError as exc:
            raise DumpTargetError(f"{what} {path}: {exc.reason}") from None

    async def listdir(self, *parts: str) -> list[FileInfo] | None:
        path = self._path(parts)

        async def operation(sftp: Any) -> list[FileInfo]:
            names = await sftp.readdir(path)
            found = []
            for entry in names:
                if entry.filename in (".", ".."):
                    continue
                attrs = entry.attrs
                is_dir = attrs.permissions is not None and stat_module.S_ISDIR(attrs.permissions)
                found.append(FileInfo(entry.filename, attrs.size or 0, float(attrs.mtime or 0), is_dir))
            return found

        result = await self._call("list", path, operation)
        if result is None and not parts:
            raise DumpTargetError(f"{self.spec.location()}: no such directory")
        return result  # type: ignore[no-any-return]

    async def stat(self, *parts: str) -> FileInfo | None:
        path = self._path(parts)

        async def operation(sftp: Any) -> FileInfo:
            attrs = await sftp.stat(path)
            is_dir = attrs.permissions is not None and stat_module.S_ISDIR(attrs.permissions)
            return FileInfo(parts[-1] if parts else "", attrs.size or 0, float(attrs.mtime or 0), is_dir)

        return await self._call("stat", path, operation)  # type: ignore[no-any-return]

    async def read_head(self, *parts: str, size: int) -> bytes:
        return await self._read(parts, size, tail=False)

    async def read_tail(self, *parts: str, size: int) -> bytes:
        return await self._read(parts, size, tail=True)

    async def _read(self, parts: tuple[str, ...], size: int, tail: bool) -> bytes:
        path = self._path(parts)

        async def operation(sftp: Any) -> bytes:
            async with sftp.open(path, "rb") as handle:
                offset = 0
                if tail:
                    attrs = await handle.stat()
                    offset = max(0, (attrs.size or 0) - size)
                data = await handle.read(size, offset)
                return bytes(data)

        return await self._call("read", path, operation) or b""


class Targets:
    """Makes dump targets; targets on one SSH server share one connection."""

    def __init__(self, ssh: SshOptions | None = None) -> None:
        self.ssh = SshPool(ssh)
        self._targets: dict[str, DumpTarget] = {}

    def get(self, url: str | TargetSpec) -> DumpTarget:
        spec = parse_target(url) if isinstance(url, str) else url
        target = self._targets.get(spec.key)
        if target is None:
            target = FileTarget(spec) if spec.scheme == "file" else SshTarget(spec, self.ssh)
            self._targets[spec.key] = target
        return target

    @property
    def connections_opened(self) -> int:
        return self.ssh.opened

    async def close(self) -> None:
        for target in self._targets.values():
            await target.close()
        await self.ssh.close()
