"""One authenticated conversation with one Redfish service.

Built on python-redfish-library, with its two hazards defused:

* ``_rest_request`` retries *any* failure of *any* method up to ``max_retry`` times
  (default 10), so a POST that reached the BMC and then timed out would be sent again.
  oob creates the client with ``max_retry=0`` and decides retries itself: only failures
  that certainly happened before the request left (connection refused, DNS, connect
  timeout, TLS handshake) are retried, with tenacity, a few times.
* TLS verification is off unless a ``cafile`` is given: oob always gives one, or pins
  the certificate (see :mod:`oob.drivers.tls`).

Sessions are always deleted on the way out, on every path (errors and Ctrl-C
included): BMCs allow few sessions, and iDRAC locks users out when they run out.
No library exception escapes this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from oob.drivers.pace import pacer_for
from oob.drivers.redfish.messages import most_severe_message
from oob.drivers.retry import retry_unsent
from oob.drivers.tls import TlsPolicy
from oob.errors import (
    BmcAuthError,
    BmcRefused,
    BmcUnreachable,
    NmiUnsupported,
    OobError,
    OutcomeUnknown,
    TlsError,
)

log = logging.getLogger("oob.redfish")

SERVICE_ROOT = "/redfish/v1/"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def bmc_message(self) -> str | None:
        return most_severe_message(self.body)


def _reason_chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (requests wraps urllib3 wraps OSError)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                todo.append(arg)
    return seen


def classify_transport_error(exc: BaseException, *, url: str, action: bool) -> OobError:
    """Map a requests/urllib3 failure to oob's tree, deciding whether the request left.

    ``action`` says whether the request changes the host (a reset): if it may have
    reached the BMC, the outcome is unknown and it must never be resent.
    """
    import requests
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    chain = _reason_chain(exc)
    text = "; ".join(str(e) for e in chain[:1])
    if isinstance(exc, requests.exceptions.SSLError):
        lowered = " ".join(str(e) for e in chain).lower()
        if "fingerprint" in lowered:
            return TlsError(f"certificate of {url} does not match the pinned fingerprint; nothing was sent")
        if any(word in lowered for word in ("certificate", "handshake", "wrong version", "hostname")):
            return TlsError(f"TLS handshake with {url} failed, nothing was sent: {_short(chain)}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return BmcUnreachable(f"connection to {url} timed out; nothing was sent")
    if any(isinstance(e, NameResolutionError) for e in chain):
        return BmcUnreachable(f"cannot resolve the BMC address of {url}")
    if any(isinstance(e, NewConnectionError) for e in chain):
        return BmcUnreachable(f"cannot connect to {url}: {_short(chain)}")
    if isinstance(exc, requests.exceptions.InvalidURL):
        return BmcUnreachable(f"invalid BMC address {url}", retryable=False)
    # The connection was up: the request (or part of it) may have reached the BMC.
    what = "no answer" if isinstance(exc, requests.exceptions.ReadTimeout) else f"connection failed ({text})"
    if action:
        return OutcomeUnknown(f"{what} from {url} after the request was sent; it may have been applied")
    return BmcUnreachable(f"{what} from {url}", retryable=False)


def _short(chain: list[BaseException]) -> str:
    # the innermost OSError says it best ("[Errno 111] Connection refused")
    for e in reversed(chain):
        if isinstance(e, OSError) and e.args:
            return str(e.args[-1]) if len(e.args) > 1 else str(e)
    return str(chain[-1])


class RedfishTransport:
    """Login, requests with oob's retry policy, guaranteed logout."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        tls: TlsPolicy,
        *,
        timeout: float = 15.0,
        connect_attempts: int = 3,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._tls = tls
        self._timeout = timeout
        self._connect_attempts = max(1, connect_attempts)
        self._on_retry = on_retry
        self._client: Any = None
        self.root: dict[str, Any] = {}
        self.auth_method: str | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"RedfishTransport({self.base_url!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        from redfish.rest.v1 import HttpClient

        # (connect, read): a slow connect is "not sent"; a slow read is "outcome unknown"
        timeout = (min(5.0, self._timeout), self._timeout)
        self._client = HttpClient(
            self.base_url,
            username=self._username,
            password=self._password,
            cafile=self._tls.cafile,
            timeout=timeout,
            max_retry=0,
            check_connectivity=False,
            https_adapter=self._tls.https_adapter(),
        )
        # Environment (REQUESTS_CA_BUNDLE, proxies, .netrc) must not change whom we trust
        # or where an NMI goes.
        self._client._session.trust_env = False
        # every request of the library (login and logout included) keeps this BMC's pace
        pacer = pacer_for(self.base_url)
        send = self._client._session.request

        def paced_request(*args: Any, **kwargs: Any) -> Any:
            pacer.wait()
            return send(*args, **kwargs)

        self._client._session.request = paced_request
        if not self._tls.verifies:
            import urllib3

            # oob warns once per host itself; urllib3 would warn on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        try:
            self._login()
        except BaseException:
            self.close()
            raise

    def _login(self) -> None:
        from redfish.rest.v1 import (
            InvalidCredentialsError,
            RetriesExhaustedError,
            RisObject,
            SessionCreationError,
        )

        root = self.get(SERVICE_ROOT)  # readable without credentials
        self.root = root.body if isinstance(root.body, dict) else {}
        client = self._client
        client.root = RisObject.parse(self.root)
        client.root_resp = object()  # the library only checks that it is set
        sessions = (self.root.get("Links") or {}).get("Sessions") or {}
        login_url = sessions.get("@odata.id") if isinstance(sessions, dict) else None
        if login_url is None and "SessionService" in self.root:
            # required by the spec, but old services omit it; 1.6.0 fixed the URI
            login_url = "/redfish/v1/SessionService/Sessions"
        if login_url is None:
            # No SessionService at all: HTTP Basic, checked against the Systems collection
            self.auth_method = "basic"
            client.login_url = _odata_id(self.root.get("Systems")) or "/redfish/v1/Systems"
        else:
            self.auth_method = "session"
            client.login_url = login_url
        try:
            self._with_retries(lambda: self._call_login(), "login")
        except InvalidCredentialsError as exc:
            raise BmcAuthError("the BMC refused the credentials (HTTP 401)") from exc
        except SessionCreationError as exc:
            status, _, detail = str(exc).partition("\n")
            raise BmcAuthError(
                f"the BMC would not open a session: {status.strip()}", bmc_message=detail.strip() or None
            ) from exc
        except RetriesExhaustedError as exc:  # pragma: no cover - mapped in _call_login
            raise classify_transport_error(exc.__cause__ or exc, url=self.base_url, action=False) from exc

    def _call_login(self) -> None:
        from redfish.rest.v1 import RetriesExhaustedError

        try:
            self._client.login(auth=self.auth_method)
        except RetriesExhaustedError as exc:
            raise classify_transport_error(exc.__cause__ or exc, url=self.base_url, action=False) from None
        except OobError:
            raise
        except (KeyError, AttributeError, ValueError, TypeError) as exc:
            raise BmcAuthError(f"the BMC answered the login with something oob cannot read ({exc})") from None
        except Exception as exc:
            if type(exc).__module__.startswith("redfish"):
                if "PasswordChange" in type(exc).__name__:
                    raise BmcAuthError("the BMC requires a password change for this account") from None
                raise
            raise classify_transport_error(exc, url=self.base_url, action=False) from None

    def close(self) -> None:
        """Delete the session, whatever happened before. Never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.get_session_key():
                location = client.get_session_location()
                try:
                    client.logout()
                except Exception as exc:  # the session will expire on the BMC by itself
                    log.warning("%s: could not delete session %s: %s", self.base_url, location, exc)
        finally:
            client._session.close()

    # -- requests -------------------------------------------------------------------------

    def get(self, uri: str) -> Reply:
        reply = self._with_retries(lambda: self._send("GET", uri, None, None, action=False), f"GET {uri}")
        if reply.status == 401:
            raise BmcAuthError(f"the BMC refused access to {uri} (HTTP 401)", bmc_message=reply.bmc_message)
        if reply.status >= 400:
            raise BmcUnreachable(
                f"the BMC answered GET {uri} with HTTP {reply.status}",
                retryable=False,
                bmc_message=reply.bmc_message,
            )
        return reply

    def post_action(self, uri: str, body: dict[str, Any]) -> Reply:
        """POST an action exactly once; retried only if it certainly never left."""
        reply = self._with_retries(lambda: self._send("POST", uri, body, None, action=True), f"POST {uri}")
        if reply.status in (200, 201, 202, 204):
            return reply
        message = reply.bmc_message
        if reply.status == 401:
            raise BmcAuthError("the BMC refused the action (HTTP 401)", bmc_message=message)
        if reply.status in (400, 403, 404, 405, 409, 412, 501):
            error_class = NmiUnsupported if reply.status in (405, 501) else BmcRefused
            raise error_class(
                f"the BMC refused {body} at {uri} with HTTP {reply.status}", bmc_message=message
            )
        # 5xx and anything odd: the BMC may have started the action before failing
        raise OutcomeUnknown(
            f"the BMC answered {body} with HTTP {reply.status}; it may or may not have been applied",
            bmc_message=message,
        )

    def _send(
        self, method: str, uri: str, body: dict[str, Any] | None, headers: dict[str, str] | None, *, action: bool
    ) -> Reply:
        from redfish.rest.v1 import RetriesExhaustedError

        client = self._client
        if client is None:
            raise OobError("Redfish transport used after close")
        try:
            if method == "GET":
                response = client.get(uri, headers=headers, max_retry=0)
            else:
                response = client.post(uri, body=body, headers=headers, max_retry=0)
        except RetriesExhaustedError as exc:
            raise classify_transport_error(exc.__cause__ or exc, url=self.base_url + uri, action=action) from None
        return Reply(status=response.status, body=_json_body(response), headers=dict(response.getheaders()))

    def _with_retries(self, attempt: Callable[[], _T], what: str) -> _T:
        return retry_unsent(attempt, what=what, attempts=self._connect_attempts, on_retry=self._on_retry, log=log)


def _json_body(response: Any) -> Any:
    text = response.text
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _odata_id(link: Any) -> str | None:
    if isinstance(link, dict) and isinstance(link.get("@odata.id"), str):
        return str(link["@odata.id"])
    return None
