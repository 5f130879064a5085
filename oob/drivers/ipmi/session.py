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

4. **Waiting without losing wake-ups, and within oob's deadline.**  pyghmi's one I/O
   thread reads every datagram of the process, queues it on its session (``pktqueue``)
   and wakes only the threads that were *already* registered as waiting for that BMC
   (``_io_wait``).  ``Session.awaitresponse`` sends, then registers: when the answer is
   read in between, which with many sessions in parallel threads happens often enough,
   nobody is woken and the thread sleeps with the answer in its queue until its timer
   runs out (a read's 0.5-1.5 s retransmission timer, a login's, or the whole
   ``timeout`` of :meth:`OobSession.send_once`).  pyghmi's shared ``wait_for_rsp`` loop
   also lets any waiting thread handle any session's datagrams and timers.  An
   :class:`OobSession` instead waits on its own condition variable, notified when the
   I/O thread queues a datagram for it (:class:`_Inbox`), and is served by its own
   thread only: it handles its own datagrams and its own retransmission timer
   (:meth:`OobSession._pump`), during login (:meth:`OobSession._await_login`) and for
   every request (:meth:`OobSession.awaitresponse`).  Session setup runs until
   ``login_timeout`` seconds have passed, retransmitting as pyghmi does (setup
   messages deliver nothing to the host), not until pyghmi's own retry count runs out.
   Nothing runs pyghmi's shared loop for these sessions, so neither does its idle
   keepalive (a Get Device ID after 25-29 s idle): oob holds a session for one step of
   a runbook, seconds, and closes it.

Everything else (framing, RAKP, integrity, AES, sequence numbers) is pyghmi's.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import socket
import threading
import time
from collections.abc import Iterable
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


def _now() -> float:
    """pyghmi's clock (``os.times()``, 10 ms steps), in which its timers are set."""
    return float(pyghmi_util._monotonic_time())


class _Inbox(collections.deque):  # type: ignore[type-arg]
    """A session's queue of received datagrams (pyghmi's ``pktqueue``) that wakes its thread.

    pyghmi's I/O thread appends each datagram for the session here; the append notifies
    the session's condition under its lock, so the session's thread, which checks the
    queue under the same lock before it sleeps, cannot miss it.
    """

    def __init__(self, arrived: threading.Condition, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self._arrived = arrived

    def append(self, item: Any) -> None:
        with self._arrived:
            super().append(item)
            self._arrived.notify_all()


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
        # What pyghmi's __new__ also does: stay off the local sockets that already carry a
        # session with this BMC, since replies are routed by (BMC address, local port).
        self.forbidsock = []
        try:
            addresses = socket.getaddrinfo(bmc, port, 0, socket.SOCK_DGRAM)
        except OSError:
            addresses = []  # pyghmi reports the unresolvable address when it first sends
        for family, _type, _proto, _name, address in addresses:
            key: tuple[Any, ...] = tuple(address)
            if pyghmi_session.ipv6support and family == socket.AF_INET:
                key = (f"::ffff:{address[0]}", address[1], 0, 0)
            for other in list(cls.bmc_handlers.get(key, {}).values()):
                self.forbidsock.append(other.socket)
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
        #: the last request made through send_once, armed or not (transmitted, suppressed...)
        self.last_shot: _SingleShot | None = None
        # 4. this session's own wake-ups: a datagram queued for it, or another thread acting on it
        self._wake = threading.Condition()
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

    # -- 4. waiting: each session served by its own thread -------------------------------

    @property
    def pktqueue(self) -> _Inbox:
        return self._inbox

    @pktqueue.setter
    def pktqueue(self, items: Iterable[Any]) -> None:  # pyghmi's __init__ assigns a deque
        self._inbox = _Inbox(self._wake, items)

    @classmethod
    def _assignsocket(cls, server: Any = None, forbiddensockets: Any = ()) -> Any:
        # pyghmi's I/O thread select()s on the sockets it had when it last went to sleep
        # (for up to 300 s), and pyghmi's own waits poke it awake; an OobSession waits on its
        # condition instead.  A session that needs a new socket (a second session with the
        # same BMC: the serial console and the NMI) would never hear its answers: poke it.
        before = len(pyghmi_session.iosockets)
        sock = super()._assignsocket(server, forbiddensockets)
        if len(pyghmi_session.iosockets) > before and before and pyghmi_session.iothreadready:
            first = pyghmi_session.iosockets[0]
            pyghmi_session._io_sendto(first, b"\x01", (pyghmi_session.myself, first.getsockname()[1]))
        return sock

    def _logon_done(self, _result: Any) -> None:
        self._stir()  # _await_login reads the outcome from the session's state

    def _stir(self) -> None:
        """Wake this session's thread: something happened to the session."""
        with self._wake:
            self._stirred = True
            self._wake.notify_all()

    def process_pktqueue(self) -> None:
        if not self.pktqueue:
            return
        try:
            super().process_pktqueue()
        finally:
            self._stir()

    def _retransmit_at(self) -> float:
        """When this session's retransmission (or timeout) timer runs out; inf if not set."""
        with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):
            entry = pyghmi_session.Session.waiting_sessions.get(self)
            return float(entry["timeout"]) if entry and "timeout" in entry else math.inf

    def _take_due_timer(self) -> bool:
        """True (and the timer removed) when this session's timer has run out."""
        with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):
            entry = pyghmi_session.Session.waiting_sessions.get(self)
            if not entry or entry.get("timeout", math.inf) > _now():
                return False
            pyghmi_session.Session.waiting_sessions.pop(self, None)
            return True

    def _pump(self, until: float) -> None:
        """Handle the datagrams that have arrived; when there were none, sleep until one
        arrives, another thread acts on this session, its timer runs out or ``until``
        (``time.monotonic()``)."""
        with self._wake:
            self._stirred = False
        self.process_pktqueue()
        # read before taking _wake: pyghmi holds its WAITING_SESSIONS lock when it calls
        # _timedout, which takes _wake; a timer changed by another thread stirs this one
        timer_at = self._retransmit_at()
        with self._wake:
            while not self._stirred and not self.pktqueue:
                remaining = min(until - time.monotonic(), timer_at - _now())
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
        self.process_pktqueue()

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
        return super().send_payload(
            payload=payload,
            payload_type=payload_type,
            retry=retry,
            delay_xmit=delay_xmit,
            needskeepalive=needskeepalive,
            timeout=timeout,
        )

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


class _SharedQueue(collections.deque):  # type: ignore[type-arg]
    """pyghmi's process-wide ``sessionqueue``, without oob's sessions.

    pyghmi's I/O thread lists here every session it queued a datagram for, so that any
    thread in pyghmi's ``wait_for_rsp`` handles it.  An :class:`OobSession` is handled by
    its own thread only (its :class:`_Inbox` wakes it), so it is left out: no other
    thread touches its state, and the list does not grow with entries nobody takes.
    """

    def append(self, session: Any) -> None:
        if not isinstance(session, OobSession):
            super().append(session)


if not isinstance(pyghmi_session.sessionqueue, _SharedQueue):
    pyghmi_session.sessionqueue = _SharedQueue(pyghmi_session.sessionqueue)
