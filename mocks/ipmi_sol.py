"""Serial-over-LAN for the mock IPMI BMCs: the host's console, streamed to one client.

IPMI 2.0 chapter 15 (SOL) and 24 (payload activation), as real BMCs answer them:

* **Activate Payload** (NetFn 0x06, Cmd 0x48; data: payload type 1, instance 1, flags,
  three reserved bytes) starts streaming what the simulated host prints from now on
  (:class:`mocks.host.HostConsole`).  The answer carries the payload sizes and the UDP
  port, little-endian as the specification says (pyghmi's own server sends the port
  big-endian; ipmitool would then look for another port).  Instance 1 active on another
  session: 0x80.  Asked without encryption: 0x84 (this BMC always encrypts, as pyghmi's
  RMCP+ framing does).
* **Deactivate Payload** (0x49), from any session: the owner gets one last SOL packet
  with "SOL deactivating" set and the streaming stops.  Not active: 0x80.
* **Get Payload Activation Status** (0x4A) and **Get Payload Instance Info** (0x4B),
  which pyghmi's console uses as its keepalive (the owner's session ID).
* SOL packets (payload type 1): the BMC sends at most :data:`CHUNK` characters with a
  sequence number 1-15 and waits for the console's ACK before the next, resending after
  :data:`RESEND_AFTER` seconds up to :data:`RESENDS` times; a console that never ACKs
  is dropped (its payload deactivated).  Characters the console types are ACKed and
  counted (:attr:`SolService.typed`), not echoed; Enter on a running host brings getty's
  login prompt back, as on a real console.

Closing the session that owns the payload (Close Session, or the BMC forgetting it)
deactivates it too.  Each active payload has one sender thread (``ipmi-mock-sol-<bmc>``),
which sends under the BMC's wire lock, the lock the server loop holds while it handles a
datagram: a session's sequence numbers never race.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

SOL_PAYLOAD = 1
CMD_ACTIVATE_PAYLOAD = 0x48
CMD_DEACTIVATE_PAYLOAD = 0x49
CMD_PAYLOAD_STATUS = 0x4A
CMD_PAYLOAD_INSTANCE_INFO = 0x4B
SOL_COMMANDS = (CMD_ACTIVATE_PAYLOAD, CMD_DEACTIVATE_PAYLOAD, CMD_PAYLOAD_STATUS, CMD_PAYLOAD_INSTANCE_INFO)

#: completion codes of Activate / Deactivate Payload (IPMI 2.0 tables 24-2, 24-3)
CC_OK = 0x00
CC_ALREADY_ACTIVE = 0x80  # activate: on another session; deactivate: not active
CC_INVALID_DATA_FIELD = 0xCC
CC_ENCRYPTION_REQUIRED = 0x84

#: SOL packet status bits, BMC to console (IPMI 2.0 table 15-2)
STATUS_NACK = 0x40
STATUS_DEACTIVATING = 0x10

#: characters per SOL packet (also the inbound and outbound payload sizes announced)
CHUNK = 200
#: console output kept for a client that has not ACKed yet (a BMC's buffer is small)
BACKLOG = 64 * 1024
RESEND_AFTER = 1.0
RESENDS = 5


class Console(Protocol):
    def listen(self, listener: Callable[[bytes], None]) -> Callable[[], None]: ...


class WireBmc(Protocol):
    """What the SOL service needs from its :class:`mocks.ipmi_server.IpmiBmc`."""

    name: str
    port: int
    wire_lock: threading.RLock


class _Link:
    """Payload instance 1, active on one session: the backlog and the sender thread."""

    def __init__(self, service: SolService, session: Any) -> None:
        self.service = service
        self.session = session
        self.cond = threading.Condition()
        self.backlog = bytearray()
        self.dropped = 0
        self.seq = 0
        #: the packet awaiting its ACK: (seq, data), when it was sent, how often resent
        self.unacked: tuple[int, bytes] | None = None
        self.sent_at = 0.0
        self.resends = 0
        self.remote_seq = 0
        self.closing = False
        self.stop_listening: Callable[[], None] = lambda: None
        self.thread = threading.Thread(
            target=self._run, name=f"ipmi-mock-sol-{service.bmc.name}", daemon=True
        )

    # -- the host prints (any thread; must not block)

    def feed(self, data: bytes) -> None:
        with self.cond:
            self.backlog += data
            excess = len(self.backlog) - BACKLOG
            if excess > 0:
                del self.backlog[:excess]
                self.dropped += excess
            self.cond.notify_all()

    # -- the console's packets (the server loop's thread, under the wire lock)

    def got_packet(self, payload: Any) -> None:
        if not isinstance(payload, (bytes, bytearray)) or len(payload) < 4:
            return  # pyghmi reports a broken session with a dict; a short packet is garbage
        seq, ack, accepted, status = payload[0] & 0x0F, payload[1] & 0x0F, payload[2], payload[3]
        data = bytes(payload[4:])
        if seq:
            self._send(bytes((0, seq, len(data), 0)))
            if seq != self.remote_seq:
                self.remote_seq = seq
                self.service.typed += len(data)
                if b"\r" in data:
                    self.service.enter_pressed()
        if ack:
            with self.cond:
                if self.unacked is not None and self.unacked[0] == ack:
                    sent = self.unacked[1]
                    taken = len(sent) if not status & STATUS_NACK else min(accepted, len(sent))
                    self.backlog[:0] = sent[taken:]  # what was not accepted goes out again
                    self.unacked = None
                    self.cond.notify_all()

    # -- the sender

    def _send(self, payload: bytes) -> None:
        with self.service.bmc.wire_lock:
            self.session.send_payload(bytearray(payload), payload_type=SOL_PAYLOAD, retry=False)

    def _next_seq(self) -> int:
        self.seq = self.seq % 15 + 1
        return self.seq

    def _run(self) -> None:
        try:
            while True:
                packet: bytes | None = None
                with self.cond:
                    while not self.closing:
                        now = time.monotonic()
                        if self.unacked is not None:
                            if now - self.sent_at >= RESEND_AFTER:
                                if self.resends >= RESENDS:
                                    log.info(
                                        "%s: SOL console stopped answering; deactivated",
                                        self.service.bmc.name,
                                    )
                                    self.closing = True
                                    break
                                self.resends += 1
                                self.sent_at = now
                                packet = bytes((self.unacked[0], 0, 0, 0)) + self.unacked[1]
                                break
                            self.cond.wait(RESEND_AFTER - (now - self.sent_at))
                        elif self.backlog:
                            data = bytes(self.backlog[:CHUNK])
                            del self.backlog[:CHUNK]
                            self.service.streamed += len(data)
                            self.unacked = (self._next_seq(), data)
                            self.sent_at, self.resends = now, 0
                            packet = bytes((self.unacked[0], 0, 0, 0)) + data
                            break
                        else:
                            self.cond.wait()
                    if packet is None:
                        return
                self._send(packet)
        except Exception:
            log.exception("%s: SOL sender failed", self.service.bmc.name)
        finally:
            self.service._release(self)

    def close(self, tell_console: bool) -> None:
        self.stop_listening()
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        if tell_console:
            try:
                self._send(bytes((self._next_seq(), 0, 0, STATUS_DEACTIVATING)))
            except Exception as exc:  # noqa: BLE001 - the console may be gone already
                log.debug("%s: telling the SOL console it is deactivated: %s", self.service.bmc.name, exc)


class SolService:
    """Payload type 1 (SOL), one instance, for one mock BMC and its host's console."""

    def __init__(self, bmc: WireBmc, console: Console | None) -> None:
        self.bmc = bmc
        self.console = console
        self._lock = threading.Lock()
        self._link: _Link | None = None
        # -- what tests look at
        self.activations = 0
        self.deactivations = 0
        #: characters the console typed (ACKed, never echoed)
        self.typed = 0
        #: activations refused (payload busy, no encryption asked, bad request)
        self.refused = 0
        #: console bytes sent to consoles (each counted once, resends not)
        self.streamed = 0

    @property
    def active(self) -> bool:
        with self._lock:
            return self._link is not None

    def owner(self) -> Any:
        with self._lock:
            return self._link.session if self._link is not None else None

    def enter_pressed(self) -> None:
        """Enter on the console: getty shows its prompt again, if the OS is up to run it."""
        host = getattr(self.bmc, "host", None)
        if self.console is not None and host is not None and getattr(host, "answers_probe", False):
            write = getattr(self.console, "write", None)
            if write is not None:
                write(f"\n{host.name} login: ")

    def handle(self, request: dict[str, Any], session: Any) -> None:
        """One of :data:`SOL_COMMANDS` (the BMC's dispatcher checked the NetFn)."""
        command, data = request["command"], bytes(request.get("data") or b"")
        if command == CMD_ACTIVATE_PAYLOAD:
            self._activate(data, session)
        elif command == CMD_DEACTIVATE_PAYLOAD:
            self._deactivate(data, session)
        elif command == CMD_PAYLOAD_STATUS:
            if len(data) < 1:
                session.send_ipmi_response(code=CC_INVALID_DATA_FIELD)
            elif data[0] != SOL_PAYLOAD:
                session.send_ipmi_response(data=[0, 0, 0])
            else:
                session.send_ipmi_response(data=[1, 1 if self.active else 0, 0])
        else:  # Get Payload Instance Info
            owner = self.owner()
            if len(data) < 2 or data[0] != SOL_PAYLOAD or data[1] != 1:
                session.send_ipmi_response(code=CC_INVALID_DATA_FIELD)
                return
            sid = getattr(owner, "localsid", 0) if owner is not None else 0
            session.send_ipmi_response(data=[*struct.pack("<I", sid), 0, 0, 0, 0, 0, 0, 0, 0])

    def _activate(self, data: bytes, session: Any) -> None:
        if len(data) < 3 or data[0] & 0x3F != SOL_PAYLOAD or data[1] != 1 or self.console is None:
            self.refused += 1
            session.send_ipmi_response(code=CC_INVALID_DATA_FIELD)
            return
        if not data[2] & 0x80:
            self.refused += 1
            session.send_ipmi_response(code=CC_ENCRYPTION_REQUIRED)
            return
        with self._lock:
            if self._link is not None:
                if self._link.session is not session:
                    self.refused += 1
                    session.send_ipmi_response(code=CC_ALREADY_ACTIVE)
                    return
                link = self._link  # the same session again (its retransmission): answer again
            else:
                link = self._link = _Link(self, session)
                self.activations += 1
                session.sol_handler = link.got_packet
            if link.thread.ident is None:
                # listening before the answer leaves: whatever the host prints once the
                # console has its answer is streamed
                link.stop_listening = self.console.listen(link.feed)
                link.thread.start()
        size = list(struct.pack("<H", CHUNK))
        session.send_ipmi_response(
            data=[0, 0, 0, 0, *size, *size, *struct.pack("<H", self.bmc.port), 0xFF, 0xFF]
        )

    def _deactivate(self, data: bytes, session: Any) -> None:
        if len(data) < 2 or data[0] & 0x3F != SOL_PAYLOAD or data[1] != 1:
            session.send_ipmi_response(code=CC_INVALID_DATA_FIELD)
            return
        with self._lock:
            link, self._link = self._link, None
        if link is None:
            session.send_ipmi_response(code=CC_ALREADY_ACTIVE)
            return
        self.deactivations += 1
        session.send_ipmi_response()
        link.close(tell_console=link.session is not session)
        link.session.sol_handler = None

    def session_gone(self, session: Any) -> None:
        """The session closed or was forgotten: its payload ends with it."""
        with self._lock:
            if self._link is None or self._link.session is not session:
                return
            link, self._link = self._link, None
        self.deactivations += 1
        link.close(tell_console=False)

    def _release(self, link: _Link) -> None:
        """The sender ended (stopped, or its console stopped answering)."""
        link.stop_listening()
        with self._lock:
            if self._link is link:
                self._link = None
                self.deactivations += 1
        link.session.sol_handler = None

    def stop(self) -> None:
        """The BMC is going away: end the sender, tell nobody."""
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.close(tell_console=False)
            link.thread.join(timeout=5)
