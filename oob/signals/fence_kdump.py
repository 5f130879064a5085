"""fence_kdump's "kdump has started" message: the earliest proof that an NMI took effect.

RHEL's kdump (``fence_kdump_nodes`` in ``/etc/kdump.conf``) runs ``fence_kdump_send`` from
the crash kernel's initramfs, before the dump is saved, so that a cluster does not power-fence
a node while it dumps.  Any machine named there gets those UDP messages; oob listens during
the watch and says ``kdump_started`` for a host the moment its first message arrives — the
crash kernel booted and has its network — long before the first byte of the dump.

The wire format, from ClusterLabs/fence-agents ``agents/kdump/`` (Debian's ``fence-agents``
4.12.1 ships the same ``fence_kdump_send``, version "0.1"):

- ``message.h``: ``struct fence_kdump_msg { uint32_t magic; uint32_t version; }``, packed:
  **8 bytes**; ``FENCE_KDUMP_MAGIC 0x1B302A40``, ``FENCE_KDUMP_MSGV1 0x1``.  The fields are
  written as they sit in memory (no ``htonl``): little-endian from an x86/arm64 crash kernel,
  big-endian from s390x or ppc64 (BE).  ``fence_kdump.c`` compares them natively, so a
  cluster of one endianness only; oob reads both orders and says which.
- ``fence_kdump_send.c``: one ``sendto`` of that struct per node per round from an unbound
  UDP socket (the source is the crash kernel's own address); rounds every ``-i INTERVAL``
  seconds (default 10), ``-c COUNT`` rounds (default 0: forever, until the dump ends and the
  machine reboots); ``-p PORT`` (default 7410); ``-f auto|ipv4|ipv6``.  RHEL's kdump passes
  ``fence_kdump_args`` (e.g. ``-p 7410 -f auto -c 0 -i 10``) and the ``fence_kdump_nodes``.
- ``fence_kdump.c`` (the cluster's agent) matches the datagram's source address to the node
  it fences, checks magic then version, and ignores anything else: so does oob.

What oob does with them (:class:`FenceKdumpListener`):

- one UDP socket on ``[ADDR:]PORT`` (default: every address, IPv6 and IPv4 on one dual-stack
  socket, port 7410); IPv4-mapped sources (``::ffff:192.0.2.7``) read as IPv4;
- the sender is matched to a watched host by address: the host's ``address`` and ``aliases``,
  names among them resolved once when the listener starts (never per packet);  an address
  two hosts claim belongs to neither (said once);
- the first valid message of a host emits ``kdump_started``; later ones are only counted;
- a datagram of the wrong size, magic or version, or from an address no watched host has,
  is ignored and counted; the first of each kind from each sender is reported as a
  ``fence_kdump_ignored`` event, at most :data:`REPORTS_PER_WINDOW` such events per
  :data:`REPORT_WINDOW` seconds (then only counted), never one line per packet;
- memory is bounded whatever arrives: at most :data:`MAX_TRACKED_SENDERS` unknown senders
  are remembered (the rest only counted), per-host state exists only for watched hosts.

Usable as ``async with FenceKdumpListener(hosts, ...)`` on a loop, and from a runbook thread
as ``with listener:`` (it runs on :mod:`oob.asyncbridge`'s loop, as the dump watcher does;
``emit`` is then called on that loop's thread).  :meth:`FenceKdumpListener.report` is a
:class:`FenceKdumpReport` at any time, from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

from oob.dump.matching import normalize
from oob.errors import UsageError
from oob.events import Emit, Event, EventKind, Level, discard
from oob.model import Host

#: fence-agents' message.h
MAGIC = 0x1B302A40
VERSION_1 = 0x1
MESSAGE_SIZE = 8
#: fence_kdump_send's and fence_kdump's default port (``-p``)
DEFAULT_PORT = 7410
#: fence_kdump_send's default interval between rounds (``-i``), seconds
DEFAULT_INTERVAL = 10

#: unknown senders remembered by address (the rest are only counted)
MAX_TRACKED_SENDERS = 256
#: ``fence_kdump_ignored`` events per window, at most; the rest are only counted
REPORTS_PER_WINDOW = 5
REPORT_WINDOW = 60.0
#: the socket's receive buffer asked for, bytes
RECEIVE_BUFFER = 1024 * 1024
#: seconds for resolving every host name when the listener starts
RESOLVE_TIMEOUT = 5.0
#: names resolved, at most (a name costs a DNS query; addresses cost nothing)
MAX_NAMES_RESOLVED = 1024

ByteOrder = Literal["little", "big"]
Problem = Literal["size", "magic", "version", "unknown_sender", "ambiguous_sender"]
_FORMATS: dict[ByteOrder, str] = {"little": "<II", "big": ">II"}


def encode_message(byteorder: ByteOrder = "little", *, version: int = VERSION_1) -> bytes:
    """The 8 bytes a crash kernel of that byte order sends (``fence_kdump_send``'s message)."""
    return struct.pack(_FORMATS[byteorder], MAGIC, version)


@dataclass(frozen=True)
class Decoded:
    """What one datagram is: valid (``problem`` None, with its byte order) or why not."""

    problem: Problem | None
    byteorder: ByteOrder | None = None
    detail: str = ""


def decode_message(data: bytes) -> Decoded:
    """Check one datagram: exactly 8 bytes, the magic in either byte order, version 1."""
    if len(data) != MESSAGE_SIZE:
        return Decoded("size", detail=f"{len(data)} bytes, not {MESSAGE_SIZE}")
    for order, fmt in _FORMATS.items():
        magic, version = struct.unpack(fmt, data)
        if magic == MAGIC:
            if version != VERSION_1:
                return Decoded("version", order, f"version {version:#x}, not {VERSION_1:#x}")
            return Decoded(None, order)
    return Decoded("magic", detail=f"magic {data[:4].hex()}, not {MAGIC:#010x}")


@dataclass(frozen=True)
class ListenAddress:
    """Where to listen: ``host`` None means every address (dual-stack)."""

    host: str | None = None
    port: int = DEFAULT_PORT

    def describe(self) -> str:
        host = self.host if self.host is not None else "*"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def parse_listen(text: str, *, label: str = "--fence-kdump") -> ListenAddress:
    """``PORT``, ``ADDR:PORT`` or ``[IPV6]:PORT`` (ADDR an IP address: no name lookups);
    :class:`~oob.errors.UsageError` naming ``label`` otherwise.  Port 0 takes any free port."""
    what = f"{label}: expected [ADDR:]PORT (an IP address and a port from 1 to 65535)"
    text = text.strip()
    host: str | None = None
    port_text = text
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(f"{what}, not {text!r}")
        host, port_text = inner, rest[1:]
    elif ":" in text:
        if text.count(":") > 1:
            raise UsageError(f"{what} (IPv6 in brackets: [::1]:7410), not {text!r}")
        host, _, port_text = text.partition(":")
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        raise UsageError(f"{what}, not {text!r}")
    if host is not None:
        try:
            host = ipaddress.ip_address(host).compressed
        except ValueError:
            raise UsageError(f"{what}; {host!r} is not an IP address") from None
    return ListenAddress(host, int(port_text))


@dataclass(frozen=True)
class HostSignal:
    """What one watched host's crash kernel said."""

    host: str
    #: when its first valid message arrived (this machine's clock, UTC)
    first: datetime
    #: when its latest one arrived
    last: datetime
    #: valid messages received
    count: int
    #: the address it came from, as compared
    sender: str
    byteorder: ByteOrder

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "count": self.count,
            "sender": self.sender,
            "byteorder": self.byteorder,
        }


@dataclass(frozen=True)
class FenceKdumpReport:
    """Everything the listener heard, for the report and ``--json``."""

    #: where it listened (``*:7410``, ``127.0.0.1:40123``)
    listen: str
    #: the watched hosts it heard from, in the order their first message came
    heard: tuple[HostSignal, ...]
    #: the watched hosts it did not hear from
    silent: tuple[str, ...]
    #: datagrams of the wrong size, magic or version, from anyone
    malformed: int
    #: valid messages from an address no watched host has (or two claim)
    unknown: int
    #: those senders with their counts, most first (at most :data:`MAX_TRACKED_SENDERS`)
    unknown_senders: tuple[tuple[str, int], ...] = ()
    #: unknown datagrams from senders past that bound (counted, not remembered)
    untracked: int = 0
    #: host identities that did not resolve to an address when the listener started
    unresolved: tuple[str, ...] = ()

    def signal(self, host: str) -> HostSignal | None:
        return next((s for s in self.heard if s.host == host), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "listen": self.listen,
            "heard": [s.to_dict() for s in self.heard],
            "silent": list(self.silent),
            "malformed": self.malformed,
            "unknown": self.unknown,
            "unknown_senders": [{"sender": s, "count": n} for s, n in self.unknown_senders],
            "untracked": self.untracked,
            "unresolved": list(self.unresolved),
        }


@dataclass
class _Heard:
    first: datetime
    last: datetime
    count: int
    sender: str
    byteorder: ByteOrder


@dataclass
class _Limiter:
    """At most ``budget`` reports per ``window`` seconds (a fixed window: simple and bounded)."""

    budget: int
    window: float
    clock: Callable[[], float]
    _start: float = field(default=float("-inf"))
    _used: int = 0
    suppressed: int = 0

    def allow(self) -> bool:
        now = self.clock()
        if now - self._start >= self.window:
            self._start, self._used = now, 0
        if self._used < self.budget:
            self._used += 1
            return True
        self.suppressed += 1
        return False


def sender_address(peer: object) -> str:
    """The comparable form of a datagram's source (``::ffff:10.0.0.1`` is ``10.0.0.1``)."""
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    return normalize(str(host))


class FenceKdumpListener:
    """Listens for fence_kdump messages from the crash kernels of ``hosts`` (see the module)."""

    def __init__(
        self,
        hosts: Sequence[Host],
        listen: ListenAddress | str = ListenAddress(),
        *,
        emit: Emit = discard,
        resolve_timeout: float = RESOLVE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = tuple(hosts)
        self.listen = parse_listen(listen) if isinstance(listen, str) else listen
        self.emit = emit
        self.resolve_timeout = resolve_timeout
        self._lock = threading.Lock()
        self._limiter = _Limiter(REPORTS_PER_WINDOW, REPORT_WINDOW, clock)
        #: normalised address -> host names claiming it
        self._owners: dict[str, set[str]] = {}
        self._unresolved: list[str] = []
        self._heard: dict[str, _Heard] = {}
        self._malformed = 0
        self._unknown: dict[str, int] = {}
        self._untracked = 0
        #: (sender, problem) pairs already reported, bounded like the senders
        self._reported: set[tuple[str, str]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._bound: tuple[str, int] | None = None
        self._waiters: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resolved = False

    # -- life cycle

    async def start(self) -> Self:
        """Resolve the hosts' identities, then bind (UsageError when the port cannot be had)."""
        if self._transport is not None:
            return self
        self._loop = asyncio.get_running_loop()
        if not self._resolved:  # once: a restarted listener keeps what it learnt
            await self._resolve()
            self._resolved = True
        sock = _bind(self.listen)
        try:
            transport, _ = await self._loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._transport = transport
        name = transport.get_extra_info("sockname")
        self._bound = (str(name[0]), int(name[1]))
        return self

    async def stop(self) -> FenceKdumpReport:
        """Close the socket (idempotent) and return what was heard."""
        transport, self._transport = self._transport, None
        if transport is not None:
            protocol = transport.get_protocol()
            transport.close()
            if isinstance(protocol, _Protocol):
                # the socket is closed a loop turn later: wait for it, so the port is free on return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(protocol.closed), 1.0)
        return self.report()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # from a thread (the runbooks): the same on asyncbridge's loop
    def open(self, *, timeout: float | None = None) -> Self:
        """Start on :mod:`oob.asyncbridge`'s loop; for runbook threads."""
        from oob import asyncbridge

        asyncbridge.run(self.start(), timeout=timeout or self.resolve_timeout + 5.0)
        return self

    def close(self) -> FenceKdumpReport:
        from oob import asyncbridge

        if self._loop is not None and self._transport is not None:
            asyncbridge.run(self.stop(), timeout=5.0)
        return self.report()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        """The address and port really bound (port 0 asked for: the one given)."""
        if self._bound is None:
            raise RuntimeError("the fence_kdump listener is not started")
        return self._bound

    @property
    def port(self) -> int:
        return self.address[1]

    # -- what was heard

    def started(self, host: str) -> datetime | None:
        """When ``host``'s first fence_kdump message arrived; None before (any thread)."""
        with self._lock:
            heard = self._heard.get(host)
            return heard.first if heard else None

    async def wait_started(self, host: str, timeout: float) -> HostSignal | None:
        """Wait (on the listener's loop) for ``host``'s first message, at most ``timeout`` s."""
        if self.started(host) is None:
            event = self._waiters.setdefault(host, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        return self.report().signal(host)

    def report(self) -> FenceKdumpReport:
        with self._lock:
            heard = sorted(self._heard.items(), key=lambda item: item[1].first)
            return FenceKdumpReport(
                listen=self._describe_bound(),
                heard=tuple(
                    HostSignal(name, h.first, h.last, h.count, h.sender, h.byteorder) for name, h in heard
                ),
                silent=tuple(h.name for h in self.hosts if h.name not in self._heard),
                malformed=self._malformed,
                unknown=sum(self._unknown.values()) + self._untracked,
                unknown_senders=tuple(sorted(self._unknown.items(), key=lambda item: (-item[1], item[0]))),
                untracked=self._untracked,
                unresolved=tuple(self._unresolved),
            )

    def _describe_bound(self) -> str:
        if self._bound is None:
            return self.listen.describe()
        host, port = self._bound
        if self.listen.host is None:
            host = "*"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- matching senders to hosts

    async def _resolve(self) -> None:
        """Map every address a watched host may send from to it, names resolved once here."""
        assert self._loop is not None
        names: list[tuple[str, str]] = []
        for host in self.hosts:
            for identity in (*([host.address] if host.address else []), *host.aliases):
                key = normalize(identity)
                if _is_ip(key):
                    self._owners.setdefault(key, set()).add(host.name)
                elif len(names) < MAX_NAMES_RESOLVED:
                    names.append((host.name, key))
        if not names:
            return
        loop = self._loop

        async def lookup(name: str) -> set[str]:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_DGRAM)
            return {normalize(str(info[4][0])) for info in infos}

        tasks = [asyncio.ensure_future(lookup(name)) for _, name in names]
        done, pending = await asyncio.wait(tasks, timeout=self.resolve_timeout)
        for task in pending:
            task.cancel()
        for (owner, name), task in zip(names, tasks, strict=True):
            if task in done and task.exception() is None:
                for address in task.result():
                    self._owners.setdefault(address, set()).add(owner)
            else:
                self._unresolved.append(f"{owner}: {name}")

    def _datagram(self, data: bytes, peer: object) -> None:
        sender = sender_address(peer)
        decoded = decode_message(data)
        now = datetime.now(UTC)
        event: Event | None = None
        woken: str | None = None
        with self._lock:
            if decoded.problem is not None:
                self._malformed += 1
                event = self._ignored(sender, decoded.problem, decoded.detail)
            else:
                owners = self._owners.get(sender, set())
                if len(owners) != 1:
                    self._count_unknown(sender)
                    problem: Problem = "ambiguous_sender" if owners else "unknown_sender"
                    detail = f"claimed by {', '.join(sorted(owners))}" if owners else "no watched host has it"
                    event = self._ignored(sender, problem, detail)
                else:
                    (name,) = owners
                    heard = self._heard.get(name)
                    assert decoded.byteorder is not None
                    if heard is None:
                        self._heard[name] = _Heard(now, now, 1, sender, decoded.byteorder)
                        woken = name
                        event = Event(
                            Level.INFO,
                            f"kdump started: {name}'s crash kernel sent fence_kdump from {sender}",
                            host=name,
                            kind=EventKind.KDUMP_STARTED,
                            data={"at": now.isoformat(), "sender": sender, "signal": "fence_kdump"},
                        )
                    else:
                        heard.last = now
                        heard.count += 1
        if woken is not None and woken in self._waiters:
            self._waiters[woken].set()
        if event is not None:
            self.emit(event)

    def _count_unknown(self, sender: str) -> None:
        if sender in self._unknown:
            self._unknown[sender] += 1
        elif len(self._unknown) < MAX_TRACKED_SENDERS:
            self._unknown[sender] = 1
        else:
            self._untracked += 1

    def _ignored(self, sender: str, problem: Problem, detail: str) -> Event | None:
        """The event for the first datagram of this kind from this sender, if the budget allows."""
        key = (sender, "malformed" if problem in ("size", "magic", "version") else problem)
        if key in self._reported or len(self._reported) >= 2 * MAX_TRACKED_SENDERS:
            return None
        self._reported.add(key)
        if not self._limiter.allow():
            return None
        what = {
            "size": "a malformed datagram",
            "magic": "a datagram that is not fence_kdump's",
            "version": "a fence_kdump message of an unknown version",
            "unknown_sender": "a fence_kdump message from an address no watched host has",
            "ambiguous_sender": "a fence_kdump message from an address several hosts have",
        }[problem]
        return Event(
            Level.WARNING,
            f"fence_kdump: ignored {what} from {sender} ({detail}); more are only counted",
            kind=EventKind.FENCE_KDUMP_IGNORED,
            data={"sender": sender, "reason": problem, "signal": "fence_kdump"},
        )


def listener_for(
    hosts: Sequence[Host], option: str | None = None, *, emit: Emit = discard
) -> FenceKdumpListener | None:
    """The listener a watch needs, or None: ``--fence-kdump [ADDR:]PORT`` (``option``) listens
    there for every host; else the hosts whose inventory says ``dump.fence_kdump = true`` are
    listened for on every address, port 7410; else nobody asked.  Not started yet."""
    if option is not None:
        return FenceKdumpListener(hosts, parse_listen(option), emit=emit)
    wanted = [host for host in hosts if host.dump.fence_kdump]
    return FenceKdumpListener(wanted, ListenAddress(), emit=emit) if wanted else None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, listener: FenceKdumpListener) -> None:
        self.listener = listener
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.listener._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on a socket that only receives: nothing to do, nothing to say
        pass


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _bind(listen: ListenAddress) -> socket.socket:
    """A UDP socket on ``listen``: every address means IPv6 and IPv4 on one socket when the
    machine has IPv6, else IPv4's every address."""
    candidates: list[tuple[socket.AddressFamily, str]]
    if listen.host is None:
        candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")] if socket.has_ipv6 else []
        candidates = candidates or [(socket.AF_INET, "0.0.0.0")]
    else:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        candidates = [(family, listen.host)]
    problem: OSError | None = None
    for family, host in candidates:
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:  # no IPv6 in this kernel
            problem = exc
            continue
        try:
            if family == socket.AF_INET6 and listen.host is None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setblocking(False)
            # room for a burst (many hosts crashing at once, or junk): the kernel caps it at rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((host, listen.port))
            return sock
        except OSError as exc:
            sock.close()
            problem = exc
            if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):  # try the next family
                break
    why = problem.strerror if problem is not None and problem.strerror else str(problem)
    hint = (
        " (another fence_kdump listener there?)"
        if problem is not None and problem.errno == errno.EADDRINUSE
        else ""
    )
    raise UsageError(f"cannot listen for fence_kdump on {listen.describe()}: {why}{hint}")
