"""One authenticated IPMI session, with every pyghmi failure translated into oob's errors.

This is the driver boundary for IPMI: nothing pyghmi raises leaves this module.

* Session setup that never heard back from the BMC  -> ``BmcUnreachable`` (retryable:
  nothing can have been delivered; retried up to ``connect_attempts`` times).  Each
  attempt lasts at most ``timeout`` seconds (``bmc.timeout``), pyghmi's retransmissions
  of the setup messages included, so a silent BMC fails in about ``timeout`` times the
  attempts (plus 0.5 s, 1 s... between them).
* The BMC refused the user, the password, the role or every cipher suite -> ``BmcAuthError``
  or ``BmcUnreachable(retryable=False)``, as soon as the BMC says so.
* Reads (status, device ID) use pyghmi's own retransmission: reading twice is harmless.
* Actions go through :meth:`IpmiClient.send_once`: one datagram, no retransmission; no
  answer within ``timeout`` seconds -> ``OutcomeUnknown``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oob.drivers.ipmi.codes import (
    RMCP_NO_COMMON_CIPHER,
    RMCP_NO_SESSION_SLOT,
    RMCP_USER_REFUSED,
    rmcp_status_name,
)
from oob.drivers.ipmi.session import OobSession
from oob.drivers.retry import retry_unsent
from oob.errors import BmcAuthError, BmcUnreachable, NotDelivered, OobError, OutcomeUnknown

log = logging.getLogger(__name__)

#: pyghmi's internal marker for "no response" in a response dict
NO_RESPONSE = 0xFFFF


#: a LAN BMC answers session setup in milliseconds; a silent one should not cost the
#: full request timeout per attempt (a fallback from Redfish waits on it)
LOGIN_TIMEOUT_CAP = 5.0


@dataclass(frozen=True)
class Reply:
    """A response: the completion code and the data after it."""

    code: int
    data: bytes


def classify_login_failure(session: OobSession, message: str, *, where: str, username: str) -> NotDelivered:
    """What a failed pyghmi login means, from what the session saw on the wire."""
    if not getattr(session, "oob_heard", False):
        expired = getattr(session, "oob_login_expired", None)
        within = f" within {expired:g} s" if expired is not None else ""
        return BmcUnreachable(
            f"no answer from {where} to IPMI session setup{within} (UDP; is IPMI over LAN enabled?)",
            retryable=True,
        )
    failure = getattr(session, "oob_failure", None)
    if failure:
        return BmcUnreachable(failure, retryable=False)
    status = getattr(session, "oob_rmcp_status", None)
    if status is not None:
        said = rmcp_status_name(status)
        if status == 0x0D:
            return BmcAuthError(f"the BMC does not accept the IPMI user name '{username}'", bmc_message=said)
        if status in RMCP_USER_REFUSED:
            return BmcAuthError(f"the BMC refused the IPMI user '{username}' or its role", bmc_message=said)
        if status in RMCP_NO_SESSION_SLOT:
            return BmcAuthError("the BMC has no free IPMI session (too many open sessions)", bmc_message=said)
        if status in RMCP_NO_COMMON_CIPHER:
            return BmcUnreachable(
                "the BMC and oob have no IPMI cipher suite in common (oob speaks suites 17 and 3)",
                retryable=False,
                bmc_message=said,
            )
        return BmcAuthError("the BMC refused to open an IPMI session", bmc_message=said)
    if "Incorrect password" in message:
        return BmcAuthError(f"the BMC refused the password of IPMI user '{username}'")
    if "privelege level" in message or "privilege level" in message:  # pyghmi's spelling
        return BmcAuthError(
            f"IPMI user '{username}' may not have operator or administrator privilege", bmc_message=message
        )
    stage = getattr(session, "sessioncontext", None)
    if stage == "EXPECTINGRAKP2":
        # Stock pyghmi servers (VirtualBMC) and some BMCs stay silent for an unknown user.
        return BmcAuthError(
            f"the BMC stopped answering once the user name was sent (RAKP 1); "
            f"it probably does not know IPMI user '{username}'"
        )
    return BmcUnreachable(
        f"the BMC stopped answering during IPMI session setup ({stage or 'before the session'}: {message})",
        retryable=False,
    )


def _discard(session: OobSession) -> None:
    """Make pyghmi forget a half-open session (else its next login would wait on it)."""
    try:
        session._mark_broken("abandoned by oob")
    except Exception as exc:  # noqa: BLE001 - best effort on a session that is already broken
        log.debug("discarding an IPMI session: %s", exc)


class IpmiClient:
    """Login, reads with retries, actions exactly once, guaranteed logout."""

    def __init__(
        self,
        address: str,
        port: int,
        username: str,
        password: str,
        *,
        timeout: float = 15.0,
        connect_attempts: int = 3,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.username = username
        self._password = password
        self.timeout = timeout
        self._connect_attempts = max(1, connect_attempts)
        self._on_retry = on_retry
        self._session: OobSession | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"IpmiClient({self.where!r})"

    @property
    def where(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def cipher_suite(self) -> int | None:
        return getattr(self._session, "oob_cipher_suite", None)

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        self._session = retry_unsent(
            self._login, what="IPMI login", attempts=self._connect_attempts, on_retry=self._on_retry, log=log
        )

    def _login(self) -> OobSession:
        from pyghmi.exceptions import IpmiException

        args: dict[str, Any] = {
            "bmc": self.address,
            "userid": self.username,
            "password": self._password,
            "port": self.port,
        }
        try:
            # __new__ and __init__ apart: a failed __init__ must leave us the session to ask
            # what it saw on the wire (pyghmi raises from its constructor)
            session: OobSession = OobSession.__new__(OobSession, **args)
        except OSError as exc:  # getaddrinfo
            raise BmcUnreachable(
                f"cannot resolve the BMC address {self.address}: {exc}", retryable=True
            ) from None
        try:
            session.__init__(**args, login_timeout=min(self.timeout, LOGIN_TIMEOUT_CAP))  # type: ignore[misc]
        except IpmiException as exc:
            message = str(exc.args[0]) if exc.args and exc.args[0] else "no answer"
            _discard(session)
            if "Unable to transmit" in message:
                raise BmcUnreachable(f"cannot send to {self.where}: {message}", retryable=True) from None
            raise classify_login_failure(session, message, where=self.where, username=self.username) from None
        except (OSError, socket.gaierror) as exc:
            _discard(session)
            raise BmcUnreachable(f"cannot send to {self.where}: {exc}", retryable=True) from None
        except Exception as exc:  # noqa: BLE001 - the driver boundary: nothing of pyghmi's escapes
            # a pyghmi bug on an unusual BMC answer; still nothing was sent but the login
            _discard(session)
            raise BmcUnreachable(
                f"IPMI session setup with {self.where} failed inside pyghmi ({type(exc).__name__}: {exc})",
                retryable=False,
            ) from None
        return session

    def close(self) -> None:
        """Close the session on the BMC (Close Session, sent once). Never raises."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if not session.broken:
                session.logout()
        except Exception as exc:  # noqa: BLE001 - the BMC expires idle sessions by itself
            log.warning("%s: could not close the IPMI session: %s", self.where, exc)
            _discard(session)

    def _require(self) -> OobSession:
        if self._session is None:
            raise OobError("IPMI client used before open() or after close()")
        return self._session

    # -- requests -------------------------------------------------------------------------

    def read(self, netfn: int, command: int, data: tuple[int, ...] = (), *, what: str) -> Reply:
        """A request that may safely be repeated: pyghmi retransmits it as it likes."""
        session = self._require()
        try:
            response = session.raw_command(netfn=netfn, command=command, data=data)
        except Exception as exc:  # noqa: BLE001 - the driver boundary: nothing of pyghmi's escapes
            raise BmcUnreachable(f"{what}: the BMC stopped answering ({exc})", retryable=False) from None
        code = response.get("code", NO_RESPONSE) if isinstance(response, dict) else NO_RESPONSE
        if code == NO_RESPONSE:
            raise BmcUnreachable(f"{what}: no answer from the BMC", retryable=False)
        return Reply(code=int(code), data=bytes(response.get("data") or b""))

    def send_once(self, netfn: int, command: int, data: tuple[int, ...], *, what: str) -> Reply:
        """An action: one datagram on the wire, never a second; no answer -> OutcomeUnknown."""
        session = self._require()
        try:
            response = session.send_once(netfn, command, data, self.timeout)
        except Exception as exc:  # noqa: BLE001 - sent or not decides the class, not the exception
            shot = getattr(session, "last_shot", None)
            if shot is not None and shot.transmitted:
                raise OutcomeUnknown(
                    f"{what} was sent to {self.where} but the IPMI session failed before an answer "
                    f"({exc}); it may have been applied and is not sent again"
                ) from None
            raise BmcUnreachable(
                f"{what} was not sent: the IPMI session with {self.where} is no longer usable ({exc})",
                retryable=False,
            ) from None
        code = response.get("code", NO_RESPONSE) if isinstance(response, dict) else NO_RESPONSE
        if code == NO_RESPONSE:
            raise OutcomeUnknown(
                f"{what} was sent to {self.where} and no answer came within {self.timeout:g} s; "
                "it may have been applied and is not sent again"
            )
        return Reply(code=int(code), data=bytes(response.get("data") or b""))
