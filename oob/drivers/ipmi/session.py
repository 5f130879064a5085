"""pyghmi's RMCP+ client session, with the three changes oob needs and nothing more.

1. **Cipher suite negotiation.**  pyghmi 1.6.19 proposes suite 17 (RAKP-HMAC-SHA256,
   HMAC-SHA256-128, AES) and, when the BMC refuses it, falls back to suite 3.  But it
   never reads which algorithms the BMC *chose*: pyghmi's own server, OpenStack
   VirtualBMC and some real BMCs answer a suite-17 proposal with suite 3, and the client
   then computes RAKP with SHA-256 against SHA-1 data and dies in ``struct.pack``
   ("pack expected 32 items").  :meth:`OobSession._got_rmcp_response` reads the chosen
   authentication and integrity algorithms (bytes 16 and 24 of the Open Session Response)
   and switches the session's hash to match before RAKP starts.

2. **Requests sent exactly once.**  pyghmi retransmits an unanswered request every
   0.5-3 s and, after a few tries, logs in again and sends it once more
   (``Session._timedout``).  A second Chassis Control 0x04 is a second NMI.  A request
   made through :meth:`OobSession.send_once` is never retransmitted:
   ``_timedout`` reports a timeout to the waiting caller instead of resending or
   re-logging in, and, as the last line of defence, ``send_payload`` refuses to put a
   second copy of that request on the wire whatever path inside pyghmi asks for it.

3. **Knowing what happened during login.**  pyghmi raises the same ``IpmiException``
   for "nobody answered" and "the BMC answered, then went quiet"; oob must tell them
   apart (unreachable vs. authentication trouble), so the session records whether any
   datagram came back from the BMC and why it gave up.

4. **A socket of its own, read by the session's own thread, within oob's deadline.**
   pyghmi shares one UDP socket among up to 64 sessions and reads every datagram of the
   process in one I/O thread, which queues it on its session (``pktqueue``) and wakes
   the threads registered as waiting for that BMC.  With many sessions in parallel
   threads that costs twice: ``Session.awaitresponse`` sends, then registers, so an
   answer read in between woke nobody and the thread slept with it in its queue until
   its timer ran out (a read's 0.5-1.5 s retransmission timer, or the whole ``timeout``
   of :meth:`OobSession.send_once`); and every datagram crossed two threads (the I/O
   thread, then the waiting one), each waiting its turn for the GIL, so at 1,000 BMCs an
   answer sat unread for tens of milliseconds.  An :class:`OobSession` has a socket of
   its own (:meth:`OobSession._assignsocket`), which pyghmi's I/O thread never sees:
   the session's thread waits on it in ``recvfrom`` (bounded by the kernel's
   SO_RCVTIMEO: one system call, and one hand-over of the GIL, per datagram) and handles
   its datagrams itself (:meth:`OobSession._pump`), only those from the BMC's address (as pyghmi
   routes them), with its own retransmission timer, during login
   (:meth:`OobSession._await_login`) and for every request
   (:meth:`OobSession.awaitresponse`).  A datagram that arrives before the thread waits
   stays in the socket until it reads it: no wake-up can be lost.  Another thread that
   needs the session's thread (the serial console stopping) sends an empty datagram to
   the socket (:meth:`OobSession._stir`).  The socket is closed with the session
   (:meth:`OobSession.logout`).  Session setup runs until ``login_timeout`` seconds
   have passed, retransmitting as pyghmi does (setup messages deliver nothing to the
   host), not until pyghmi's own retry count runs out.  Nothing runs pyghmi's shared
   loop for these sessions, so neither does its idle keepalive (a Get Device ID after
   25-29 s idle): oob holds a session for one step of a runbook, seconds, and closes it.

5. **Sending outside pyghmi's process-wide lock.**  pyghmi puts every datagram on the wire
   while it holds its ``KEEPALIVE_SESSIONS`` lock, one lock for every session of the
   process.  ``sendto`` lets go of the GIL, and with dozens of threads the sender then
   waits its turn for the GIL *holding that lock*: every other session's send, and its
   login, queues behind it (at 1,000 BMCs, threads waited longer for this lock than for
   their BMCs).  :meth:`OobSession._xmit_packet` leaves the datagram in an outbox that
   :meth:`OobSession.send_payload` sends once pyghmi has let go of the lock; the bytes,
   the sequence number and the retransmission timer are pyghmi's, as before.

Everything else (framing, RAKP, integrity, AES, sequence numbers) is pyghmi's.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

from pyghmi.exceptions import IpmiException
from pyghmi.ipmi.private import constants
from pyghmi.ipmi.private import session as pyghmi_session
from pyghmi.ipmi.private import util as pyghmi_util

log = logging.getLogger(__name__)

#: (authentication, integrity) algorithm numbers -> pyghmi's hash settings
#: IPMI 2.0 tables 13-17 and 13-18: auth 1 = RAKP-HMAC-SHA1, 3 = RAKP-HMAC-SHA256;
#: integrity 1 = HMAC-SHA1-96, 4 = HMAC-SHA256-128.
_SUITES: dict[tuple[int, int], tuple[int, Any, int, int]] = {
    # (auth, integrity): (pyghmi's attemptedhash, hash function, ICV length, cipher suite)
    (1, 1): (1, hashlib.sha1, 12, 3),
    (3, 4): (256, hashlib.sha256, 16, 17),
}
#: confidentiality 1 = AES-CBC-128, the only one pyghmi speaks (it always encrypts)
_AES_CBC_128 = 1
_IPMI_PAYLOAD = constants.payload_types["ipmi"]


@dataclass
class _SingleShot:
    """The one request that must leave this machine at most once."""

    netfn: int
    command: int
    transmitted: int = 0
    #: copies pyghmi asked to send again and :meth:`OobSession.send_payload` refused
    suppressed: int = 0
    timed_out: bool = False

    def matches(self, payload: Any, payload_type: Any) -> bool:
        # IPMI LAN message: rsAddr, netFn/rsLUN, checksum, rqAddr, rqSeq/rqLUN, cmd, data..., checksum
        if payload_type is None or (payload_type & 0x3F) != _IPMI_PAYLOAD or not payload or len(payload) < 7:
            return False
        return bool(payload[1] >> 2 == self.netfn and payload[5] == self.command)


#: how long a datagram may wait for room in its socket's send buffer (the kernel's
#: SO_SNDTIMEO; it is not sent when there is none by then, and the request's own timer
#: decides what happens next, as when a datagram is lost)
_SEND_ROOM_WAIT = 1.0
#: the longest one wait for a datagram lasts (the kernel's SO_RCVTIMEO); callers loop
#: until their own deadline
_LONGEST_WAIT = 60.0
#: pyghmi's receive size; an RMCP+ datagram is far smaller
_DATAGRAM_MAX = 3000
#: datagrams taken in at most before a session acts on its timer or deadline
_DRAIN_MAX = 64

#: (socket, datagram, destination) waiting for pyghmi to let go of its lock
_Outgoing = tuple[socket.socket, bytes, Any]


def _timeval(seconds: float) -> bytes:
    """``struct timeval`` for SO_RCVTIMEO/SO_SNDTIMEO: rounded up, never 0 (0 is "forever")."""
    micro = max(1, math.ceil(min(seconds, _LONGEST_WAIT) * 1_000_000))
    return struct.pack("@ll", micro // 1_000_000, micro % 1_000_000)


def _send_datagram(sock: socket.socket, packet: bytes, address: Any) -> None:
    """``sendto`` as pyghmi's ``_io_sendto`` does (errors are the request timer's business:
    a datagram lost on the way is no different), within the socket's SO_SNDTIMEO."""
    try:
        sock.sendto(packet, address)
    except OSError as exc:  # BlockingIOError: no room within _SEND_ROOM_WAIT; nothing was sent
        log.debug("sending a datagram to %s: %s", address, exc)


def _session_socket() -> socket.socket:
    """A UDP socket for one session, of the family pyghmi addresses BMCs in.

    pyghmi writes IPv4 BMC addresses as IPv4-mapped IPv6 ones when the kernel has IPv6
    (``ipv6support``, which it decides when it makes its first socket): decided here the
    same way when pyghmi has not yet, so that pyghmi's addressing and this socket agree.
    """
    if pyghmi_session.ipv6support is None:
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            pyghmi_session.ipv6support = True
        except OSError:
            pyghmi_session.ipv6support = False
    if pyghmi_session.ipv6support:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except OSError:
            sock.close()
            raise
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("", 0))  # as pyghmi: any local address, a port chosen by the kernel
        # blocking, each wait bounded by the kernel (SO_RCVTIMEO, set per wait; SO_SNDTIMEO):
        # one system call per datagram, and so one hand-over of the GIL, not a poll and reads
        sock.setblocking(True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(_SEND_ROOM_WAIT))
    except OSError:
        sock.close()
        raise
    return sock


def _loopback_of(sock: socket.socket) -> list[Any]:
    """Where a datagram reaches ``sock`` from this machine (its own wake-up, see _stir)."""
    port = sock.getsockname()[1]
    if sock.family == socket.AF_INET6:
        return [("::1", port, 0, 0), ("::ffff:127.0.0.1", port, 0, 0)]
    return [("127.0.0.1", port)]


def _now() -> float:
    """pyghmi's clock (``os.times()``, 10 ms steps), in which its timers are set."""
    return float(pyghmi_util._monotonic_time())


class OobSession(pyghmi_session.Session):  # type: ignore[misc]
    """An RMCP+ session to one BMC (see the module docstring for what differs)."""

    # pyghmi's attributes that this class touches (pyghmi itself is untyped)
    attemptedhash: int
    currhashlib: Any
    currhashlen: int
    lastpayload: Any
    onlogpayload: Any
    sessioncontext: str | None
    rmcptag: int
    logging: bool
    logontries: int

    def __new__(cls, bmc: str, userid: str, password: str, port: int = 623, kg: Any = None, **_: Any) -> Self:
        # A new session for every driver, never pyghmi's shared one.  pyghmi's __new__
        # hands back a live session with the same BMC and credentials (one driver's logout
        # would end another's), and in 1.6.19 on Python 3 even a logged-out one: its
        # ``initting_sessions`` entry is added under str keys and removed under bytes keys,
        # so it is never removed and the next login to that BMC gets the dead session.
        self = object.__new__(cls)
        # pyghmi's socket sharing, undone: the socket is this session's alone (4), so no
        # other session's socket is off limits, and pyghmi's use count of it is this
        # session's own (pyghmi counts down what was never counted up: a Counter takes it)
        self.forbidsock = []
        self.socketpool = collections.Counter()
        return self

    def __init__(
        self,
        bmc: str,
        userid: str,
        password: str,
        port: int = 623,
        kg: Any = None,
        *,
        login_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Log in; raises pyghmi's ``IpmiException`` when that fails.

        ``login_timeout``: seconds the whole session setup may take (retransmissions
        included); None leaves it to pyghmi's retry count (about 5 s).
        """
        self.oob_heard = False
        self.oob_rmcp_status: int | None = None
        self.oob_failure: str | None = None
        #: cipher suite in use once logged in (3 or 17)
        self.oob_cipher_suite: int | None = None
        #: the login_timeout that ran out before the session was set up
        self.oob_login_expired: float | None = None
        self._single_shot: _SingleShot | None = None
        #: 5. datagrams to send once send_payload is out of pyghmi's lock (None: send at once)
        self._outbox: list[_Outgoing] | None = None
        #: the last request made through send_once, armed or not (transmitted, suppressed...)
        self.last_shot: _SingleShot | None = None
        # 4. another thread asked this session's thread to look at the session again
        self._stir_lock = threading.Lock()
        self._stirred = False
        #: the thread waiting on this session (the only one that handles its datagrams and timer)
        self._pumping: int | None = None
        #: time.monotonic() by which the login must be done
        self._login_deadline = math.inf if login_timeout is None else time.monotonic() + login_timeout
        self._login_timeout = login_timeout
        kwargs.pop("onlogon", None)
        # with a callback pyghmi's constructor only starts the login; _await_login waits for it
        super().__init__(bmc, userid, password, port=port, kg=kg, onlogon=self._logon_done, **kwargs)
        self._await_login()

    # -- 4. a socket of its own, read by the session's own thread ------------------------

    @classmethod
    def _assignsocket(cls, server: Any = None, forbiddensockets: Any = ()) -> Any:
        if server is not None:  # pyghmi's server side; a client session never asks this
            return super()._assignsocket(server, forbiddensockets)
        return _session_socket()

    def logout(self, sessionok: bool = True) -> Any:
        """pyghmi's logout (Close Session, sent once, not waited for), then the socket closed."""
        try:
            return super().logout(sessionok)
        finally:
            sock = getattr(self, "socket", None)
            if isinstance(sock, socket.socket):
                sock.close()

    def _logon_done(self, _result: Any) -> None:
        self._stir()  # _await_login reads the outcome from the session's state

    def _stir(self) -> None:
        """Make this session's thread look at the session again (it may be waiting in recvfrom)."""
        if self._pumping == threading.get_ident():
            return  # the caller is that thread: it looks again once this returns
        with self._stir_lock:
            self._stirred = True
        sock = getattr(self, "socket", None)
        if not isinstance(sock, socket.socket) or sock.fileno() < 0:
            return
        for address in _loopback_of(sock):  # an empty datagram ends its wait
            try:
                sock.sendto(b"", address)
                return
            except OSError:  # no ::1 here: the IPv4 loopback, mapped
                continue

    def _cmdwait(self) -> None:
        # pyghmi waits for the command in flight through its I/O thread, which never
        # serves this session's socket: wait for raw_command to say it is over (evq)
        while left := self._isincommand():
            over = threading.Event()
            self.evq.append(over)
            over.wait(left)

    def _read_socket(self, wait: float = 0.0) -> bool:
        """Queue the next datagram from the BMC on the session's socket, waiting for one up
        to ``wait`` seconds (not at all when 0): one system call, whatever happens.  True
        when a datagram was read (for this session or not)."""
        sock = self.socket
        try:
            if wait > 0:
                # (a signal caught by a handler, only SIGINT/SIGTERM/SIGHUP here, restarts the wait
                # in full; the caller's deadline is checked again once it returns)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(wait))
                data, source = sock.recvfrom(_DATAGRAM_MAX)
            else:
                data, source = sock.recvfrom(_DATAGRAM_MAX, socket.MSG_DONTWAIT)
        except OSError:  # BlockingIOError: nothing (within the wait); or the socket is closed
            return False
        # pyghmi's I/O thread routes by the sender's address; anything else (a wake-up from
        # _stir, a stray datagram) is nobody's business here
        if len(data) >= 4 and source in (getattr(self, "allsockaddrs", None) or ()):
            self.pktqueue.append((data, source, sock, True))
        return True

    def _pump(self, until: float) -> None:
        """Wait for the next datagram until another thread stirs this session, its timer
        runs out or ``until`` (``time.monotonic()``); handle what arrived."""
        with self._stir_lock:
            if self._stirred:
                self._stirred = False
                return
        sock = self.socket
        if not isinstance(sock, socket.socket) or sock.fileno() < 0:
            return  # closed with the session: nothing more can arrive
        self._read_socket(min(until - time.monotonic(), self._retransmit_at() - _now()))
        if time.monotonic() >= until or self._retransmit_at() <= _now():
            # the caller acts on its deadline or timer next (a retransmission, giving up):
            # first take in all that has arrived, an answer that waited while this thread
            # was kept from running included
            for _ in range(_DRAIN_MAX):
                if not self._read_socket():
                    break
        if self.pktqueue:
            self.process_pktqueue()

    def _retransmit_at(self) -> float:
        """When this session's retransmission (or timeout) timer runs out; inf if not set.

        Read without pyghmi's ``WAITING_SESSIONS`` lock: one lookup in a dict is atomic,
        and that lock is process-wide (every session's sends take it), so a wait that
        took it at every turn queued behind them all."""
        entry = pyghmi_session.Session.waiting_sessions.get(self)
        timeout = entry.get("timeout") if entry else None
        return math.inf if timeout is None else float(timeout)

    def _take_due_timer(self) -> bool:
        """True (and the timer removed) when this session's timer has run out."""
        if self._retransmit_at() > _now():
            return False
        with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):  # taking it: under the lock
            entry = pyghmi_session.Session.waiting_sessions.get(self)
            if not entry or entry.get("timeout", math.inf) > _now():
                return False
            pyghmi_session.Session.waiting_sessions.pop(self, None)
            return True

    def _await_login(self) -> None:
        previous, self._pumping = self._pumping, threading.get_ident()
        try:
            while self.logging and not self.broken:
                if time.monotonic() >= self._login_deadline:
                    self._abandon_login()
                    break
                try:
                    self._pump(self._login_deadline)
                    if self._take_due_timer():
                        self._timedout()
                except IpmiException as exc:
                    # raised by a request of the login itself (Set Session Privilege Level)
                    said = getattr(self, "errormsg", None) or (exc.args[0] if exc.args else None)
                    raise IpmiException(said) from None
        finally:
            self._pumping = previous
        if self.broken:
            raise IpmiException(self.errormsg)

    def _abandon_login(self) -> None:
        self.oob_login_expired = self._login_timeout
        self._mark_broken(f"no answer within {self._login_timeout:g} s")

    def awaitresponse(self, retry: bool, netfn: int, command: int) -> None:
        """pyghmi's wait for the answer to the request just sent, on this session's own
        condition (pyghmi's would sleep through an answer read before it started waiting)."""
        self.awaitingresponse = True
        previous, self._pumping = self._pumping, threading.get_ident()
        try:
            now = _now()
            # pyghmi's overall limit, but never shorter than the request's own timeout
            give_up = time.monotonic() + max(
                self._getmaxtimeout() * 2, getattr(self, "expiration", now) + 1 - now
            )
            while (
                retry
                and pyghmi_session.unmatched(self.lastresponse, netfn, command)
                and (self.logging or self.logged or self.onlogpayload)
            ):
                if self.logging and time.monotonic() >= self._login_deadline:
                    # the Set Session Privilege Level of the login: oob's deadline holds here too
                    self._abandon_login()
                    return
                self._pump(min(give_up, self._login_deadline if self.logging else math.inf))
                if time.monotonic() > give_up:
                    self._mark_broken()
                    raise IpmiException("Session no longer connected")
                if self._take_due_timer():
                    if not self.lastpayload and not self.logging:
                        return
                    self._timedout()
        finally:
            self._pumping = previous
            self.awaitingresponse = False

    # -- 3. what happened during login ----------------------------------------------------

    def _handle_ipmi_packet(self, data: Any, sockaddr: Any = None, qent: Any = None) -> Any:
        self.oob_heard = True
        return super()._handle_ipmi_packet(data, sockaddr=sockaddr, qent=qent)

    def _got_rakp2(self, data: Any) -> Any:
        if (
            self.sessioncontext in ("EXPECTINGRAKP2", "EXPECTINGRAKP4")
            and len(data) > 1
            and data[0] == self.rmcptag
            and data[1] != 0
        ):
            self.oob_rmcp_status = data[1]
        return super()._got_rakp2(data)

    # -- 1. cipher suite negotiation ------------------------------------------------------

    def _got_rmcp_response(self, data: Any) -> Any:
        if self.sessioncontext == "OPENSESSION" and len(data) > 1 and data[0] == self.rmcptag:
            if data[1] != 0:
                # pyghmi retries once with suite 3; remember the last refusal for the error
                self.oob_rmcp_status = data[1]
            else:
                # a refusal of the suite-17 proposal is history once suite 3 is accepted
                self.oob_rmcp_status = None
            if data[1] == 0 and len(data) >= 36:
                chosen = (data[16] & 0x3F, data[24] & 0x3F)
                suite = _SUITES.get(chosen)
                if suite is None or data[32] & 0x3F != _AES_CBC_128:
                    self.oob_failure = (
                        f"the BMC chose algorithms oob cannot use (authentication {chosen[0]}, "
                        f"integrity {chosen[1]}, confidentiality {data[32] & 0x3F}); "
                        "oob speaks cipher suites 3 and 17"
                    )
                    self.onlogon({"error": self.oob_failure})
                    return -9
                attempted, hashfunc, icv_length, number = suite
                if attempted != self.attemptedhash:
                    # The BMC answered our suite-17 proposal with suite 3 (or the other way
                    # round): follow its choice, as the specification says the client must.
                    log.debug("%s: BMC chose cipher suite %d; following it", self.bmc, number)
                    self.attemptedhash = attempted
                    self.currhashlib = hashfunc
                    self.currhashlen = icv_length
                self.oob_cipher_suite = number
        return super()._got_rmcp_response(data)

    # -- 2. exactly once ------------------------------------------------------------------

    def send_once(self, netfn: int, command: int, data: tuple[int, ...], timeout: float) -> dict[str, Any]:
        """Send one request, never retransmitted; wait up to ``timeout`` s for its answer.

        Returns pyghmi's response dict; ``{"error": "timeout", ...}`` when no answer came.
        :attr:`last_shot` tells whether the request left this machine.
        """
        shot = _SingleShot(netfn, command)
        self._single_shot = shot
        self.last_shot = shot
        try:
            response: dict[str, Any] = self.raw_command(
                netfn=netfn, command=command, data=data, retry=True, timeout=timeout
            )
            return response
        finally:
            self._single_shot = None
            if shot.suppressed:
                log.warning(
                    "%s: pyghmi tried to resend netfn 0x%02x cmd 0x%02x %d time(s); refused",
                    self.bmc,
                    netfn,
                    command,
                    shot.suppressed,
                )

    def send_payload(
        self,
        payload: Any = (),
        payload_type: Any = None,
        retry: bool = True,
        delay_xmit: Any = None,
        needskeepalive: bool = False,
        timeout: Any = None,
    ) -> Any:
        shot = self._single_shot
        outgoing = payload if payload else self.lastpayload
        kind = payload_type if payload_type is not None else getattr(self, "last_payload_type", None)
        if shot is not None and shot.matches(outgoing, kind):
            queued = bool(payload) and bool(self.lastpayload)  # pyghmi queues it behind another
            if not queued:
                if shot.transmitted:
                    # drop the copy; the caller's timeout still runs its course (_timedout)
                    shot.suppressed += 1
                    return None
                if delay_xmit is not None:  # pyghmi would send it later, from its retry timer
                    delay_xmit = None
                shot.transmitted += 1
        outbox: list[_Outgoing] = []
        previous, self._outbox = self._outbox, outbox
        try:
            result = super().send_payload(
                payload=payload,
                payload_type=payload_type,
                retry=retry,
                delay_xmit=delay_xmit,
                needskeepalive=needskeepalive,
                timeout=timeout,
            )
        finally:
            self._outbox = previous
        # 5. pyghmi has let go of its process-wide lock: now on the wire
        for sock, datagram, address in outbox:
            _send_datagram(sock, datagram, address)
        return result

    def _xmit_packet(self, retry: bool = True, delay_xmit: Any = None, timeout: Any = None) -> None:
        """pyghmi's transmission, minus the ``sendto``: the datagram goes to the outbox of
        :meth:`send_payload`, which sends it outside pyghmi's lock (module docstring, 5)."""
        outbox = self._outbox
        if outbox is None or delay_xmit is not None or not self.sockaddr:
            # a delayed send is pyghmi's timer's business; with no address yet (a session's
            # first datagram) pyghmi tries each address getaddrinfo gives and registers them
            super()._xmit_packet(retry, delay_xmit=delay_xmit, timeout=timeout)
            return
        if self.sequencenumber:  # pyghmi's: 0 is special and stays, others count up
            self.sequencenumber += 1
        outbox.append((self.socket, bytes(self.netpacket), self.sockaddr))
        if retry:
            with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):
                self.expiration = (timeout if timeout is not None else self.timeout) + _now()
                pyghmi_session.Session.waiting_sessions[self] = {
                    "ipmisession": self,
                    "timeout": self.expiration,
                }

    def _timedout(self) -> None:
        pumping = self._pumping
        if pumping is not None and pumping != threading.get_ident():
            # pyghmi's shared loop (wait_for_rsp), run by another thread, found this session's
            # timer out: hand it back to the thread waiting on this session, to handle it there
            with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):
                pyghmi_session.Session.waiting_sessions[self] = {"ipmisession": self, "timeout": _now()}
            self._stir()
            return
        try:
            self._handle_timeout()
        finally:
            self._stir()

    def _handle_timeout(self) -> None:
        shot = self._single_shot
        if shot is None or not shot.transmitted or not self.lastpayload:
            if self._login_timeout is not None and self.logging and time.monotonic() < self._login_deadline:
                # Session setup delivers nothing to the host: keep retransmitting and starting
                # over (pyghmi's recovery) until oob's login deadline, not pyghmi's retry count.
                self.logontries = max(self.logontries, 1)
            super()._timedout()
            return
        # No retransmission and no re-login carrying the request: tell the caller.
        shot.timed_out = True
        self.lastpayload = None
        self.onlogpayload = None
        self.ipmicallback(
            {
                "netfn": shot.netfn + 1,
                "command": shot.command,
                "code": 0xFFFF,
                "error": "timeout",
                "data": bytearray(),
            }
        )
