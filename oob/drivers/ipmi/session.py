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

Everything else (framing, RAKP, integrity, AES, sequence numbers) is pyghmi's.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from dataclasses import dataclass
from typing import Any, Self

from pyghmi.ipmi.private import constants
from pyghmi.ipmi.private import session as pyghmi_session

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.oob_heard = False
        self.oob_rmcp_status: int | None = None
        self.oob_failure: str | None = None
        #: cipher suite in use once logged in (3 or 17)
        self.oob_cipher_suite: int | None = None
        self._single_shot: _SingleShot | None = None
        #: the last request made through send_once, armed or not (transmitted, suppressed...)
        self.last_shot: _SingleShot | None = None
        super().__init__(*args, **kwargs)

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
        shot = self._single_shot
        if shot is None or not shot.transmitted or not self.lastpayload:
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
