"""A hostile Redfish BMC for tests: a small threaded TLS server with a script of answers.

It serves a minimal, valid Redfish tree (service root, SessionService, one system with
``#ComputerSystem.Reset`` offering ``Nmi``) and lets each test replace any answer with
something an attacker would send: links off the origin, redirects, resets after the
request arrived, garbage instead of TLS records, bodies dripped a byte a second, huge
or deeply nested bodies.  Raw sockets, so it has byte-level control over what it sends.

Everything that arrives is recorded: each connection (:attr:`HostileServer.connections`)
and each request (method, path, headers, body, raw bytes: :attr:`HostileServer.requests`).
A second instance on another loopback address serves as a *bystander*: anything it
records went somewhere oob must never send anything.

Usage (see ``tests/hostile/conftest.py`` for the fixtures)::

    bmc = hostile_bmc(Behaviour(answers={("POST", RESET): Answer(307, location=...)}))
    ... drive oob against bmc.url ...
    assert bmc.count("POST", RESET) == 1

Reused by later drivers' tests: the :class:`Behaviour` fields are the knobs.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROOT = "/redfish/v1/"
SESSIONS = "/redfish/v1/SessionService/Sessions"
SESSION_1 = "/redfish/v1/SessionService/Sessions/1"
SYSTEMS = "/redfish/v1/Systems"
SYSTEM = "/redfish/v1/Systems/1"
RESET = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
TOKEN = "hostile-token-0123456789abcdef"

#: what the server does instead of answering a request (``Answer.abort``)
ABORTS = ("reset", "close", "garbage", "silence")


@dataclass
class Answer:
    """One scripted answer.

    ``body``: bytes sent as they are, or any JSON value (serialised).  ``headers`` are
    added to Content-Type/Content-Length (``length=False`` drops Content-Length and ends
    the body by closing the connection; ``length`` an int lies about it).
    ``location`` sets a Location header.  ``drip`` (seconds per byte) sends the whole
    answer, status line included, one byte at a time (``drip_head=False``: the head at
    once, the body dripped).  ``body_size`` streams that many
    bytes of ``b"["`` chunks instead of ``body`` (a huge body without holding it).
    ``abort`` does something other than answering, after the request was read:
    ``reset`` (TCP RST), ``close`` (close without a word), ``garbage`` (non-TLS bytes on
    the TLS socket), ``silence`` (keep the connection open, say nothing).
    ``times``: use this answer this many times, then fall back to the default (None:
    always).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    drip: float | None = None
    drip_head: bool = True
    body_size: int | None = None
    length: bool | int = True
    abort: str | None = None
    times: int | None = None


def elsewhere_than_the_standard_login() -> dict[tuple[str, str], Answer]:
    """Answers of a BMC whose sessions are not at the specification's URI: oob's first login
    there is answered 404, so oob reads the service root to find where they are."""
    return {("POST", SESSIONS): Answer(404)}


def default_root(sessions_uri: Any = SESSIONS) -> dict[str, Any]:
    return {
        "@odata.id": ROOT,
        "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
        "Id": "RootService",
        "Name": "Hostile Root Service",
        "RedfishVersion": "1.6.0",
        "Systems": {"@odata.id": SYSTEMS},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
        "Links": {"Sessions": {"@odata.id": sessions_uri}},
    }


def default_system(target: Any = RESET) -> dict[str, Any]:
    return {
        "@odata.id": SYSTEM,
        "Id": "1",
        "Name": "Hostile system",
        "PowerState": "On",
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": target,
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart", "Nmi"],
            }
        },
    }


@dataclass
class Behaviour:
    """How the hostile BMC behaves.  Defaults: a small, valid Redfish service.

    ``sessions_uri``, ``session_location``, ``system_member`` and ``reset_target`` are
    the URIs it hands out (Links.Sessions, the new session's Location, the Systems
    member's @odata.id, the Reset action's target): set them to anything to try to
    move oob off the origin.  ``answers`` overrides any (method, path) with a scripted
    :class:`Answer`; ``answer_all`` answers every request not in ``answers`` (for a
    bystander, or a service root that is not an object).  ``certificate`` picks the
    certificate (by name, see :class:`HostileServer`) for each new connection.
    """

    sessions_uri: Any = SESSIONS
    session_location: str | None = SESSION_1
    system_member: Any = SYSTEM
    reset_target: Any = RESET
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    answer_all: Answer | None = None
    certificate: str = "main"


@dataclass
class Request:
    connection: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HostileServer:
    """A threaded TLS (or plain, ``tls=False``) HTTP/1.1 server on one loopback address."""

    def __init__(
        self,
        behaviour: Behaviour,
        *,
        address: str = "127.0.0.1",
        contexts: dict[str, ssl.SSLContext] | None = None,
        tls: bool = True,
    ) -> None:
        if not address.startswith("127."):
            raise ValueError("hostile servers listen on loopback only")
        self.behaviour = behaviour
        self.address = address
        self.tls = tls
        self._contexts = contexts or {}
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((address, 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._used: dict[tuple[str, str], int] = {}
        #: every request that arrived, in order
        self.requests: list[Request] = []
        #: every connection accepted (count), and all bytes received on each (after TLS)
        self.connections = 0
        self.raw: list[bytearray] = []
        #: bytes as they crossed the network, for plain-http servers (a TLS server's
        #: ciphertext is not kept: ``raw`` holds what it decrypted)
        self.wire: list[bytearray] = []
        self.sessions_open = 0
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    # -- what tests look at ------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.address}:{self.port}"

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            )

    def received(self) -> bytes:
        """Every byte that arrived, decrypted, all connections together."""
        with self._lock:
            return b"".join(bytes(r) for r in self.raw)

    def seen_on_the_wire(self) -> bytes:
        """Every byte that arrived as a network observer would see it (before TLS)."""
        with self._lock:
            return b"".join(bytes(r) for r in self.wire)

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() at once
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
        self._accept_thread.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)

    # -- serving -----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        try:
            self._listener.settimeout(0.2)
        except OSError:  # stopped before this thread ran
            return
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self.raw.append(bytearray())
                self.wire.append(bytearray())
                self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw_sock: socket.socket, index: int) -> None:
        raw_sock.settimeout(30)
        sock: Any = raw_sock if self.tls else _Recording(raw_sock, self.wire[index])
        try:
            if self.tls:
                context = self._contexts[self.behaviour.certificate]
                sock = context.wrap_socket(raw_sock, server_side=True)
                with self._lock:
                    self._sockets.append(sock)
            buffer = b""
            while not self._stop.is_set():
                request, buffer = self._read_request(sock, buffer, index)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                if not self._answer(sock, raw_sock, request):
                    return
        except (OSError, ssl.SSLError, ValueError):
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _read_request(self, sock: Any, buffer: bytes, index: int) -> tuple[Request | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                return None, b""
            self.raw[index].extend(data)
            buffer += data
            if len(buffer) > 1 << 20:
                raise ValueError("request head too large")
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                return None, b""
            self.raw[index].extend(data)
            rest += data
        body, remaining = rest[:length], rest[length:]
        return Request(index, method, path, headers, body), remaining

    def _script(self, request: Request) -> Answer:
        key = (request.method, request.path)
        with self._lock:
            answer = self.behaviour.answers.get(key)
            if answer is not None and answer.times is not None:
                used = self._used.get(key, 0)
                if used >= answer.times:
                    answer = None
                else:
                    self._used[key] = used + 1
        if answer is not None:
            return answer
        if self.behaviour.answer_all is not None:
            return self.behaviour.answer_all
        return self._default(request)

    def _default(self, request: Request) -> Answer:
        b = self.behaviour
        if request.method == "GET" and request.path in (ROOT, ROOT.rstrip("/")):
            return Answer(body=default_root(b.sessions_uri))
        if request.method == "POST" and request.path == SESSIONS:
            with self._lock:
                self.sessions_open += 1
            headers = {"X-Auth-Token": TOKEN}
            return Answer(
                201, body={"@odata.id": SESSION_1, "Id": "1"}, headers=headers, location=b.session_location
            )
        if request.method == "DELETE" and request.path == SESSION_1:
            with self._lock:
                self.sessions_open -= 1
            return Answer(204)
        authorised = request.headers.get("x-auth-token") == TOKEN
        if not authorised:
            return Answer(401, body={"error": {"message": "no valid session"}})
        if request.method == "GET" and request.path == SYSTEMS:
            return Answer(
                body={
                    "@odata.id": SYSTEMS,
                    "Members": [{"@odata.id": b.system_member}],
                    "Members@odata.count": 1,
                }
            )
        if request.method == "GET" and request.path == SYSTEM:
            return Answer(body=default_system(b.reset_target))
        if request.method == "POST" and request.path == RESET:
            return Answer(204)
        return Answer(404, body={"error": {"message": f"no {request.path}"}})

    def _answer(self, sock: Any, raw_sock: socket.socket, request: Request) -> bool:
        """Send the scripted answer; False when the connection is done."""
        answer = self._script(request)
        if answer.abort is not None:
            return self._abort(sock, raw_sock, answer.abort)
        if isinstance(answer.body, bytes):
            body = answer.body
        elif answer.body is None:
            body = b""
        else:
            body = json.dumps(answer.body).encode()
        size = answer.body_size if answer.body_size is not None else len(body)
        head = [f"HTTP/1.1 {answer.status} Hostile", "Content-Type: application/json"]
        if answer.length is True:
            head.append(f"Content-Length: {size}")
        elif answer.length is not False:
            head.append(f"Content-Length: {int(answer.length)}")
        if answer.location is not None:
            head.append(f"Location: {answer.location}")
        head += [f"{k}: {v}" for k, v in answer.headers.items()]
        if answer.length is False:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if answer.drip is not None:
            if not answer.drip_head:
                sock.sendall(data)
                data = b""
            for byte in data + body:
                if self._stop.is_set():
                    return False
                sock.sendall(bytes([byte]))
                time.sleep(answer.drip)
            return answer.length is not False
        sock.sendall(data)
        if answer.body_size is not None:
            chunk = b"[" * 65536
            sent = 0
            while sent < answer.body_size and not self._stop.is_set():
                part = chunk[: min(len(chunk), answer.body_size - sent)]
                sock.sendall(part)
                sent += len(part)
        else:
            sock.sendall(body)
        return answer.length is not False

    def _abort(self, sock: Any, raw_sock: socket.socket, how: str) -> bool:
        if how == "reset":
            raw_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            raw_sock.close()
            try:
                sock.close()
            except OSError:
                pass
        elif how == "garbage":
            # bytes that are not a TLS record, straight onto the TCP stream
            import os

            os.write(sock.fileno(), b"HTTP/1.1 200 OK but not inside TLS\r\n\r\n")
            time.sleep(0.2)
        elif how == "silence":
            self._stop.wait(60)
        return False


class _Recording:
    """A plain socket that records what it receives (for ``tls=False`` servers)."""

    def __init__(self, sock: socket.socket, record: bytearray) -> None:
        self._sock = sock
        self._record = record

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        self._record.extend(data)
        return data

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()


ServerFactory = Callable[..., HostileServer]
