"""Serial-over-LAN: receive a host's serial console through its BMC (IPMI 2.0 ch. 15, 24).

Why not pyghmi's ``Console``: it logs in with pyghmi's own ``Session`` (the shared one,
with pyghmi 1.6.19's cipher-suite trap, see :mod:`oob.drivers.ipmi.session`) and is
driven by pyghmi's process-wide ``wait_for_rsp`` loop.  :class:`SolConsole` uses oob's
:class:`~oob.drivers.ipmi.client.IpmiClient` (its login, its errors, its credentials)
and serves the session from one thread of its own, as every :class:`OobSession` is
served: the datagrams pyghmi's I/O thread queues for the session wake that thread, which
decrypts them (pyghmi) and hands SOL packets to :meth:`SolConsole._got_packet`.

The protocol, receive side only (oob never types on a crashed host's console):

* Activate Payload (NetFn 0x06, Cmd 0x48): type 1 (SOL), instance 1, encrypted and
  authenticated.  0x80 means another session has the console: oob does *not* take it
  over (that would cut off an engineer or a console server); it says so and goes on.
* Each SOL packet from the BMC carries a sequence number 1-15 and up to ~255 characters;
  it is ACKed with the number of characters accepted (all of them).  A packet with the
  number just seen is the BMC's resend (its ACK was lost): ACKed again, written once.
* Every :data:`KEEPALIVE` seconds Get Payload Instance Info (0x4B) asks who owns the
  payload: another session, or none, means it was deactivated (``ipmitool sol
  deactivate``, the BMC's own web console); no answer means the session is gone.
* Deactivate Payload (0x49) and Close Session when stopped, whatever happened before —
  also when the caller is interrupted (Ctrl-C reaches :meth:`SolConsole.stop` through
  the caller's ``finally``); a BMC keeps a session that was never closed for minutes and
  may have only a few.

Nothing the BMC sends is trusted: a packet shorter than its header is dropped, its data
is bounded by the datagram, and the caller decides what to keep (bounded) and how to
show it (:mod:`oob.safetext`).
"""

from __future__ import annotations

import enum
import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from oob.drivers.ipmi.client import IpmiClient
from oob.errors import BmcProtocolError, BmcRefused, NotDelivered, OobError

log = logging.getLogger(__name__)

NETFN_APP = 0x06
CMD_ACTIVATE_PAYLOAD = 0x48
CMD_DEACTIVATE_PAYLOAD = 0x49
CMD_PAYLOAD_INSTANCE_INFO = 0x4B
SOL_PAYLOAD = 1
SOL_INSTANCE = 1
#: Activate Payload, byte 3: encrypt, authenticate; serial alerts and CTS as the BMC has them
ACTIVATE_FLAGS = 0xC0

#: SOL packet status bits, BMC to console (IPMI 2.0 table 15-2)
STATUS_UNAVAILABLE = 0x20
STATUS_DEACTIVATING = 0x10

#: Activate Payload completion codes (IPMI 2.0 table 24-2)
ACTIVATE_ERRORS: dict[int, str] = {
    0x80: "the serial console is already open in another session (an engineer, a console server, or "
    "a session not yet expired); oob does not take it over",
    0x81: "Serial-over-LAN is disabled on this BMC (ipmitool sol set enabled true)",
    0x82: "the BMC has no free Serial-over-LAN session",
    0x83: "the BMC refuses an encrypted serial console",
    0x84: "the BMC wants the serial console encrypted",
    0xC1: "the BMC does not support Serial-over-LAN",
    0xD4: "the IPMI user may not open the serial console (privilege)",
}

#: seconds between checks that the payload is still ours and the session alive
KEEPALIVE = 10.0


class Ended(enum.StrEnum):
    """Why the console stopped."""

    STOPPED = "stopped"
    """The caller stopped it."""
    DEACTIVATED = "deactivated"
    """The BMC or another session deactivated the console."""
    LOST = "lost"
    """The session stopped answering."""


class SolConsole:
    """One host's serial console through its BMC, received on a thread of its own.

    ``on_data(bytes)`` runs on that thread for every new piece of console output, in
    order; ``on_end(Ended, detail)`` once when it stops for any reason.  Neither may block
    for long (the BMC resends what is not ACKed within about a second).
    """

    def __init__(
        self,
        address: str,
        port: int,
        username: str,
        password: str,
        *,
        on_data: Callable[[bytes], None],
        on_end: Callable[[Ended, str], None] | None = None,
        timeout: float = 15.0,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self._client = IpmiClient(address, port, username, password, timeout=timeout, connect_attempts=1)
        self._on_data = on_data
        self._on_end = on_end
        self._keepalive = keepalive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._remote_seq = 0
        self._ended: tuple[Ended, str] | None = None
        self._active = False
        self._lock = threading.Lock()
        #: datagrams of console output received (resends included) and bytes kept from them
        self.packets = 0
        self.received = 0

    def __repr__(self) -> str:
        return f"SolConsole({self._client.where!r})"

    @property
    def where(self) -> str:
        return self._client.where

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Log in and activate the console; then receive on a thread until :meth:`stop`.

        Raises :class:`NotDelivered` subclasses (unreachable, authentication, refused)
        with nothing left open on the BMC.
        """
        if self._thread is not None:
            raise OobError("the serial console was already started")
        self._client.open()
        try:
            self._session = self._client._require()
            self._activate()
        except BaseException:
            self._client.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"oob-sol-{self._client.where}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop receiving, deactivate the console and close the session; idempotent."""
        self._stop.set()
        session = self._session
        if session is not None:
            session._stir()  # wake the receiving thread now, not at its next keepalive
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s: the serial console thread did not end within %g s", self.where, timeout)

    @property
    def ended(self) -> tuple[Ended, str] | None:
        with self._lock:
            return self._ended

    # -- activation -----------------------------------------------------------------------

    def _activate(self) -> None:
        reply = self._client.read(
            NETFN_APP,
            CMD_ACTIVATE_PAYLOAD,
            (SOL_PAYLOAD, SOL_INSTANCE, ACTIVATE_FLAGS, 0, 0, 0),
            what="Activate Payload (serial console)",
        )
        if reply.code:
            said = ACTIVATE_ERRORS.get(
                reply.code, f"the BMC refused to open the serial console (0x{reply.code:02x})"
            )
            raise BmcRefused(said, bmc_message=f"completion code 0x{reply.code:02x}")
        if len(reply.data) < 10:
            self._deactivate()
            raise BmcProtocolError(f"the BMC answered Activate Payload with {len(reply.data)} bytes, not 12")
        port = reply.data[8] | reply.data[9] << 8
        # some BMCs send the port big-endian (pyghmi accepts both; so does oob)
        if port != self._client.port and struct.unpack(">H", reply.data[8:10])[0] != self._client.port:
            self._deactivate()
            raise BmcProtocolError(
                f"the BMC serves the serial console on UDP port {port}, not the session's; not supported"
            )
        self._active = True
        self._session.sol_handler = self._got_packet

    def _deactivate(self) -> None:
        try:
            self._client.read(
                NETFN_APP,
                CMD_DEACTIVATE_PAYLOAD,
                (SOL_PAYLOAD, SOL_INSTANCE, 0, 0, 0, 0),
                what="Deactivate Payload (serial console)",
            )
        except OobError as exc:
            log.info("%s: deactivating the serial console: %s", self.where, exc)

    # -- receiving (the console's own thread) ---------------------------------------------

    def _run(self) -> None:
        ended, detail = Ended.STOPPED, ""
        try:
            next_check = time.monotonic() + self._keepalive
            while not self._stop.is_set():
                with self._lock:
                    if self._ended is not None:
                        ended, detail = self._ended
                        break
                self._session._pump(next_check)
                if self._session.broken:
                    ended, detail = Ended.LOST, "the IPMI session broke"
                    break
                if time.monotonic() >= next_check and not self._stop.is_set():
                    lost = self._still_ours()
                    if lost is not None:
                        ended, detail = lost
                        break
                    next_check = time.monotonic() + self._keepalive
        except NotDelivered as exc:
            ended, detail = Ended.LOST, str(exc)
        except Exception as exc:
            ended, detail = Ended.LOST, f"{type(exc).__name__}: {exc}"
            log.debug("%s: serial console receiver failed", self.where, exc_info=True)
        finally:
            self._finish(ended, detail)

    def _still_ours(self) -> tuple[Ended, str] | None:
        reply = self._client.read(
            NETFN_APP,
            CMD_PAYLOAD_INSTANCE_INFO,
            (SOL_PAYLOAD, SOL_INSTANCE),
            what="Get Payload Instance Info",
        )
        if reply.code or len(reply.data) < 4:
            return None  # not every BMC answers it; the session is alive, that is what matters
        owner = struct.unpack("<I", reply.data[:4])[0]
        if owner != getattr(self._session, "sessionid", owner):
            self._active = False
            return Ended.DEACTIVATED, "the serial console was deactivated or taken by another session"
        return None

    def _got_packet(self, payload: Any) -> None:
        """pyghmi hands each SOL payload here (or a dict when the session is gone)."""
        if isinstance(payload, dict):
            self._end(Ended.LOST, str(payload.get("error") or "the IPMI session ended"))
            return
        if not isinstance(payload, (bytes, bytearray)) or len(payload) < 4:
            return
        seq, status, data = payload[0] & 0x0F, payload[3], bytes(payload[4:])
        if seq:
            self.packets += 1
            try:
                self._session.send_payload(
                    bytearray((0, seq, min(len(data), 255), 0)), payload_type=SOL_PAYLOAD, retry=False
                )
            except Exception as exc:  # noqa: BLE001 - an ACK that cannot leave: the session is gone
                self._end(Ended.LOST, f"cannot ACK console data ({exc})")
                return
            if seq != self._remote_seq:
                self._remote_seq = seq
                if data:
                    self.received += len(data)
                    self._on_data(data)
        if status & STATUS_DEACTIVATING:
            self._active = False
            self._end(Ended.DEACTIVATED, "the BMC deactivated the serial console")

    def _end(self, ended: Ended, detail: str) -> None:
        with self._lock:
            if self._ended is None:
                self._ended = (ended, detail)

    def _finish(self, ended: Ended, detail: str) -> None:
        session = self._session
        if session is not None:
            session.sol_handler = None
        if self._active and not session.broken:
            self._deactivate()
        self._active = False
        # pyghmi's logout sends Deactivate Payload itself while a sol_handler is set: cleared above
        self._client.close()
        with self._lock:
            if self._ended is None or ended is not Ended.STOPPED:
                self._ended = (ended, detail)
            final = self._ended
        if self._on_end is not None:
            try:
                self._on_end(*final)
            except Exception:
                log.exception("%s: serial console end callback failed", self.where)
