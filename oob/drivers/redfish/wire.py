"""One request on the wire: where it got to, a total deadline, and a bounded body.

**Stages, not messages.**  Whether a failed request may have reached the BMC is
decided by how far it got, recorded by the connection class every request of a
:class:`Wire` uses (set on the adapter's pool manager through
``pool_classes_by_scheme``/``ConnectionCls``):

    NOT_STARTED  nothing done yet                 -> certainly not sent
    CONNECTING   TCP connect (DNS included)       -> certainly not sent (retryable)
    HANDSHAKE    TCP up, TLS handshake under way  -> certainly not sent (TlsError)
    CONNECTED    ready, no request byte written   -> certainly not sent
    SENT         a request byte was handed to the socket -> may have reached the BMC

A failure at SENT of an action is ``OutcomeUnknown`` whatever the exception says; the
text of an exception is never read to decide.  The certificate check (CA, host name,
pinned fingerprint) happens inside ``connect()``, so a wrong certificate is a
HANDSHAKE failure: a ``TlsError``, nothing sent.

**Deadlines.**  ``bmc.timeout`` is a total per request: connect, send, headers and the
whole body.  Socket timeouts alone bound each read, not the sum (a BMC that drips a
byte a second never trips them), so a watchdog timer shuts the connection's socket
down at the deadline; the blocked read then ends and the failure is classified by its
stage like any other.  The body is streamed with the deadline checked per chunk.

**Bounds.**  A body larger than :data:`~oob.drivers.redfish.bodies.MAX_BODY_BYTES` is
refused (Content-Length first, else while reading, never buffering more than the cap).

**One pool manager, one trust.**  Each conversation's :class:`WireSession` is a urllib3
pool manager built for one :class:`TlsPolicy`: the CA file (or no CA check when a
fingerprint is pinned), the pinned fingerprint (urllib3's ``assert_fingerprint`` pool
option), so every connection it opens is checked the same way.  Nothing is read from the
environment (REQUESTS_CA_BUNDLE, proxies, .netrc change nothing), urllib3 follows no
redirect (the transport decides) and retries nothing.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import heapq
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from oob.drivers.redfish.bodies import MAX_BODY_BYTES
from oob.drivers.tls import TlsPolicy
from oob.errors import BmcUnreachable, OobError, OutcomeUnknown, TlsError

#: the longest a TCP connect may take inside a request's deadline
CONNECT_TIMEOUT = 5.0
_CHUNK = 64 * 1024


class Stage(enum.IntEnum):
    NOT_STARTED = 0
    CONNECTING = 1
    HANDSHAKE = 2
    CONNECTED = 3
    SENT = 4


@dataclass(frozen=True)
class ConnectionRecord:
    """One connection a Wire opened and how its certificate was checked (for tests and logs)."""

    scheme: str
    host: str
    port: int
    #: the fingerprint urllib3 asserted after the handshake (None: not pinned)
    pinned: str | None
    #: the CA file the certificate was verified against (None: not verified by CA)
    ca_file: str | None
    #: SHA-256 of the certificate the BMC presented (lower-case hex; None over http)
    certificate: str | None = None


@dataclass
class Attempt:
    """The state of one request attempt, written by the connection it uses."""

    deadline: float
    stage: Stage = Stage.NOT_STARTED
    #: the watchdog fired: the deadline passed and the socket was shut down
    expired: bool = False
    #: ended by :func:`abort_in_flight` (Ctrl-C, SIGTERM), not by its deadline
    aborted: bool = False
    opened: list[ConnectionRecord] = field(default_factory=list)
    _conns: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reach(self, stage: Stage) -> None:
        self.stage = max(self.stage, stage)

    def attach(self, conn: Any) -> None:
        with self._lock:
            if conn not in self._conns:
                self._conns.append(conn)
            expired = self.expired
        if expired:
            conn.shut_down()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            conns = list(self._conns)
        for conn in conns:
            conn.shut_down()

    def abort(self) -> None:
        """End the attempt now (a stop signal's grace ran out); like the deadline, but said."""
        self.aborted = True
        self.expire()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_current: ContextVar[Attempt | None] = ContextVar("oob_redfish_attempt", default=None)


class _Watched:
    """Mixin for urllib3 connections: records the stage into the current Attempt and
    keeps a duplicate of the socket so the watchdog can shut it down from another thread
    (the TLS wrap detaches the original socket object; a dup is ours to close)."""

    _watch_sock: socket.socket | None = None
    _watch_lock: threading.Lock

    def _attempt(self) -> Attempt | None:
        return _current.get()

    def _new_conn(self) -> socket.socket:
        attempt = self._attempt()
        if attempt is not None:
            attempt.reach(Stage.CONNECTING)
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        if not hasattr(self, "_watch_lock"):
            self._watch_lock = threading.Lock()
        with self._watch_lock:
            self._drop_watch()
            try:
                self._watch_sock = sock.dup()
            except OSError:
                self._watch_sock = None
        if attempt is not None:
            attempt.reach(Stage.HANDSHAKE if self._is_tls else Stage.CONNECTED)
            attempt.attach(self)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        attempt = self._attempt()
        if attempt is not None:
            attempt.reach(Stage.CONNECTED)
            attempt.opened.append(self._record())

    def send(self, data: Any) -> None:
        if getattr(self, "sock", None) is None and getattr(self, "auto_open", False):
            # http.client connects lazily inside send(): connect first, so that a refused
            # connection is recorded as CONNECTING and not as SENT
            self.connect()
        attempt = self._attempt()
        if attempt is not None:
            # before the bytes go: a partial sendall counts as sent
            attempt.reach(Stage.SENT)
            attempt.attach(self)
        super().send(data)  # type: ignore[misc]

    def shut_down(self) -> None:
        lock = getattr(self, "_watch_lock", None)
        if lock is None:
            return
        with lock:
            if self._watch_sock is not None:
                try:
                    self._watch_sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _drop_watch(self) -> None:
        if self._watch_sock is not None:
            try:
                self._watch_sock.close()
            finally:
                self._watch_sock = None

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            lock = getattr(self, "_watch_lock", None)
            if lock is not None:
                with lock:
                    self._drop_watch()

    _is_tls = False

    def _record(self) -> ConnectionRecord:
        return ConnectionRecord(
            "https" if self._is_tls else "http",
            str(getattr(self, "host", "")),
            int(getattr(self, "port", 0) or 0),
            getattr(self, "assert_fingerprint", None),
            getattr(self, "_oob_ca_file", None),
            self._certificate(),
        )

    def _certificate(self) -> str | None:
        sock = getattr(self, "sock", None)
        if not self._is_tls or not isinstance(sock, ssl.SSLSocket):
            return None
        try:
            der = sock.getpeercert(binary_form=True)
        except (OSError, ValueError):
            return None
        return hashlib.sha256(der).hexdigest() if der else None


@functools.lru_cache(maxsize=32)
def shared_context(ca_file: str | None, cert_reqs: Any) -> ssl.SSLContext:
    """The SSL context of every connection with this trust (CA file and whether the
    certificate is checked), made and loaded once per process.  urllib3 sets the same
    verify mode and host-name options on it for every connection of that trust, so
    sharing it changes nothing of how a certificate is checked."""
    from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs

    context = create_urllib3_context(cert_reqs=resolve_cert_reqs(cert_reqs))
    if context.verify_mode != ssl.CERT_NONE:
        if ca_file:
            context.load_verify_locations(ca_file)
        else:
            context.load_default_certs()
    return context


@functools.cache
def _pool_classes() -> dict[str, type]:
    """The watched pool classes, made once (urllib3 is imported when the first BMC is reached)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class WatchedHTTPConnection(_Watched, HTTPConnection):
        pass

    class WatchedHTTPSConnection(_Watched, HTTPSConnection):
        _is_tls = True

        def connect(self) -> None:
            self._oob_ca_file = self.ca_certs if self.cert_reqs == "CERT_REQUIRED" else None
            if self.ssl_context is None and not (self.ca_cert_dir or self.ca_cert_data or self.cert_file):
                # one context per trust, loaded once: urllib3 would otherwise make a new one and
                # load the CA file into it for every connection (the system bundle: 25 ms each)
                self.ssl_context = shared_context(self.ca_certs, self.cert_reqs)
                self.ca_certs = None
            super().connect()

    class WatchedHTTPPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    return {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


class WireSession:
    """The HTTP client of one Redfish conversation: urllib3 connection pools whose every
    connection is watched (:class:`_Watched`) and checked by one :class:`TlsPolicy`, the
    headers every request carries, and HTTP Basic credentials when they are used.

    urllib3 directly, not requests above it: requests' per-request work (preparing, merging
    settings, cookies, hooks) was a fifth of the client's CPU at a thousand BMCs, and none of
    it is wanted — oob follows no redirect itself, reads no environment, keeps no cookie."""

    def __init__(self, tls: TlsPolicy) -> None:
        from urllib3 import PoolManager

        trust: dict[str, Any] = (
            {"cert_reqs": "CERT_REQUIRED", "ca_certs": tls.verify}
            if isinstance(tls.verify, str)
            else {"cert_reqs": "CERT_NONE"}
        )
        # one BMC, one origin: a pool or two (http and https) at most
        self._pools = PoolManager(num_pools=2, maxsize=1, retries=False, **trust, **tls.pool_kwargs())
        # a new dict on the instance: the module-level one is shared by everyone
        self._pools.pool_classes_by_scheme = dict(_pool_classes())
        #: sent with every request (the session token among them)
        self.headers: dict[str, str] = {}
        #: HTTP Basic credentials, (user, password); None: none sent
        self.auth: tuple[str, str] | None = None

    def fresh_connections(self) -> None:
        """Close the idle keep-alive connections: the next request opens a new one."""
        self._pools.clear()

    def close(self) -> None:
        self._pools.clear()

    def urlopen(
        self, method: str, url: str, *, body: bytes | None, headers: dict[str, str], timeout: Any
    ) -> Any:
        return self._pools.urlopen(
            method,
            url,
            body=body,
            headers=headers,
            redirect=False,  # the transport decides what to follow, and never with an action
            retries=False,  # nothing is resent here: the transport decides by the stage
            preload_content=False,  # the body is read bounded, against the deadline
            timeout=timeout,
        )


def make_session(tls: TlsPolicy) -> WireSession:
    """The client of one BMC conversation, every connection watched and checked by ``tls``."""
    return WireSession(tls)


@dataclass
class Answer:
    status: int
    headers: Any
    data: bytes | None
    #: why the body could not be read (too large, cut off, deadline): status is still known
    body_error: str | None = None
    #: the body was lost on the wire (cut off, deadline), rather than refused for its size
    body_cut: bool = False


#: every attempt in flight in this process, so that a stop signal can end them
_live: dict[int, Attempt] = {}
_live_lock = threading.Lock()


def abort_in_flight() -> int:
    """End every Redfish request in flight now; returns how many.

    Called when a stop signal's grace has run out: a request that was sent is then
    reported "outcome unknown" (never "not sent"), one that was not is not retried.
    A session login is left to its deadline (a login completed unseen would leave a session
    open on the BMC); requests started afterwards (the logouts) run normally."""
    with _live_lock:
        attempts = list(_live.values())
    for attempt in attempts:
        attempt.abort()
    return len(attempts)


class _Watchdog:
    """One thread that ends every attempt whose deadline passed (a timer thread per request
    cost a thread start per request: thousands for a fleet)."""

    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Attempt]] = []
        self._armed: set[int] = set()
        self._sequence = 0
        self._thread: threading.Thread | None = None
        #: the ticket whose attempt is being ended right now (outside the lock)
        self._firing: int | None = None

    def arm(self, attempt: Attempt) -> int:
        with self._wake:
            self._sequence += 1
            ticket = self._sequence
            heapq.heappush(self._heap, (attempt.deadline, ticket, attempt))
            self._armed.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="oob-redfish-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][1] == ticket:
                self._wake.notify_all()  # the runner, not only a disarm() waiting on a firing
        return ticket

    def disarm(self, ticket: int) -> None:
        """After this, the attempt of ``ticket`` is not being ended and never will be."""
        with self._wake:
            self._armed.discard(ticket)
            while self._firing == ticket:
                self._wake.wait()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed: dropped lazily
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, ticket, attempt = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._armed.discard(ticket)
                self._firing = ticket
            try:
                attempt.expire()  # outside the lock: it shuts sockets down
            finally:
                with self._wake:
                    self._firing = None
                    self._wake.notify_all()


_watchdog = _Watchdog()


@contextmanager
def attempt_with_deadline(timeout: float, *, abortable: bool = True) -> Iterator[Attempt]:
    """An Attempt for the calling thread, ended by the watchdog at the deadline;
    ``abortable``: :func:`abort_in_flight` may end it sooner."""
    attempt = Attempt(deadline=time.monotonic() + max(0.0, timeout))
    token = _current.set(attempt)
    if abortable:
        with _live_lock:
            _live[id(attempt)] = attempt
    ticket = _watchdog.arm(attempt)
    try:
        yield attempt
    finally:
        _watchdog.disarm(ticket)
        with _live_lock:
            _live.pop(id(attempt), None)
        _current.reset(token)


def exchange(
    session: Any,
    method: str,
    url: str,
    *,
    attempt: Attempt,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Send one request and read its answer within the attempt's deadline.

    Transport failures before the status line propagate (to :func:`classify`); a failure
    while reading the body is kept in ``body_error`` with the status.
    """
    remaining = attempt.remaining()
    if remaining <= 0:
        attempt.expired = True
        raise TimeoutError("deadline passed before the request")
    from urllib3 import Timeout
    from urllib3.util import make_headers

    sent = dict(session.headers)
    if headers:
        sent.update(headers)
    if session.auth is not None:
        sent.update(make_headers(basic_auth=f"{session.auth[0]}:{session.auth[1]}"))
    body = None
    if json_body is not None:
        body = json.dumps(json_body, allow_nan=False).encode()
        sent["Content-Type"] = "application/json"
    response = session.urlopen(
        method,
        url,
        body=body,
        headers=sent,
        timeout=Timeout(connect=min(CONNECT_TIMEOUT, remaining), read=remaining),
    )
    whole = False
    try:
        answer = _read_answer(response, attempt)
        whole = answer.body_error is None
        return answer
    finally:
        if not whole:
            response.close()  # a body not read to its end: its connection is not reused
        response.release_conn()


def _read_answer(response: Any, attempt: Attempt) -> Answer:
    status = int(response.status)
    length = response.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > MAX_BODY_BYTES:
        return Answer(
            status, response.headers, None, f"body of {int(length)} bytes is larger than {MAX_BODY_BYTES}"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.stream(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return Answer(status, response.headers, None, f"body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if attempt.remaining() <= 0:
                attempt.expire()
                return Answer(
                    status, response.headers, None, "body not complete by the deadline", body_cut=True
                )
    except Exception as exc:  # noqa: BLE001 - any transport failure: the body is lost, the status is not
        why = (
            "body not complete by the deadline" if attempt.expired else f"body cut off ({type(exc).__name__})"
        )
        return Answer(status, response.headers, None, why, body_cut=True)
    return Answer(status, response.headers, b"".join(chunks))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (urllib3 wraps OSError)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
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


def _detail(chain: list[BaseException]) -> str:
    # the innermost OSError names it best ("[Errno 111] Connection refused"); shown, never judged
    for e in reversed(chain):
        if isinstance(e, OSError) and e.args:
            text = str(e.args[-1]) if len(e.args) > 1 else str(e)
            return text[:200]
    return type(chain[-1]).__name__


def classify(
    exc: BaseException,
    *,
    stage: Stage,
    expired: bool,
    url: str,
    action: bool,
    tls: TlsPolicy | None = None,
    timeout: float | None = None,
) -> OobError:
    """Map a transport failure to oob's tree by the stage the request reached.

    ``action``: the request changes the host (a reset): once a byte of it may have
    left, the outcome is unknown and it must never be sent again.
    """
    from urllib3.exceptions import NameResolutionError, NewConnectionError
    from urllib3.exceptions import SSLError as Urllib3SSLError

    if isinstance(exc, OobError):
        return exc
    chain = _chain(exc)
    late = f"within {timeout:g} s" if timeout is not None else "by the deadline"
    if stage >= Stage.SENT:
        what = (
            f"no complete answer {late}"
            if expired or _is_timeout(chain)
            else f"connection failed ({_detail(chain)})"
        )
        if action:
            return OutcomeUnknown(f"{what} from {url} after the request was sent; it may have been applied")
        return BmcUnreachable(f"{what} from {url}", retryable=False)
    if stage == Stage.HANDSHAKE:
        if expired or _is_timeout(chain):
            # a silent peer already had its whole connect timeout: waiting again would only double it
            return BmcUnreachable(
                f"TLS handshake with {url} did not finish {late}; nothing was sent", retryable=False
            )
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
            reason = next(e for e in chain if isinstance(e, ssl.SSLCertVerificationError)).verify_message
            return TlsError(f"certificate of {url} is not trusted ({reason}); nothing was sent")
        if (
            tls is not None
            and tls.fingerprint
            and any(isinstance(e, Urllib3SSLError) for e in chain)
            and not any(isinstance(e, ssl.SSLError) for e in chain)
        ):
            # urllib3 raises its own SSLError (no ssl.SSLError inside) for a fingerprint mismatch
            return TlsError(
                f"certificate of {url} does not match the pinned fingerprint sha256:{tls.fingerprint}; nothing was sent"
            )
        if any(isinstance(e, (ssl.SSLError, Urllib3SSLError)) for e in chain):
            return TlsError(f"TLS handshake with {url} failed ({_detail(chain)}); nothing was sent")
        return BmcUnreachable(
            f"connection to {url} failed during the TLS handshake ({_detail(chain)}); nothing was sent"
        )
    if stage == Stage.CONNECTING:
        if any(isinstance(e, NameResolutionError) for e in chain):
            return BmcUnreachable(f"cannot resolve the BMC address of {url}; nothing was sent")
        # (urllib3's NewConnectionError is a kind of ConnectTimeoutError: look at it first)
        refused = any(isinstance(e, NewConnectionError) for e in chain) and not any(
            isinstance(e, (TimeoutError, socket.timeout)) for e in chain
        )
        if not refused and (expired or _is_timeout(chain)):
            return BmcUnreachable(f"connection to {url} timed out; nothing was sent", retryable=False)
        return BmcUnreachable(f"cannot connect to {url} ({_detail(chain)}); nothing was sent")
    if stage == Stage.CONNECTED:
        return BmcUnreachable(
            f"connection to {url} failed before the request was written ({_detail(chain)}); nothing was sent"
        )
    # NOT_STARTED: the request could not be built (bad URL, bad header): a bug, not the network
    if expired:
        return BmcUnreachable(f"no time left for {url}; nothing was sent", retryable=False)
    return BmcUnreachable(
        f"request to {url} could not be made ({type(exc).__name__}); nothing was sent", retryable=False
    )


def _is_timeout(chain: list[BaseException]) -> bool:
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    return any(isinstance(e, (TimeoutError, socket.timeout, Urllib3Timeout)) for e in chain)
