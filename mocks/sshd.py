"""A real OpenSSH ``sshd`` on loopback, for tests that need an SSH or SFTP server.

    with SshServer.start(tmp_path / "sshd") as server:
        server.url("/srv/crash")          # ssh://USER@127.0.0.1:PORT/srv/crash
        server.client_key                 # private key that may log in (OpenSSH format)
        server.known_hosts                # known_hosts naming this server's host key
        server.accepted_logins()          # logins so far, from sshd's own log
        server.sftp_reads()               # [(path, bytes read)] per file closed over SFTP

    # a jump host (ProxyJump) in front of a target on another loopback address
    with SshServer.start(tmp_path / "jump") as jump, \
         SshServer.start(tmp_path / "target", host="127.0.0.2", authorized_keys=[jump.client_key]) as target:
        jump.forwarded_to(target.host, target.port)   # connections jump's sshd opened to the target
        opened_by(os.getpid(), target.host, target.port)  # and those this process opened itself

    # an SFTP server that stops answering at its third READDIR, while sshd itself
    # (and so SSH keepalives) carries on: what a hung NFS mount on a dump server looks like
    with SshServer.start(tmp_path / "sshd", sftp_stall_after_readdirs=2) as server:
        ...
        server.sftp_stalled()             # True once the SFTP server stopped answering

    # any number of loopback addresses on one port: OpenSSH listens on at most 16 addresses
    # per sshd (MAX_LISTEN_SOCKS), so as many sshd as needed, sharing keys and known_hosts
    with SshServerGroup.start(tmp_path / "hosts", [f"127.0.1.{n}" for n in range(1, 41)]) as group:
        group.port, group.user, group.client_key, group.known_hosts   # as for one server
        group.pids()                      # the sshd listeners (here 3)

Everything lives in one directory: a generated ed25519 host key and user key, the
``authorized_keys``, ``known_hosts``, ``sshd_config`` and the log.  The server listens on
127.0.0.1 (or ::1) only, on a free port, as the current user (root included), with
``UsePAM no`` and ``StrictModes no`` so that no system setup is needed, public keys
only, and OpenSSH's ``sftp-server`` logging every file it serves (``sftp.log``).  Sessions
get an empty ``HOME`` of their own (``home/``), so the user's shell start-up files do not
run for each of them.
"""

from __future__ import annotations

import getpass
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from .loopback import loopback_address, url_host

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
SFTP_SERVER_CANDIDATES = (
    "/usr/lib/openssh/sftp-server",  # Debian, Ubuntu
    "/usr/libexec/openssh/sftp-server",  # Fedora, RHEL
    "/usr/lib/ssh/sftp-server",  # Arch, SUSE
    "/usr/libexec/sftp-server",
)


class SshdUnavailable(RuntimeError):
    """sshd is not installed, or would not start."""


class SshdPortInUse(SshdUnavailable):
    """Another socket holds the port on one of the addresses (a race: try another port)."""


def find_sshd() -> str:
    """Absolute path of sshd (it re-executes itself, so it must be absolute); usually in
    /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which("sshd")
    candidates = ([found] if found else []) + list(SSHD_CANDIDATES)
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise SshdUnavailable("sshd not found: install openssh-server (scripts/test does)")


def find_sftp_server() -> str | None:
    return next((c for c in SFTP_SERVER_CANDIDATES if os.path.isfile(c) and os.access(c, os.X_OK)), None)


def generate_keypair(path: Path, comment: str) -> str:
    """An ed25519 key pair in OpenSSH format (``path`` and ``path.pub``); returns the public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.write_bytes(private)
    path.chmod(0o600)
    line = f"{public.decode()} {comment}"
    Path(f"{path}.pub").write_text(line + "\n")
    return line


@dataclass(frozen=True)
class SshKeys:
    """The keys of a server (or of every server of a group): its host key, the user's key
    and the ``authorized_keys`` that lets it in."""

    user: str
    host_key_path: Path
    #: the host key's public line (``ssh-ed25519 AAAA...``)
    host_key: str
    #: private key the user logs in with
    client_key: Path
    authorized_keys: Path

    @classmethod
    def create(cls, directory: Path, authorized_keys: Sequence[Path] = ()) -> SshKeys:
        """New ed25519 keys in ``directory``; ``authorized_keys``: further private keys (their
        ``.pub`` next to them) that may log in too."""
        directory.mkdir(parents=True, exist_ok=True)
        user = getpass.getuser()
        host_key_path = directory / "ssh_host_ed25519_key"
        host_key = generate_keypair(host_key_path, "oob-test-sshd").rsplit(" ", 1)[0]
        client_key = directory / "id_ed25519"
        user_key = generate_keypair(client_key, f"{user}@oob-test")
        others = [Path(f"{key}.pub").read_text().strip() for key in authorized_keys]
        authorized = directory / "authorized_keys"
        authorized.write_text("".join(line + "\n" for line in (user_key, *others)))
        return cls(user, host_key_path, host_key, client_key, authorized)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free_on(port: int, addresses: Iterable[str]) -> bool:
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


#: OpenSSH's MAX_LISTEN_SOCKS: one sshd refuses to start with more ListenAddress lines
MAX_LISTEN_ADDRESSES = 16


#: sshd's error for one ListenAddress it could not bind (it then serves the others)
_BIND_FAILED_RE = re.compile(r"Bind to port \d+ on \S+ failed: (?P<reason>[^\n]*)")


def _bind_failure(log: str) -> type[SshdUnavailable] | None:
    """What sshd's log says of its binds: None if none failed, :class:`SshdPortInUse` if
    another socket held the port (the only failure another port can cure)."""
    reasons = [match["reason"] for match in _BIND_FAILED_RE.finditer(log)]
    if not reasons:
        return None
    in_use = all(reason.startswith("Address already in use") for reason in reasons)
    return SshdPortInUse if in_use else SshdUnavailable


_CLOSE_RE = re.compile(r'close "(?P<path>[^"]*)" bytes read (?P<read>\d+) written (?P<written>\d+)')


@dataclass
class SshServer:
    workdir: Path
    host: str
    port: int
    user: str
    #: private key the user logs in with
    client_key: Path
    #: a known_hosts file holding this server's host key
    known_hosts: Path
    #: the host key's public line (``ssh-ed25519 AAAA...``)
    host_key: str
    log_path: Path
    keys: SshKeys = field(repr=False)
    #: further addresses it listens on, same port (at most 15: :data:`MAX_LISTEN_ADDRESSES`)
    also_listen: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: forward this many SFTP READDIR requests, then no request at all (None: a normal server)
    sftp_stall_after_readdirs: int | None = None
    log_level: str = "VERBOSE"

    @classmethod
    def start(
        cls,
        workdir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_config: Sequence[str] = (),
        startup_timeout: float = 10.0,
        sftp_stall_after_readdirs: int | None = None,
        authorized_keys: Sequence[Path] = (),
        log_level: str = "VERBOSE",
        also_listen: Sequence[str] = (),
        keys: SshKeys | None = None,
    ) -> SshServer:
        """Generate keys and config in ``workdir`` (a new temporary directory if None) and
        start sshd; returns once it accepts connections.

        ``sftp_stall_after_readdirs``: run the sftp-server behind a proxy
        (:func:`stall_sftp`) that forwards that many READDIR requests and then stops
        forwarding any request (from the next READDIR on), while the SSH connection stays up.

        ``authorized_keys``: further private keys (their ``.pub`` next to them) that may log in,
        e.g. another server's ``client_key`` so that one key opens both a jump host and its target.
        ``log_level``: sshd's LogLevel (``DEBUG1`` logs each forwarded channel a jump host opens).
        ``also_listen``: further loopback addresses it listens on, on the same port (with
        ``host``, at most :data:`MAX_LISTEN_ADDRESSES`; :class:`SshServerGroup` serves more).
        ``keys``: keys made beforehand (:meth:`SshKeys.create`), shared with other servers;
        then ``authorized_keys`` must be empty (they went into ``keys``)."""
        sshd = find_sshd()
        host = loopback_address(host)
        others = tuple(loopback_address(address) for address in also_listen)
        if 1 + len(others) > MAX_LISTEN_ADDRESSES:
            raise ValueError(
                f"one sshd listens on at most {MAX_LISTEN_ADDRESSES} addresses; "
                f"{1 + len(others)} asked for: use SshServerGroup"
            )
        if keys is not None and authorized_keys:
            raise ValueError("authorized_keys go into SshKeys.create when keys are shared")
        workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="oob-sshd-"))
        workdir.mkdir(parents=True, exist_ok=True)
        keys = keys or SshKeys.create(workdir, authorized_keys)
        if os.geteuid() == 0:
            # sshd started by root insists on its privilege-separation directory
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        last_error = ""
        for _ in range(5):
            chosen = port or _free_port(host)
            server = cls(
                workdir=workdir,
                host=host,
                port=chosen,
                user=keys.user,
                client_key=keys.client_key,
                known_hosts=workdir / "known_hosts",
                host_key=keys.host_key,
                log_path=workdir / "sshd.log",
                keys=keys,
                also_listen=others,
                sftp_stall_after_readdirs=sftp_stall_after_readdirs,
                log_level=log_level,
            )
            server._write_config(extra_config)
            server.known_hosts.write_text(
                "".join(f"{_host_pattern(address, chosen)} {keys.host_key}\n" for address in server.addresses)
            )
            try:
                server._launch(sshd, startup_timeout)
                return server
            except SshdPortInUse as exc:
                last_error = str(exc)
                if port:
                    raise
        raise SshdUnavailable(last_error)

    @property
    def host_pattern(self) -> str:
        """This server as known_hosts names it (``[127.0.0.1]:PORT``)."""
        return _host_pattern(self.host, self.port)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address it listens on (``host`` first)."""
        return (self.host, *self.also_listen)

    def url(self, path: str | Path = "/") -> str:
        return f"ssh://{self.user}@{url_host(self.host)}:{self.port}{path}"

    def _write_config(self, extra: Sequence[str]) -> None:
        (self.workdir / "home").mkdir(exist_ok=True)
        lines = [
            *(f"ListenAddress {url_host(address)}:{self.port}" for address in self.addresses),
            f"HostKey {self.keys.host_key_path}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.keys.authorized_keys}",
            # no PAM and no ownership checks: runs as any user with files in a temp dir
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "UseDNS no",
            "PrintMotd no",
            # sshd runs every command and subsystem through the user's shell, which (bash
            # started by sshd) reads ~/.bashrc: on a developer's machine that can be pyenv or
            # conda set-up, here 0.1 s of CPU per session, 4/5 of what a login cost the mock.
            # A HOME of its own with no rc files in it; the working directory stays the user's.
            f"SetEnv HOME={self.workdir / 'home'}",
            # many clients at once in benchmarks
            "MaxStartups 500:30:1000",
            "MaxSessions 100",
            self._sftp_subsystem(),
            f"LogLevel {self.log_level}",
            *extra,
        ]
        (self.workdir / "sshd_config").write_text("\n".join(lines) + "\n")

    @property
    def sftp_log_path(self) -> Path:
        return self.workdir / "sftp.log"

    def _sftp_subsystem(self) -> str:
        # sftp-server logs each file it closes with the bytes it served; sshd runs the
        # subsystem through the user's shell, so its stderr can go to a file.  internal-sftp
        # would log to syslog only.
        server = find_sftp_server()
        if self.sftp_stall_after_readdirs is not None:
            if server is None:
                raise SshdUnavailable(
                    "no sftp-server binary to put behind the stalling proxy (internal-sftp only)"
                )
            # sshd runs the subsystem with a clean environment: say where this package is
            repo = Path(__file__).resolve().parents[1]
            proxy = (
                f"PYTHONPATH={shlex.quote(str(repo))} {shlex.quote(sys.executable)} -m {__package__}.sshd stall-sftp "
                f"{self.sftp_stall_after_readdirs} {shlex.quote(str(self.sftp_stalled_marker))} "
                f"{shlex.quote(server)} -e -l INFO"
            )
            return f"Subsystem sftp {proxy} 2>>{shlex.quote(str(self.sftp_log_path))}"
        if server is None:
            return "Subsystem sftp internal-sftp"
        return f"Subsystem sftp {shlex.quote(server)} -e -l INFO 2>>{shlex.quote(str(self.sftp_log_path))}"

    @property
    def sftp_stalled_marker(self) -> Path:
        return self.workdir / "sftp.stalled"

    def sftp_stalled(self) -> bool:
        """True once the stalling proxy dropped its first request (it stopped answering)."""
        return self.sftp_stalled_marker.exists()

    def _launch(self, sshd: str, timeout: float) -> None:
        self.log_path.write_text("")
        check = subprocess.run(
            [sshd, "-t", "-f", str(self.workdir / "sshd_config")], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise SshdUnavailable(f"sshd rejected its configuration: {check.stderr.strip()}")
        self.process = subprocess.Popen(
            [sshd, "-D", "-f", str(self.workdir / "sshd_config"), "-E", str(self.log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                exited, self.process = self.process, None
                stderr = ""
                if exited.stderr:
                    with exited.stderr:
                        stderr = exited.stderr.read().decode(errors="replace")
                said = (self.log() + stderr).strip()
                # every address taken: "Bind to port ... failed", then "Cannot bind any address"
                raise (_bind_failure(said) or SshdUnavailable)(f"sshd exited at start: {said}")
            log = self.log()
            failure = _bind_failure(log)
            if failure is not None:
                # sshd carries on with the addresses it could bind: not what was asked for
                self.stop()
                raise failure(f"sshd could not listen on every address: {log.strip()}")
            if log.count("Server listening on") >= len(self.addresses):
                try:
                    with socket.create_connection((self.host, self.port), timeout=1):
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise SshdUnavailable(f"sshd did not start listening within {timeout} s: {self.log().strip()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def accepted_logins(self) -> int:
        """Successful logins so far (one per SSH connection that authenticated)."""
        return self.log().count("Accepted publickey for ")

    def sftp_reads(self) -> list[tuple[str, int]]:
        """Each file closed over SFTP, with the bytes the client read from it."""
        if find_sftp_server() is None:
            raise SshdUnavailable("no sftp-server binary: SFTP reads are not logged (internal-sftp)")
        try:
            text = self.sftp_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [(m["path"], int(m["read"])) for m in _CLOSE_RE.finditer(text)]

    def forwarded_to(self, host: str, port: int) -> int:
        """Open TCP connections from this sshd's processes to ``host:port``: the channels it
        forwards as a jump host (``direct-tcpip``), found in /proc, not in what a client says."""
        if self.process is None:
            return 0
        return sum(opened_by(pid, host, port) for pid in [self.process.pid, *_descendants(self.process.pid)])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sshd and the per-connection processes it forked (found by their parent id)."""
        _stop_servers([self], timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class SshServerGroup:
    """Any number of loopback addresses on one port, each answering SSH: one sshd per
    :data:`MAX_LISTEN_ADDRESSES` addresses (OpenSSH's limit), all with the same host key,
    the same authorized client key and one ``known_hosts`` naming every address, so that
    clients see one server.  Each sshd has its own directory (``sshd-000``, ...) for its
    config and log; :meth:`stop` stops them all."""

    workdir: Path
    addresses: tuple[str, ...]
    port: int
    keys: SshKeys = field(repr=False)
    #: known_hosts naming every address (on :attr:`port`) with the shared host key
    known_hosts: Path
    servers: list[SshServer] = field(repr=False)

    @classmethod
    def start(
        cls,
        workdir: Path | str,
        addresses: Sequence[str],
        *,
        extra_config: Sequence[str] = (),
        startup_timeout: float = 10.0,
        attempts: int = 5,
        parallel: int = 8,
    ) -> SshServerGroup:
        """Keys in ``workdir``, then the sshd (``parallel`` start at once: each start is
        mostly waiting for its log), on a port free on every address; returns once all of
        them accept connections.  Another process taking the port meanwhile: everything is
        stopped and started again on another port, ``attempts`` times in all."""
        unique = tuple(dict.fromkeys(loopback_address(address) for address in addresses))
        if not unique:
            raise ValueError("no address to listen on")
        if attempts < 1 or parallel < 1:
            raise ValueError("attempts and parallel must be at least 1")
        workdir = Path(workdir).absolute()
        keys = SshKeys.create(workdir)
        chunks = [unique[i : i + MAX_LISTEN_ADDRESSES] for i in range(0, len(unique), MAX_LISTEN_ADDRESSES)]
        last = ""
        for _ in range(attempts):
            port = _free_port(unique[0])
            if not _port_free_on(port, unique[1:]):
                last = f"port {port} is taken on one of the addresses"
                continue

            def launch(numbered: tuple[int, tuple[str, ...]], port: int = port) -> SshServer:
                number, chunk = numbered
                return SshServer.start(
                    workdir / f"sshd-{number:03d}",
                    host=chunk[0],
                    port=port,
                    also_listen=chunk[1:],
                    keys=keys,
                    extra_config=extra_config,
                    startup_timeout=startup_timeout,
                )

            started: list[SshServer] = []
            errors: list[BaseException] = []
            with ThreadPoolExecutor(
                max_workers=min(parallel, len(chunks)), thread_name_prefix="sshd-start"
            ) as pool:
                for future in [pool.submit(launch, numbered) for numbered in enumerate(chunks)]:
                    error = future.exception()
                    if error is None:
                        started.append(future.result())
                    else:
                        errors.append(error)
            if not errors:
                known_hosts = workdir / "known_hosts"
                known_hosts.write_text("".join(f"{_host_pattern(a, port)} {keys.host_key}\n" for a in unique))
                return cls(workdir, unique, port, keys, known_hosts, started)
            _stop_servers(started, 5.0)
            last = str(errors[0])
            if not all(isinstance(error, SshdPortInUse) for error in errors):
                raise errors[0]
        raise SshdUnavailable(f"no port free for {len(unique)} addresses after {attempts} attempts: {last}")

    @property
    def user(self) -> str:
        return self.keys.user

    @property
    def client_key(self) -> Path:
        """Private key that may log in to every address."""
        return self.keys.client_key

    @property
    def host_key(self) -> str:
        return self.keys.host_key

    def server_for(self, address: str) -> SshServer:
        """The sshd listening on ``address``."""
        for server in self.servers:
            if address in server.addresses:
                return server
        raise KeyError(f"no sshd of this group listens on {address}")

    def pids(self) -> list[int]:
        """The listening sshd processes (not their per-connection children)."""
        return [server.process.pid for server in self.servers if server.process is not None]

    def accepted_logins(self) -> int:
        return sum(server.accepted_logins() for server in self.servers)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every sshd of the group and the per-connection processes they forked.  Idempotent."""
        _stop_servers(self.servers, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (sshd's per-connection children), from /proc."""
    return _children_of({pid})


def _children_of(parents: set[int]) -> list[int]:
    """Processes whose parent is one of ``parents``, in one pass over /proc."""
    found = []
    wanted = {str(pid) for pid in parents}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces; split after the last ')'
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] in wanted:
            found.append(int(entry.name))
    return found


def _stop_servers(servers: Sequence[SshServer], timeout: float) -> None:
    """Stop these sshd together (one look at /proc for their per-connection children, every
    listener signalled before any is waited for), then those children."""
    processes = []
    for server in servers:
        process, server.process = server.process, None
        if process is not None:
            processes.append(process)
    if not processes:
        return
    children = _children_of({process.pid for process in processes})
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        if process.stderr:
            process.stderr.close()


def _host_pattern(address: str, port: int) -> str:
    return f"[{address}]:{port}"


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _established_to(host: str, port: int) -> set[str]:
    """Socket inodes of established IPv4 TCP connections to ``host:port`` (/proc/net/tcp)."""
    packed = socket.inet_aton(host)
    remote = f"{struct.unpack('<I', packed)[0]:08X}:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == remote and fields[3] == "01":  # 01: ESTABLISHED
            inodes.add(fields[9])
    return inodes


def opened_by(pid: int, host: str, port: int) -> int:
    """Open TCP connections process ``pid`` holds to ``host:port`` (IPv4), from /proc."""
    inodes = _established_to(host, port)
    count = 0
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            count += 1
    return count


#: SSH_FXP_READDIR (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks)
_FXP_READDIR = 12


def stall_sftp(readdirs: int, marker: Path, server: Sequence[str]) -> int:
    """Proxy stdin/stdout to the real sftp-server ``server``, forwarding the first ``readdirs``
    READDIR requests; from the next READDIR on, every request is read and dropped (``marker``
    is created then), so the SFTP session stops answering while the SSH connection and its
    keepalives go on.  Replies to requests already forwarded still flow back."""
    child = subprocess.Popen(list(server), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    to_server, from_server = child.stdin.fileno(), child.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "client")
    selector.register(from_server, selectors.EVENT_READ, "server")
    pending = b""
    forwarded = 0
    stalled = False
    client_open = True
    while True:
        for key, _ in selector.select():
            data = os.read(key.fd, 65536)
            if key.data == "server":
                if not data:
                    return child.wait()
                os.write(1, data)
                continue
            if not data:
                client_open = False
                selector.unregister(0)
                if stalled:
                    child.kill()  # it may still be waiting on a request it never got whole
                child.stdin.close()
                continue
            pending += data
            while len(pending) >= 5:
                (length,) = struct.unpack(">I", pending[:4])
                if len(pending) < 4 + length:
                    break
                packet, pending = pending[: 4 + length], pending[4 + length :]
                if not stalled and packet[4] == _FXP_READDIR:
                    stalled = forwarded >= readdirs
                    forwarded += 1
                if stalled:
                    marker.touch()
                    continue
                os.write(to_server, packet)
        if not client_open and child.poll() is not None:
            return child.returncode


def _main(argv: Sequence[str]) -> int:
    if len(argv) >= 4 and argv[0] == "stall-sftp":
        return stall_sftp(int(argv[1]), Path(argv[2]), argv[3:])
    sys.stderr.write("usage: python -m mocks.sshd stall-sftp READDIRS MARKER SFTP-SERVER [ARGS...]\n")
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
