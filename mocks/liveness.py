"""The simulated hosts' SSH ports, as oob's hung-host probe sees them.

Each host gets a TCP listener on its own loopback address.  While the host is
``running`` a connection gets an OpenSSH-like banner at once, as sshd sends it; in every
other state (hung, panicked, dumping, rebooting, off) the connection is accepted and then
nothing is ever sent.  That is what a hung machine looks like from the network — the
kernel still completes the handshake, user space never answers — so oob's banner probe
times out rather than being refused.

One :class:`LivenessServer` thread serves every listener of a fleet with a selector and
non-blocking sockets: a silent connection costs a file descriptor, never a thread.
Connections are closed when the client closes them, after :data:`HOLD_SECONDS` (sshd's
LoginGraceTime is 120 s), or when the fleet stops.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from .host import SimulatedHost

log = logging.getLogger(__name__)

BANNER = b"SSH-2.0-OpenSSH_9.6 oob-mock\r\n"
#: a connection is closed after this many seconds whatever the client does
HOLD_SECONDS = 60.0
#: at most this many connections held per host; the oldest is closed to make room
MAX_HELD = 128
THREAD_NAME = "mock-host-liveness"


@dataclass
class _Listener:
    host: SimulatedHost
    sock: socket.socket
    held: list[socket.socket] = field(default_factory=list)


@dataclass
class _Connection:
    listener: _Listener
    deadline: float


class LivenessServer:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # a full buffer already means "wake up": never block the caller on it
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending: list[_Listener] = []
        self._connections: dict[socket.socket, _Connection] = {}
        self._listeners: list[_Listener] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def add(self, host: SimulatedHost, address: str, port: int = 0) -> int:
        """Listen for ``host`` on ``address`` (``port`` 0: any free one); returns the port."""
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                raise RuntimeError("the liveness server is stopped")
            self._pending.append(_Listener(host, sock))
        self._wake()
        return int(sock.getsockname()[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Close every listener and connection and end the thread.  Idempotent."""
        self._stopping.set()
        self._wake()
        self._thread.join(timeout)
        with self._lock:
            pending, self._pending = self._pending, []
        for listener in [*self._listeners, *pending]:
            _close(listener.sock)
        for conn in list(self._connections):
            _close(conn)
        self._connections.clear()
        self._listeners.clear()
        self._selector.close()
        _close(self._wake_r)
        _close(self._wake_w)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass

    # -- the server thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._register_pending()
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    _drain(self._wake_r)
                elif isinstance(key.data, _Listener):
                    self._accept(key.data)
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]
            self._expire(time.monotonic())

    def _register_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for listener in pending:
            self._selector.register(listener.sock, selectors.EVENT_READ, listener)
            self._listeners.append(listener)

    def _accept(self, listener: _Listener) -> None:
        try:
            conn, _ = listener.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            log.debug("%s: accept failed", listener.host.name, exc_info=True)
            return
        conn.setblocking(False)
        if listener.host.answers_probe:
            try:
                conn.send(BANNER)  # a few bytes into an empty send buffer: never blocks
            except OSError:
                _close(conn)
                return
        if len(listener.held) >= MAX_HELD:
            self._drop(listener.held[0])
        listener.held.append(conn)
        self._connections[conn] = _Connection(listener, time.monotonic() + HOLD_SECONDS)
        self._selector.register(conn, selectors.EVENT_READ, self._connections[conn])

    def _read(self, conn: socket.socket) -> None:
        # whatever the client says (its own banner) goes unanswered; only its close matters
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)

    def _expire(self, now: float) -> None:
        for conn, entry in list(self._connections.items()):
            if entry.deadline <= now:
                self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        entry = self._connections.pop(conn, None)
        if entry is None:
            return
        entry.listener.held.remove(conn)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        _close(conn)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
