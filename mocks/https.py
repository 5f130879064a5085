"""HTTPS transport for the mock BMCs: listeners, one accept loop, a thread per connection.

One :class:`ConnectionHub` per fleet accepts connections for every listener on a single
selector thread (so 600 idle BMCs cost one thread, not 600 polling loops) and serves each
connection on its own daemon thread: the TLS handshake happens there, never in the accept
loop, so one slow client cannot stall the others.  Requests are HTTP/1.1 with keep-alive
and an exact Content-Length, as the ``redfish`` library's requests Session expects.

The application (:class:`mocks.service.RedfishService`) never sees a socket; the
connection-level faults it asks for come back in :attr:`Response.after` and are carried out
here: *hold* (no answer, connection kept until the client gives up or the fleet stops) and
*reset* (TCP RST through ``SO_LINGER`` 0).
"""

from __future__ import annotations

import logging
import select
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from .service import Request, Response

log = logging.getLogger(__name__)

#: seconds a client has to complete the TLS handshake
HANDSHAKE_TIMEOUT = 10.0
#: an idle keep-alive connection is closed after this many seconds, as BMCs do
IDLE_TIMEOUT = 120.0
#: how often a held connection checks whether the client went away
HOLD_POLL = 0.2

App = Callable[[Request], Response]


class ConnectionHub:
    """Accepts connections for many listeners and runs a thread per connection."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # a full buffer already means "wake up": never block the caller on it
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._commands: list[tuple[Callable[[], object], threading.Event]] = []
        self._threads: set[threading.Thread] = set()
        self._loop_done = False
        self.stopping = threading.Event()
        self._loop = threading.Thread(target=self._run, name="mock-bmc-accept", daemon=True)
        self._loop.start()

    # -- called from any thread

    def call(self, command: Callable[[], object]) -> None:
        """Run ``command`` on the accept thread (the only one touching the selector) and wait."""
        done = threading.Event()
        with self._lock:
            direct = self._loop_done or threading.current_thread() is self._loop
            if not direct:
                self._commands.append((command, done))
        if direct:
            command()
            return
        self._wake()
        done.wait()

    def register(self, sock: socket.socket, listener: HttpsListener) -> None:
        self.call(lambda: self._selector.register(sock, selectors.EVENT_READ, listener))

    def unregister(self, sock: socket.socket) -> None:
        self.call(lambda: self._selector.unregister(sock))

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self._wake()
        self._loop.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass

    # -- the accept thread

    def _run(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    self._drain_wake()
                else:
                    self._accept(key.fileobj, key.data)  # type: ignore[arg-type]
            self._run_commands()
        with self._lock:
            # from now on call() runs commands itself: nothing can be queued and lost
            self._loop_done = True
        self._run_commands()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass

    def _run_commands(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        for command, done in commands:
            try:
                command()
            except (KeyError, ValueError, OSError):
                log.debug("selector command failed", exc_info=True)
            finally:
                done.set()

    def _accept(self, sock: socket.socket, listener: HttpsListener) -> None:
        try:
            conn, address = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            log.debug("accept failed on %s", listener.name, exc_info=True)
            return
        thread = threading.Thread(
            target=self._serve, args=(listener, conn, address), name=f"mock-bmc-{listener.name}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _serve(self, listener: HttpsListener, conn: socket.socket, address: tuple[str, int]) -> None:
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)
            try:
                tls = listener.context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                # a client that does not trust the certificate, or that gave up: nothing to serve
                conn.close()
                return
            tls.settimeout(IDLE_TIMEOUT)
            if not listener.track(tls):
                _close(tls)
                return
            try:
                _Handler(tls, address, listener)  # type: ignore[arg-type]  # our listener stands in for the server
            except (OSError, ssl.SSLError):
                pass  # the client went away mid-request
            except Exception:
                log.exception("%s: connection handler failed", listener.name)
            finally:
                listener.untrack(tls)
                _close(tls)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())


class HttpsListener:
    """One BMC's TLS listening socket; can be closed and re-opened on the same port."""

    def __init__(
        self, name: str, bind: str, port: int, context: ssl.SSLContext, app: App, hub: ConnectionHub
    ):
        self.name = name
        self.bind = bind
        self.port = port
        self.context = context
        self.app = app
        self.hub = hub
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._connections: set[socket.socket] = set()

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    @property
    def stopping(self) -> threading.Event:
        return self.hub.stopping

    def open(self) -> None:
        with self._lock:
            if self._sock is not None:
                return
            family = socket.AF_INET6 if ":" in self.bind else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.bind, self.port))
                sock.listen(64)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self.port = sock.getsockname()[1]
            self._sock = sock
        self.hub.register(sock, self)

    def close(self) -> None:
        """Stop listening (connection refused) and drop every open connection."""
        with self._lock:
            sock, self._sock = self._sock, None
            connections = list(self._connections)
        if sock is not None:
            self.hub.unregister(sock)
            sock.close()
        for conn in connections:
            _shutdown(conn)

    def track(self, conn: socket.socket) -> bool:
        with self._lock:
            if self._sock is None:
                return False
            self._connections.add(conn)
            return True

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle and the client's
    # delayed ACK add ~40 ms to every response
    disable_nagle_algorithm = True
    server: HttpsListener  # type: ignore[assignment]

    def _dispatch(self) -> None:
        listener = self.server
        try:
            body = self._read_body()
        except ValueError:  # a Content-Length or chunk size that is not a number
            self.send_error(400, "bad request body framing")
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            client=self.client_address[0],
            authority=self.headers.get("Host") or f"{listener.bind}:{listener.port}",
        )
        response = listener.app(request)
        if response.after == "reset":
            self._reset_connection()
            return
        if response.after == "hold":
            self._hold()
            return
        if response.delay > 0 and listener.stopping.wait(response.delay):
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _hold(self) -> None:
        """Never answer; return when the client closes the connection or the fleet stops."""
        self.close_connection = True
        sock = self.connection
        sock.settimeout(HOLD_POLL)
        while not self.server.stopping.is_set():
            # poll, not select: a descriptor above 1024 is ordinary in a big fleet
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            try:
                readable = poller.poll(HOLD_POLL * 1000)
            except OSError:
                return
            if not readable:
                continue
            try:
                if not sock.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _reset_connection(self) -> None:
        """Close with SO_LINGER 0: the kernel sends a TCP RST instead of a FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()  # the buffered reader holds a reference that would delay the close
        sock.close()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s: %s", self.server.name, format % args)


def _shutdown(conn: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket's: only wake the thread blocked on this socket
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except OSError:
        pass


def _close(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass
