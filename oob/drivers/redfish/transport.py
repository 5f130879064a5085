"""One authenticated conversation with one Redfish service, on urllib3 directly.

oob used python-redfish-library here; it built every URL as ``base_url + path`` from
whatever the BMC said, followed redirects (POST included, carrying the token), retried
any failure of any method, and logged bodies.  Each of those decides where a request
goes or whether it is sent twice, so oob now speaks the little Redfish it needs
(service root, session login and logout, GET, action POST) itself, on one urllib3
pool manager per BMC (:mod:`oob.drivers.redfish.wire`):

* **One origin.**  Every URL is the inventory's scheme, host and port plus a path
  checked by :func:`~oob.drivers.redfish.uris.safe_path`.  The session token and the
  password therefore never go anywhere else, and over plain http only when the
  inventory says ``http://``.
* **Redirects.**  Never followed for POST/DELETE: a 3xx to an action is
  ``OutcomeUnknown`` (it reached the BMC; never re-sent anywhere), a 3xx to the login
  is a ``BmcProtocolError``.  GET follows at most :data:`MAX_REDIRECTS` hops, each
  checked like any BMC URI, only on an https origin.
* **Exactly once.**  Only failures that certainly happened before a byte of the
  request left are retried (:mod:`oob.drivers.retry`), judged by the stage the
  request reached, never by an error's text.  An action POST always opens a fresh
  connection: a keep-alive connection the BMC closed while idle would otherwise make
  the NMI "outcome unknown" although it never left.
* **Deadlines.**  ``bmc.timeout`` is the total for one request (all its GET
  redirects included); the logout DELETE gets at most :data:`LOGOUT_TIMEOUT`.
* **Bounded, checked answers.**  Bodies are capped and depth-checked
  (:mod:`oob.drivers.redfish.bodies`); an unreadable GET answer is a
  ``BmcProtocolError``.  After an action left, an unreadable *reply* never turns it
  into "not sent": a 2xx is sent (the BMC's message unknown), anything else is judged
  by its status.

Sessions are always deleted on the way out, on every path (errors and Ctrl-C
included): BMCs allow few sessions, and iDRAC locks users out when they run out.
No library exception escapes this module.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from oob.drivers.pace import pacer_for
from oob.drivers.redfish.bodies import BodyError, parse_json
from oob.drivers.redfish.messages import extended_info, most_severe_message
from oob.drivers.redfish.uris import Origin, safe_path
from oob.drivers.redfish.wire import (
    Answer,
    ConnectionRecord,
    WireSession,
    attempt_with_deadline,
    classify,
    exchange,
    make_session,
)
from oob.drivers.retry import retry_unsent
from oob.drivers.tls import TlsPolicy
from oob.errors import (
    ActionUnsupported,
    BmcAuthError,
    BmcHttpError,
    BmcProtocolError,
    BmcRefused,
    BmcUnreachable,
    OobError,
    OutcomeUnknown,
)

log = logging.getLogger("oob.redfish")
#: one line per request with -v (method, path, status, time)
requests_log = logging.getLogger("oob.redfish.requests")

SERVICE_ROOT = "/redfish/v1/"
#: the sessions collection at the URI the Redfish specification fixes (DSP0266 1.6.0 on):
#: a first login goes there without reading the service root; elsewhere, the root says
STANDARD_SESSIONS = "/redfish/v1/SessionService/Sessions"
#: the Systems collection at its fixed URI (read first; the root's link when it is not there)
STANDARD_SYSTEMS = "/redfish/v1/Systems"
#: GET redirects followed at most (iLO 5 < 1.40 answers slash-less URIs with one 308)
MAX_REDIRECTS = 3
#: the session DELETE on the way out waits at most this long (Ctrl-C must stay quick)
LOGOUT_TIMEOUT = 5.0
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
#: the only query oob ever sends: paging a collection ($skip, $top, iLO's page), built by oob from numbers
_PAGING_QUERY = re.compile(r"(?:\$skip|\$top|page)=\d{1,9}(?:&\$(?:skip|top)=\d{1,9})?")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]
    #: why the body could not be used (None: read and parsed)
    body_error: str | None = None
    #: the body was lost on the wire (cut off, deadline) rather than refused
    body_cut: bool = False

    @property
    def bmc_message(self) -> str | None:
        return most_severe_message(self.body)


# exported for tests and older callers: the stage-based classifier
classify_transport_error = classify


@dataclass(frozen=True)
class CachedLogin:
    """How to log in without reading the service root (from the discovery cache)."""

    #: the sessions collection; None: HTTP Basic
    uri: str | None


class LoginUriGone(BmcProtocolError):
    """A login URI oob did not read from the service root (the discovery cache's, or the
    specification's) took no login (404/405, or a redirect for the latter): nothing was
    opened; discover afresh."""

    #: what the answer means should the service root name that very URI
    otherwise: OobError | None = None


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
        basic: bool = False,
    ) -> None:
        self.origin = Origin.parse(base_url)
        #: HTTP Basic on every request even where the BMC offers sessions (``bmc.auth``)
        self._basic = basic
        self.base_url = self.origin.base
        self._username = username
        self._password = password
        self._tls = tls
        self._timeout = float(timeout)
        self._connect_attempts = max(1, connect_attempts)
        self._on_retry = on_retry
        self._pacer = pacer_for(self.base_url)
        self._session: WireSession | None = None
        self._token: str | None = None
        self._session_path: str | None = None
        self._root: dict[str, Any] | None = None
        self.auth_method: str | None = None
        #: the login URI used (None with HTTP Basic), for the discovery cache
        self.login_uri: str | None = None
        #: requests sent so far (each attempt of each request), for -v and the benchmark
        self.request_count = 0
        #: every connection this transport opened, with how its certificate was checked
        self.connections: list[ConnectionRecord] = []

    def __repr__(self) -> str:  # never show credentials
        return f"RedfishTransport({self.base_url!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self, *, cached_login: CachedLogin | None = None) -> None:
        """Connect and log in: through the service root, or straight at ``cached_login``
        (what the discovery cache says: the login URI, or HTTP Basic), reading the root only
        when something needs it.  :class:`LoginUriGone` when the cached URI takes no login."""
        self._session = make_session(self._tls)
        # identity: a compressed body could expand past the size cap before it is counted
        self._session.headers.update(
            {"Accept": "application/json", "OData-Version": "4.0", "Accept-Encoding": "identity"}
        )
        if not self._tls.verifies:
            import urllib3

            # oob warns once per host itself; urllib3 would warn on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        try:
            if cached_login is None:
                self._first_login()
            elif cached_login.uri is None:
                # HTTP Basic: the first read checks the credentials (a 401 there is BmcAuthError)
                self.auth_method = "basic"
                self._wire.auth = (self._username, self._password)
            else:
                self.auth_method = "session"
                self._session_login(cached_login.uri, cached=True)
        except BaseException:
            self.close()
            raise

    @property
    def _wire(self) -> WireSession:
        if self._session is None:
            raise OobError("Redfish transport used after close")
        return self._session

    @property
    def root(self) -> dict[str, Any]:
        """The service root, read once when first needed (readable without credentials)."""
        if self._root is None:
            root = self.get(SERVICE_ROOT, field="the service root URI")
            if not isinstance(root.body, dict):
                raise BmcProtocolError(
                    f"the BMC at {self.origin} answered its service root with {_kind(root.body)}, not a JSON object"
                )
            self._root = root.body
        return self._root

    @property
    def certificate(self) -> str | None:
        """SHA-256 of the certificate of the first connection (None: http, or none yet)."""
        return self.connections[0].certificate if self.connections else None

    @property
    def root_if_read(self) -> dict[str, Any] | None:
        """The service root if it was read in this conversation (reading it costs a request)."""
        return self._root

    def _first_login(self) -> None:
        """Log in knowing nothing of the BMC: at the specification's sessions URI, without
        reading the service root first; through the root where that URI takes no login.
        HTTP Basic asked for (``bmc.auth``): nothing to do here, the first read checks the
        credentials."""
        if self._basic:
            self.auth_method = "basic"
            self._wire.auth = (self._username, self._password)
            return
        try:
            self.auth_method = "session"
            self._session_login(STANDARD_SESSIONS, guessed=True)
        except LoginUriGone as gone:
            self.auth_method = None
            self._login(tried=(STANDARD_SESSIONS, gone.otherwise or gone))

    def _login(self, *, tried: tuple[str, OobError] | None = None) -> None:
        """Log in where the service root says; ``tried``: a URI that already took no login
        and what its answer means (credentials are never sent to it twice)."""
        self.root  # noqa: B018 - read first: it names the login URI
        login_uri, login_field = self._login_uri()
        login_path = safe_path(login_uri, self.origin, field=login_field) if login_uri is not None else None
        self.login_uri = login_path
        if self._basic and login_path is not None:
            # HTTP Basic asked for (bmc.auth): the first read (Systems) checks the credentials
            self.auth_method = "basic"
            self._wire.auth = (self._username, self._password)
            return
        if login_path is None:
            # No SessionService at all: HTTP Basic, checked against the Systems collection
            self.auth_method = "basic"
            self._basic_login()
            return
        if tried is not None and login_path == tried[0]:
            raise tried[1]
        self.auth_method = "session"
        self._session_login(login_path)

    def _login_uri(self) -> tuple[Any, str]:
        links = self.root.get("Links")
        if links is not None and not isinstance(links, dict):
            raise BmcProtocolError(
                f"the BMC at {self.origin}: service root Links is {_kind(links)}, not an object"
            )
        sessions = (links or {}).get("Sessions")
        if sessions is not None:
            if not isinstance(sessions, dict) or "@odata.id" not in sessions:
                raise BmcProtocolError(
                    f"the BMC at {self.origin}: service root Links.Sessions is not a link ({_kind(sessions)})"
                )
            return sessions["@odata.id"], "Links.Sessions.@odata.id"
        if "SessionService" in self.root:
            # required by the spec, but old services omit it; 1.6.0 fixed the URI
            return "/redfish/v1/SessionService/Sessions", "the SessionService URI"
        return None, ""

    def _basic_login(self) -> None:
        self._wire.auth = (self._username, self._password)
        systems = self.root.get("Systems")
        uri = systems.get("@odata.id") if isinstance(systems, dict) else "/redfish/v1/Systems"
        reply = self._with_retries(
            lambda: self._get_following(safe_path(uri, self.origin, field="Systems.@odata.id")),
            "login (Basic)",
        )
        if reply.status == 401:
            raise BmcAuthError("the BMC refused the credentials (HTTP 401)", bmc_message=_message_of(reply))

    def _session_login(self, login_path: str, *, cached: bool = False, guessed: bool = False) -> None:
        """Open a session at ``login_path``; ``cached`` (from the discovery cache) or
        ``guessed`` (the specification's URI, the root unread): :class:`LoginUriGone` when
        nothing there takes a login."""
        credentials = {"UserName": self._username, "Password": self._password}
        # not an action, but a login that may have left is never re-sent either: the BMC
        # may have opened a session oob holds no token for
        answer = self._with_retries(
            # never cut short by a stop signal: a login the BMC completed unseen would leave a
            # session nobody logs out (BMCs allow few); it ends by its deadline
            lambda: self._request(
                "POST", login_path, body=credentials, action=False, timeout=self._timeout, abortable=False
            ),
            "login",
        )
        body, _ = _parsed(answer)
        if guessed and (answer.status in (404, 405) or 300 <= answer.status < 400):
            # not there, or elsewhere: the service root names where (a redirect is never followed
            # with credentials)
            gone = LoginUriGone(f"the BMC at {self.origin} takes no login at {login_path}")
            gone.otherwise = self._login_refusal(answer.status, body)
            raise gone
        if 300 <= answer.status < 400 or answer.status == 401:
            raise self._login_refusal(answer.status, body)
        if cached and answer.status in (404, 405):
            raise LoginUriGone(f"the BMC at {self.origin} no longer takes logins at {login_path}")
        if not 200 <= answer.status < 300:
            raise self._login_refusal(answer.status, body)
        token = answer.headers.get("X-Auth-Token")
        location = answer.headers.get("Location")
        body_id = body.get("@odata.id") if isinstance(body, dict) else None
        # remember where the session lives first, so that close() deletes it whatever follows
        location_error: BmcProtocolError | None = None
        if location is not None:
            try:
                self._session_path = safe_path(location, self.origin, field="Location of the new session")
            except BmcProtocolError as exc:
                location_error = exc
        if self._session_path is None and body_id is not None:
            try:
                self._session_path = safe_path(body_id, self.origin, field="@odata.id of the new session")
            except BmcProtocolError as exc:
                location_error = location_error or exc
        if token is None or not _TOKEN.fullmatch(token):
            raise BmcProtocolError(
                f"the BMC at {self.origin} opened a session without a usable X-Auth-Token header"
            )
        self._token = token
        self.login_uri = login_path
        self._wire.headers["X-Auth-Token"] = token
        if location_error is not None:
            raise location_error
        if self._session_path is None:
            raise BmcProtocolError(
                f"the BMC at {self.origin} did not say where the new session is (no Location)"
            )
        if any(
            str(entry.get("MessageId", "")).endswith("PasswordChangeRequired")
            for entry in extended_info(body)
        ):
            raise BmcAuthError("the BMC requires a password change for this account")

    def _login_refusal(self, status: int, body: Any) -> OobError:
        """What a login answered with ``status`` (not 2xx) means."""
        if 300 <= status < 400:
            return BmcProtocolError(
                f"the BMC at {self.origin} answered the login with a redirect (HTTP {status}); "
                "oob sends credentials to nothing but the URI the service root names"
            )
        if status == 401:
            return BmcAuthError(
                "the BMC refused the credentials (HTTP 401)", bmc_message=most_severe_message(body)
            )
        return BmcAuthError(
            f"the BMC would not open a session: HTTP {status}", bmc_message=most_severe_message(body)
        )

    def close(self) -> None:
        """Delete the session, whatever happened before. Never raises an error."""
        if self._session is None:
            return
        try:
            if self._token and self._session_path:
                self._logout()
            elif self._token:
                log.warning(
                    "%s: the session's URI was refused; it is left to expire on the BMC", self.base_url
                )
        finally:
            session, self._session = self._session, None
            self._token = None
            self._session_path = None
            session.close()

    def _logout(self) -> None:
        path = self._session_path or ""
        try:
            answer = self._request("DELETE", path, action=False, timeout=min(self._timeout, LOGOUT_TIMEOUT))
        except OobError as exc:  # the session will expire on the BMC by itself
            log.warning("%s: could not delete session %s: %s", self.base_url, path, exc)
            return
        if not 200 <= answer.status < 300:
            log.warning(
                "%s: the BMC answered the session DELETE %s with HTTP %s", self.base_url, path, answer.status
            )

    # -- requests -------------------------------------------------------------------------

    def get(self, uri: object, *, field: str = "a link", paging: str | None = None) -> Reply:
        """GET a BMC-supplied URI (checked first); a JSON answer or an error.

        ``paging``: a ``$skip``/``$top``/``page`` query oob built itself (nothing else is accepted).
        """
        path = safe_path(uri, self.origin, field=field)
        if paging is not None:
            if not _PAGING_QUERY.fullmatch(paging):
                raise OobError(f"not a paging query: {paging[:60]!r}")
            path = f"{path}?{paging}"
        reply = self._with_retries(lambda: self._get_following(path), f"GET {path}")
        if reply.status == 401:
            raise BmcAuthError(f"the BMC refused access to {path} (HTTP 401)", bmc_message=reply.bmc_message)
        if reply.status >= 400:
            raise BmcHttpError(
                f"the BMC answered GET {path} with HTTP {reply.status}",
                bmc_message=reply.bmc_message,
                status=reply.status,
            )
        if reply.body_error is not None and reply.body_cut:
            raise BmcUnreachable(
                f"the answer to GET {path} from {self.origin} was lost: {reply.body_error}", retryable=False
            )
        if reply.body_error is not None:
            raise BmcProtocolError(
                f"the BMC at {self.origin} answered GET {path} with a body oob will not read: {reply.body_error}"
            )
        return reply

    def _get_following(self, path: str) -> Reply:
        deadline = time.monotonic() + self._timeout
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._request("GET", path, action=False, timeout=deadline - time.monotonic())
            if not 300 <= answer.status < 400:
                body, error = _parsed(answer)
                return Reply(answer.status, body, answer.headers, error, answer.body_cut)
            if self.origin.scheme != "https":
                raise BmcProtocolError(
                    f"the BMC at {self.origin} redirected GET {path}; oob follows redirects over https only"
                )
            location = answer.headers.get("Location")
            if location is None:
                raise BmcProtocolError(
                    f"the BMC at {self.origin} answered GET {path} with HTTP {answer.status} and no Location"
                )
            path = safe_path(location, self.origin, field=f"Location of the redirect from {path}")
        raise BmcProtocolError(
            f"the BMC at {self.origin} redirected GET more than {MAX_REDIRECTS} times (last: {path})"
        )

    def post_action(self, uri: object, body: dict[str, Any], *, field: str = "the action target") -> Reply:
        """POST an action exactly once; retried only if it certainly never left."""
        path = safe_path(uri, self.origin, field=field)  # before anything is sent

        def attempt() -> Answer:
            self._fresh_connection()
            return self._request("POST", path, body=body, action=True, timeout=self._timeout)

        answer = self._with_retries(attempt, f"POST {path}")
        parsed, error = _parsed(answer)
        reply = Reply(answer.status, parsed, answer.headers, error)
        if 200 <= reply.status < 300:
            # sent; an unreadable reply only means the BMC's words are unknown
            return reply
        message = reply.bmc_message
        if 300 <= reply.status < 400:
            raise OutcomeUnknown(
                f"the BMC answered {body} at {path} with a redirect (HTTP {reply.status}); oob never follows "
                "a redirect with an action, and it may or may not have been applied",
                bmc_message=message,
            )
        if reply.status == 401:
            raise BmcAuthError("the BMC refused the action (HTTP 401)", bmc_message=message)
        if reply.status in (400, 403, 404, 405, 409, 412, 501):
            error_class = ActionUnsupported if reply.status in (405, 501) else BmcRefused
            raise error_class(
                f"the BMC refused {body} at {path} with HTTP {reply.status}", bmc_message=message
            )
        # 5xx and anything odd: the BMC may have started the action before failing
        raise OutcomeUnknown(
            f"the BMC answered {body} with HTTP {reply.status}; it may or may not have been applied",
            bmc_message=message,
        )

    def _fresh_connection(self) -> None:
        """Close idle keep-alive connections, so that an action goes out on a new one."""
        if self._session is not None:
            self._session.fresh_connections()

    def _request(
        self,
        method: str,
        path: str,
        *,
        action: bool,
        timeout: float,
        body: Any = None,
        abortable: bool = True,
    ) -> Answer:
        """One attempt of one request to a checked path, within ``timeout`` seconds in all."""
        session = self._wire
        url = self.origin.url(path)
        self._pacer.wait()
        self.request_count += 1
        started = time.monotonic()
        with attempt_with_deadline(timeout, abortable=abortable) as attempt:
            try:
                answer = exchange(session, method, url, attempt=attempt, json_body=body)
                # -v: what was asked of the BMC; the checked path only (never a header or a body)
                requests_log.debug(
                    "%s %s %s -> HTTP %d in %.0f ms",
                    self.origin,
                    method,
                    path,
                    answer.status,
                    (time.monotonic() - started) * 1000,
                )
                return answer
            except Exception as exc:  # noqa: BLE001 - every transport failure is classified by its stage
                requests_log.debug(
                    "%s %s %s -> failed (%s) in %.0f ms",
                    self.origin,
                    method,
                    path,
                    attempt.stage.name.lower(),
                    (time.monotonic() - started) * 1000,
                )
                error = classify(
                    exc,
                    stage=attempt.stage,
                    expired=attempt.expired,
                    url=url,
                    action=action,
                    tls=self._tls,
                    timeout=self._timeout,
                )
                if attempt.aborted:
                    raise _interrupted(error) from None
                raise error from None
            finally:
                self.connections.extend(attempt.opened)

    def _with_retries(self, attempt: Callable[[], _T], what: str) -> _T:
        return retry_unsent(
            attempt, what=what, attempts=self._connect_attempts, on_retry=self._on_retry, log=log
        )


def _interrupted(error: OobError) -> OobError:
    """The same finding (the stage decides: sent or not), told as an interruption and
    never retried."""
    if isinstance(error, OutcomeUnknown):
        return OutcomeUnknown(
            "interrupted while waiting for the BMC's answer; the request was sent and may have been applied",
            host=error.host,
        )
    return BmcUnreachable(
        "interrupted before the BMC answered; no action was sent", host=error.host, retryable=False
    )


def _parsed(answer: Answer) -> tuple[Any, str | None]:
    """The JSON body of an answer and, when it cannot be used, why (body None then)."""
    if answer.body_error is not None:
        return None, answer.body_error
    try:
        return parse_json(answer.data or b""), None
    except BodyError as exc:
        return None, str(exc)


def _message_of(reply: Reply) -> str | None:
    return reply.bmc_message


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )
