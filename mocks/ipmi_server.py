"""Mock IPMI 2.0 BMCs (RMCP+, "lanplus") on UDP, built on pyghmi's own server classes.

::

    from .host import SimulatedHost
    from .ipmi_server import IpmiMockServer

    with IpmiMockServer() as server:            # one thread serves every BMC below
        bmc = server.add_bmc(SimulatedHost("node1"), username="admin", password="secret")
        # ipmitool -I lanplus -H 127.0.0.1 -p {bmc.port} -U admin -E chassis power diag
        assert bmc.nmi_count == 1

One :class:`IpmiMockServer` owns many :class:`IpmiBmc`, each bound to its own loopback
address and UDP port, and services all their sockets from a single selector (epoll) loop
in one thread (or in the caller's thread with :meth:`IpmiMockServer.serve_forever`).

Why not pyghmi's ``Bmc.listen()``: pyghmi's server constructor hands its socket to
pyghmi's *process-global* I/O thread, the same thread that carries pyghmi *client*
sessions.  The fleet embeds this server in a process that may also run oob's own IPMI
driver (``oob demo``, the tests), where that thread would read the server's packets and
the client's alike.  So the mock binds its own sockets, keeps its sessions in its own
table and runs its own loop, and reuses pyghmi for what it is good at: RMCP+ framing,
RAKP, integrity and AES, and the command handlers of ``pyghmi.ipmi.bmc.Bmc``.

What the mock changes in pyghmi's server behaviour, and why:

* ``cipher_mode="strict"`` (default): only cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96,
  AES-CBC-128) is implemented, so an Open Session Request proposing anything else gets
  RMCP+ status 0x11 (no matching cipher suite) and a well-behaved client falls back.
  ``"always3"`` answers suite 3 whatever was proposed, as stock pyghmi and VirtualBMC do
  (the behaviour that crashes pyghmi 1.6.19's client, which oob's driver must survive).
* A user name the BMC does not know gets RAKP message 2 with status 0x0D (unauthorized
  name) at once; stock pyghmi stays silent and the client waits for a timeout.
* Get Device ID answers the 15 bytes of the specification (pyghmi packs the manufacturer
  ID into 4 bytes and the product ID into 4, shifting every field after it).
* Chassis Control applies to the simulated host; power cycle of a host that is off
  answers 0xD5 (not in present state), as the IPMI specification recommends.
* Serial-over-LAN (Activate/Deactivate Payload and the SOL packets) streams the host's
  console: :mod:`mocks.ipmi_sol`, not pyghmi's ``ServerConsole`` (which runs pyghmi's loop).

Faults (:data:`FAULTS`), per BMC, through :meth:`IpmiBmc.set_fault`:

``down``               no answer to anything (every datagram is dropped and counted)
``drop_after_apply``   the next NMI is applied, then its response is never sent (consumed)
``nmi_unsupported``    NMI answered with 0xCC (invalid data field: option not supported)
``nmi_refused``        NMI answered with 0xD5 (not supported in present state)

Every server socket binds to 127.0.0.0/8 or ::1 only.  Standalone::

    IPMI_PASSWORD=secret python -m mocks.ipmi_server --count 50 --base-port 16230
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import ipaddress
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.constants as ipmi_constants
from pyghmi.ipmi.private import serversession

from .bmc_logs import event_log_for
from .ipmi_sel import SelResponder
from .ipmi_sol import SOL_COMMANDS, SolService

log = logging.getLogger(__name__)

CipherMode = Literal["strict", "always3"]
CIPHER_MODES: tuple[str, ...] = ("strict", "always3")
FAULTS: tuple[str, ...] = ("down", "drop_after_apply", "nmi_unsupported", "nmi_refused")

#: RMCP+ status codes (IPMI 2.0 table 13-15)
RMCP_UNAUTHORIZED_NAME = 0x0D
RMCP_NO_CIPHER_MATCH = 0x11
#: IPMI completion codes (IPMI 2.0 table 5-2)
CC_OK = 0x00
CC_INVALID_DATA_FIELD = 0xCC
CC_NOT_IN_PRESENT_STATE = 0xD5
CC_PRIVILEGE_NOT_AVAILABLE = 0x81  # Set Session Privilege Level: level not available to this user

#: Chassis Control (NetFn 0x00, Cmd 0x02) data byte -> the ResetType the simulated host applies
CHASSIS_CONTROL: dict[int, str] = {
    0x00: "ForceOff",  # power down
    0x01: "On",  # power up
    0x02: "PowerCycle",  # power cycle
    0x03: "ForceRestart",  # hard reset
    0x04: "Nmi",  # pulse diagnostic interrupt
    0x05: "GracefulShutdown",  # soft shutdown via ACPI
}
DIAG_INTERRUPT = 0x04
POWER_CYCLE = 0x02

#: datagrams one BMC's socket is read for in one turn of the loop
_SERVICE_BATCH = 16

#: how many RMCP+ sessions one BMC keeps (least recently opened ones are forgotten)
MAX_SESSIONS = 64


class PoweredHost(Protocol):
    """What a mock BMC needs from the host behind it (``mocks.host.SimulatedHost`` fits)."""

    @property
    def power(self) -> str:
        """``"On"`` or ``"Off"``."""
        ...

    def apply_reset(self, reset_type: str) -> object:
        """Apply a Redfish ResetType: On, ForceOff, GracefulShutdown, ForceRestart, PowerCycle, Nmi."""
        ...


def loopback_only(address: str) -> str:
    """``address`` if it is on 127.0.0.0/8 or ::1; ValueError otherwise."""
    text = "127.0.0.1" if address == "localhost" else address.strip().strip("[]")
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{address!r} is not an IP address; the IPMI mock binds to loopback only") from None
    if not parsed.is_loopback:
        raise ValueError(f"{address} is not a loopback address; the IPMI mock binds to loopback only")
    return str(parsed)


def _proposal_is_suite3(request: bytes | bytearray) -> bool:
    """Does an Open Session Request accept cipher suite 3?

    The request carries three 8-byte algorithm payloads at offsets 8, 16 and 24: type,
    two reserved bytes, length, algorithm.  Length 0 means "any"; otherwise the
    algorithm must be 1 for each (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128).
    """
    if len(request) < 32:
        return False
    for offset in (8, 16, 24):
        length, algorithm = request[offset + 3], request[offset + 4] & 0x3F
        if length != 0 and algorithm != 1:
            return False
    return True


class _ServerSession(serversession.ServerSession):  # type: ignore[misc]
    """One client's RMCP+ session with one mock BMC."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        return object.__new__(cls)

    def __init__(self, bmc: IpmiBmc, sockaddr: Any, request: bytearray) -> None:
        # The attributes ServerSession.__init__ sets, minus its registration in pyghmi's
        # process-global handler table (routing is IpmiBmc.handle_datagram's job here).
        self.uuid = bmc.uuid
        self.currhashlib = hashlib.sha1
        self.currhashlen = 12
        self.rqaddr = ipmi_constants.IPMI_BMC_ADDRESS
        self.authdata = bmc.authdata
        self.servermode = True
        self.ipmiversion = 2.0
        self.sequencenumber = 0
        self.sessionid = 0
        self.bmc = bmc
        self.lastpayload = None
        self.rqlun = None
        self.broken = False
        self.authtype = 6
        self.integrityalgo = 0
        self.confalgo = 0
        self.kg = bmc.kg
        self.socket = bmc.serversocket
        self.sockaddr = sockaddr
        self.pendingpayloads: collections.deque[Any] = collections.deque()
        self.pktqueue: collections.deque[Any] = collections.deque()
        #: the session privilege level: User until the client asks for more
        self.clientpriv = 2
        self.maxpriv = 4
        self.sol_handler = None  # SOL packets go here once the payload is active (mocks.ipmi_sol)
        self.last_payload_type = None
        response = self.create_open_session_response(request)
        self.send_payload(response, ipmi_constants.payload_types["rmcpplusopenresponse"], retry=False)

    def create_open_session_response(self, request: bytearray) -> bytearray:
        if self.bmc.cipher_mode == "strict" and not _proposal_is_suite3(request):
            self.bmc.cipher_refusals += 1
            self.clientsessionid = request[4:8]
            # tag, status, reserved, remote console session id: the short error form
            return bytearray([request[0], RMCP_NO_CIPHER_MATCH, 0, 0]) + request[4:8]
        response: bytearray = super().create_open_session_response(request)
        return response

    def _got_rakp1(self, data: bytearray) -> None:
        name_length = data[27] if len(data) > 27 else 0
        name = bytes(data[28 : 28 + name_length]).decode("utf-8", "replace")
        if not name_length or self.authdata.get(name) is None:
            # answer at once: a client must not wait for a timeout to learn its user is unknown
            self.bmc.auth_failures += 1
            reply = bytearray([data[0], RMCP_UNAUTHORIZED_NAME, 0, 0]) + self.clientsessionid
            self.send_payload(reply, ipmi_constants.payload_types["rakp2"], retry=False)
            return
        super()._got_rakp1(data)
        # role 0 in RAKP1 means "the highest level the user has": all mock users are admins
        self.maxpriv = (self.rolem & 0x0F) or 4

    def handle_client_request(self, request: dict[str, Any]) -> None:
        netfn, command, data = request["netfn"], request["command"], bytes(request["data"])
        self.bmc.count_request(netfn, command, data)
        if netfn == 6 and command == 0x3B:  # Set Session Privilege Level
            wanted = data[0] & 0x0F if data else 0
            if wanted > self.maxpriv:
                self._send_ipmi_net_payload(code=CC_PRIVILEGE_NOT_AVAILABLE)
                return
            if wanted:  # 0 asks for the present level
                self.clientpriv = wanted
            self._send_ipmi_net_payload(data=[self.clientpriv])
        elif netfn == 6 and command == 0x3C:  # Close Session
            self.send_ipmi_response()
            self.bmc.forget_session(self.sockaddr)
        elif self.bmc.sel.handles(netfn, command):  # the SEL (mocks.ipmi_sel)
            self.bmc.sel.respond(command, data, self)
        else:
            self.bmc.handle_raw_request(request, self)


@dataclass(frozen=True)
class DeviceIdentity:
    """What Get Device ID says about the BMC."""

    #: IANA enterprise number of the manufacturer (0 = unspecified)
    manufacturer_id: int = 0
    product_id: int = 0
    device_id: int = 0x20
    #: firmware revision major, minor (minor is sent as BCD, 0-99)
    firmware: tuple[int, int] = (1, 0)


class IpmiBmc(pyghmi_bmc.Bmc):  # type: ignore[misc]
    """One mock IPMI BMC on its own loopback address and UDP port, tied to one host."""

    def __init__(
        self,
        name: str,
        host: PoweredHost,
        *,
        users: Mapping[str, str],
        address: str = "127.0.0.1",
        port: int = 0,
        cipher_mode: CipherMode = "strict",
        identity: DeviceIdentity = DeviceIdentity(),
    ) -> None:
        # pyghmi's IpmiServer.__init__ is deliberately not called: it binds through
        # pyghmi's global I/O thread (see the module docstring).  These are the attributes
        # the inherited handlers read.
        if cipher_mode not in CIPHER_MODES:
            raise ValueError(f"cipher_mode must be one of {', '.join(CIPHER_MODES)}, not {cipher_mode!r}")
        if not users:
            raise ValueError("a mock BMC needs at least one user")
        self.name = name
        self.host = host
        self.cipher_mode: CipherMode = cipher_mode
        self.identity = identity
        self.authdata = dict(users)
        self.kg = None
        self.uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"oob-mock-ipmi:{name}")
        self.revision = 0
        self.deviceid = identity.device_id
        self.firmwaremajor, self.firmwareminor = identity.firmware
        self.ipmiversion = 0x02
        self.additionaldevices = 0
        self.mfgid = identity.manufacturer_id
        self.prodid = identity.product_id
        self.pktqueue: collections.deque[Any] = collections.deque()
        self.timeout = 60
        # Get Channel Authentication Capabilities: channel 1, IPMI 2.0 only, per-message auth
        self.authcap = struct.pack("BBBBBBBBB", 0, 1, 0b10000000, 0b00000100, 0b00000010, 0, 0, 0, 0)
        bind = loopback_only(address)
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.serversocket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.serversocket.bind((bind, port))
        except OSError:
            self.serversocket.close()
            raise
        self.address = bind
        self.port: int = self.serversocket.getsockname()[1]
        self.sessions: dict[Any, _ServerSession] = {}
        #: held while a datagram is handled and while the SOL sender sends (sequence numbers)
        self.wire_lock = threading.RLock()
        self.sol = SolService(self, getattr(host, "console", None))
        self._faults: set[str] = set()
        self._lock = threading.Lock()
        # -- what tests look at
        #: NMIs this BMC applied to its host (chassis control 0x04 that got through)
        self.nmi_count = 0
        #: requests inside established sessions, by (netfn, command)
        self.requests: collections.Counter[tuple[int, int]] = collections.Counter()
        #: chassis control requests received, by data byte (0x04 = NMI), answered or not
        self.chassis_controls: collections.Counter[int] = collections.Counter()
        self.cipher_refusals = 0
        self.auth_failures = 0
        self.dropped = 0
        #: the System Event Log, from the host's event log (shared with Redfish)
        self.sel = SelResponder(event_log_for(host))

    def __repr__(self) -> str:
        return f"IpmiBmc({self.name!r}, {self.address}:{self.port}, {self.cipher_mode})"

    # -- faults -----------------------------------------------------------------------------

    def set_fault(self, fault: str, enabled: bool = True) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown IPMI fault {fault!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            if enabled:
                self._faults.add(fault)
            else:
                self._faults.discard(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._faults)

    def _consume(self, fault: str) -> bool:
        with self._lock:
            if fault in self._faults:
                if fault == "drop_after_apply":
                    self._faults.discard(fault)
                return True
            return False

    # -- the wire ---------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    def count_request(self, netfn: int, command: int, data: bytes) -> None:
        self.requests[(netfn, command)] += 1
        if netfn == 0 and command == 0x02 and data:
            self.chassis_controls[data[0]] += 1

    def forget_session(self, sockaddr: Any) -> None:
        self.sol.session_gone(self.sessions.pop(sockaddr, None))

    def handle_datagram(self, data: bytes, sockaddr: Any) -> None:
        """Route one datagram: session-less messages, a new session, or an existing one."""
        with self.wire_lock:
            self._route(data, sockaddr)

    def _route(self, data: bytes, sockaddr: Any) -> None:
        if "down" in self.faults:
            self.dropped += 1
            return
        packet = bytearray(data)
        if len(packet) < 14 or packet[0] != 6 or packet[2:4] != b"\xff\x07":
            return  # not IPMI over RMCP (e.g. an ASF presence ping): a BMC may ignore it
        if packet[4] == 6:  # IPMI 2.0 / RMCP+ framing
            payload_type = packet[5] & 0x3F
            session_id = struct.unpack("<I", bytes(packet[6:10]))[0]
            if payload_type == 0x10:  # Open Session Request: always a fresh session
                self._open_session(packet, sockaddr)
                return
            if payload_type == 0 and session_id == 0:
                self.sessionless_data(bytes(packet), sockaddr)
                return
        else:  # IPMI 1.5 framing is only used outside sessions here (auth capabilities)
            self.sessionless_data(bytes(packet), sockaddr)
            return
        session = self.sessions.get(sockaddr)
        if session is not None:
            session._handle_ipmi_packet(packet, sockaddr=sockaddr, qent=(packet, sockaddr, self.serversocket))

    def _open_session(self, packet: bytearray, sockaddr: Any) -> None:
        self.sol.session_gone(self.sessions.pop(sockaddr, None))
        while len(self.sessions) >= MAX_SESSIONS:
            self.sol.session_gone(self.sessions.pop(next(iter(self.sessions))))
        self.sessions[sockaddr] = _ServerSession(self, sockaddr, packet[16:])

    # -- command handlers (the inherited dispatcher calls these) ----------------------------

    def handle_raw_request(self, request: dict[str, Any], session: Any) -> None:
        if request["netfn"] == 6 and request["command"] in SOL_COMMANDS:
            self.sol.handle(request, session)
        else:
            super().handle_raw_request(request, session)

    def get_power_state(self) -> str:
        return "on" if self.host.power == "On" else "off"

    def get_system_guid(self) -> uuid.UUID:
        return self.uuid

    def send_device_id(self, session: Any) -> None:
        major, minor = self.identity.firmware
        data = [
            self.identity.device_id,
            self.revision & 0x0F,  # bit 7 clear: the mock provides no device SDRs
            major & 0x7F,
            int(str(minor % 100), 16),  # BCD
            0x02,  # IPMI version 2.0 (BCD, minor in the high nibble)
            0x04,  # additional device support: SEL device only (no sensors, SDR or FRU)
            *struct.pack("<I", self.identity.manufacturer_id)[:3],
            *struct.pack("<H", self.identity.product_id),
            0,
            0,
            0,
            0,
        ]
        session.send_ipmi_response(data=data)

    def control_chassis(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        directive = data[0] & 0x0F if data else None
        if directive not in CHASSIS_CONTROL:
            session.send_ipmi_response(code=CC_INVALID_DATA_FIELD)
            return
        if directive == DIAG_INTERRUPT:
            if "nmi_unsupported" in self.faults:
                session.send_ipmi_response(code=CC_INVALID_DATA_FIELD)
                return
            if "nmi_refused" in self.faults:
                session.send_ipmi_response(code=CC_NOT_IN_PRESENT_STATE)
                return
        if directive == POWER_CYCLE and self.host.power != "On":
            session.send_ipmi_response(code=CC_NOT_IN_PRESENT_STATE)
            return
        self.host.apply_reset(CHASSIS_CONTROL[directive])
        if directive == DIAG_INTERRUPT:
            self.nmi_count += 1
            if self._consume("drop_after_apply"):
                log.info("%s: NMI applied, response dropped (fault drop_after_apply)", self.name)
                return
        session.send_ipmi_response()


class IpmiMockServer:
    """Many :class:`IpmiBmc` served by one selector loop; start/stop in a thread."""

    def __init__(self) -> None:
        self._bmcs: dict[int, IpmiBmc] = {}
        self._lock = threading.Lock()
        # writing a byte here wakes the loop (a BMC added or the server stopping)
        self._wake_r, self._wake_w = socket.socketpair()
        # non-blocking both ends: BMCs added before start() would otherwise fill the pair's
        # buffer and block add_bmc forever (a few hundred wakes nobody reads yet)
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: a BMC was added or removed since the loop last looked (see _watch)
        self._changed = True

    @property
    def bmcs(self) -> list[IpmiBmc]:
        with self._lock:
            return list(self._bmcs.values())

    def add_bmc(
        self,
        host: PoweredHost,
        *,
        username: str = "admin",
        password: str,
        name: str | None = None,
        address: str = "127.0.0.1",
        port: int = 0,
        cipher_mode: CipherMode = "strict",
        identity: DeviceIdentity = DeviceIdentity(),
        users: Mapping[str, str] | None = None,
    ) -> IpmiBmc:
        """Bind a new BMC (port 0: any free port) and serve it from now on."""
        if self._closed:
            raise RuntimeError("the IPMI mock server is stopped")
        bmc_name = name or getattr(host, "name", None) or f"ipmi-{len(self._bmcs) + 1}"
        bmc = IpmiBmc(
            str(bmc_name),
            host,
            users=users if users is not None else {username: password},
            address=address,
            port=port,
            cipher_mode=cipher_mode,
            identity=identity,
        )
        with self._lock:
            self._bmcs[bmc.serversocket.fileno()] = bmc
            self._changed = True
        self._wake()
        return bmc

    def remove_bmc(self, bmc: IpmiBmc) -> None:
        with self._lock:
            self._bmcs.pop(bmc.serversocket.fileno(), None)
            self._changed = True
        self._wake()
        bmc.sol.stop()
        bmc.serversocket.close()

    # -- running ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a daemon thread; returns at once (every added BMC is already bound)."""
        if self._thread is not None:
            raise RuntimeError("the IPMI mock server is already running")
        self._thread = threading.Thread(target=self.serve_forever, name="ipmi-mock-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Service every BMC's socket until :meth:`stop`.

        One ``selectors`` selector (epoll on Linux) that keeps its set of sockets between
        waits: a wait costs the same with 1,000 BMCs as with one, and the set is brought
        up to date only when a BMC was added or removed.  (select(2) cannot watch a
        descriptor numbered 1024 or more, which a fleet of a few hundred BMCs reaches;
        poll(2) would be handed every socket again at every datagram.)"""
        selector = selectors.DefaultSelector()
        watched: dict[int, socket.socket] = {}
        try:
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                if self._changed:
                    self._watch(selector, watched)
                for key, _events in selector.select(1.0):
                    sock = key.fileobj
                    if sock is self._wake_r:
                        self._drain_wake()
                    elif isinstance(sock, socket.socket):
                        self._service(sock)
        finally:
            selector.close()

    def _watch(self, selector: selectors.BaseSelector, watched: dict[int, socket.socket]) -> None:
        """Bring the selector's set up to date with the BMCs (after an add or a remove)."""
        with self._lock:
            self._changed = False
            wanted = {fd: bmc.serversocket for fd, bmc in self._bmcs.items()}
        for fd, sock in list(watched.items()):
            if wanted.get(fd) is not sock:  # removed (its descriptor possibly reused since)
                selector.unregister(fd)
                del watched[fd]
        for fd, sock in wanted.items():
            if fd not in watched and sock.fileno() == fd:
                selector.register(sock, selectors.EVENT_READ)
                watched[fd] = sock

    def _service(self, sock: socket.socket) -> None:
        with self._lock:
            bmc = self._bmcs.get(sock.fileno()) if sock.fileno() >= 0 else None
        if bmc is None:
            return
        for _ in range(_SERVICE_BATCH):  # what has queued up meanwhile, without waiting again
            try:
                data, sockaddr = sock.recvfrom(4096, socket.MSG_DONTWAIT)
            except OSError:  # BlockingIOError: nothing more
                return
            try:
                bmc.handle_datagram(data, sockaddr)
            except Exception:
                log.exception("%s: error handling a datagram from %s", bmc.name, sockaddr)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:  # BlockingIOError: drained
            pass

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\x01")
        except OSError:  # BlockingIOError: the buffer is full, the loop will wake anyway
            pass

    def stop(self) -> None:
        """Stop the loop, close every socket; idempotent."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None
        if self._closed:
            return
        self._closed = True
        with self._lock:
            bmcs, self._bmcs = list(self._bmcs.values()), {}
        for bmc in bmcs:
            bmc.sol.stop()
            bmc.serversocket.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -- standalone ---------------------------------------------------------------------------


def _parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.ipmi_server",
        description="Serve mock IPMI 2.0 BMCs on loopback UDP, each tied to a simulated host.",
    )
    parser.add_argument("--count", type=int, default=1, help="how many BMCs (default 1)")
    parser.add_argument("--address", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--base-port", type=int, default=0, help="first UDP port; BMC n gets base+n-1 (default: any)"
    )
    parser.add_argument("--username", default="admin")
    parser.add_argument(
        "--password-env",
        default="IPMI_PASSWORD",
        metavar="VAR",
        help="read the password from $VAR (IPMI_PASSWORD)",
    )
    parser.add_argument("--cipher-mode", choices=CIPHER_MODES, default="strict")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    from .host import SimulatedHost

    args = _parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        print(f"set the BMC password in ${args.password_env}", file=sys.stderr)
        return 2
    if args.count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = IpmiMockServer()
    try:
        for n in range(1, args.count + 1):
            port = args.base_port + n - 1 if args.base_port else 0
            bmc = server.add_bmc(
                SimulatedHost(f"ipmi-{n}"),
                username=args.username,
                password=password,
                address=args.address,
                port=port,
                cipher_mode=args.cipher_mode,
            )
            print(f"{bmc.name} {bmc.address} {bmc.port}", flush=True)
    except (OSError, ValueError) as exc:
        server.stop()
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    print("ready", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
