"""The hung-host probe against real loopback listeners."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from oob.model import Host
from oob.probe import probe_host


@contextmanager
def listener(banner: bytes | None) -> Iterator[int]:
    """Accepts connections; sends ``banner`` (or nothing) and keeps them open."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            if banner:
                conn.sendall(banner)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ssh_banner_means_alive() -> None:
    with listener(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") as port:
        result = probe_host(Host("web01", address="127.0.0.1", probe=f"ssh:{port}"), timeout=1)
    assert result.alive is True
    assert "OpenSSH_9.2p1" in result.detail


def test_handshake_without_banner_looks_hung() -> None:
    with listener(None) as port:
        result = probe_host(Host("web01", address="127.0.0.1", probe=f"ssh:{port}"), timeout=0.3)
        assert result.alive is False
        assert "did not answer" in result.detail
        # a plain tcp probe is satisfied by the connection alone
        assert probe_host(Host("web01", address="127.0.0.1", probe=f"tcp:{port}"), timeout=0.3).alive is True


def test_refused_and_explicit_address() -> None:
    port = _closed_port()
    result = probe_host(Host("web01", address="192.0.2.1", probe=f"ssh:127.0.0.1:{port}"), timeout=0.3)
    assert result.alive is False
    assert result.target == f"ssh:127.0.0.1:{port}"


def test_no_address_cannot_be_probed() -> None:
    result = probe_host(Host("web01"), timeout=0.3)
    assert result.alive is None


def test_an_unresolvable_name_is_never_taken_for_a_hung_host() -> None:
    from oob.model import Host
    from oob.probe import probe_host

    result = probe_host(Host(name="web01", address="web01.invalid", probe="ssh:web01.invalid:22"), timeout=2)
    assert result.alive is None and "cannot resolve" in result.detail


def test_the_default_probe_looks_where_ssh_would(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    from oob.model import Host
    from oob.probe import probe_host

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        config = tmp_path / "ssh_config"
        config.write_text(
            f"Host web01-alias\n    HostName 127.0.0.1\n    Port {port}\n"
            "Host behind\n    HostName 127.0.0.9\n    ProxyJump jump.example\n"
        )
        monkeypatch.setenv("OOB_SSH_CONFIG", str(config))
        seen = probe_host(Host(name="web01", address="web01-alias"), timeout=0.5)
        assert seen.target == f"ssh:127.0.0.1:{port}"
        jumped = probe_host(Host(name="db", address="behind"), timeout=0.5)
        assert jumped.alive is None and "jump host" in jumped.detail
