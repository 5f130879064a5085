"""Whether a request may have reached the BMC is decided by the stage it reached, on real
loopback sockets, never by an exception's text."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from oob.drivers.redfish.wire import Stage, attempt_with_deadline, classify, exchange, make_session
from oob.drivers.tls import TlsPolicy
from oob.errors import BmcUnreachable, OobError, OutcomeUnknown, TlsError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _outcome(
    url: str, *, action: bool, tls: TlsPolicy | None = None, timeout: float = 1.0
) -> tuple[OobError, Stage]:
    policy = tls or TlsPolicy("insecure")
    session = make_session(policy)
    try:
        with attempt_with_deadline(timeout) as attempt:
            try:
                exchange(session, "POST", url, attempt=attempt, json_body={"ResetType": "Nmi"})
            except Exception as exc:  # noqa: BLE001
                error = classify(
                    exc, stage=attempt.stage, expired=attempt.expired, url=url, action=action, tls=policy
                )
                return error, attempt.stage
    finally:
        session.close()
    raise AssertionError("request unexpectedly succeeded")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    yield server
    server.close()


def _serve_once(server: socket.socket, then: str, context: ssl.SSLContext | None = None) -> threading.Thread:
    """Accept one connection, read the request, then reset / stay silent / send garbage."""

    def run() -> None:
        conn, _ = server.accept()
        sock = conn
        try:
            sock = context.wrap_socket(conn, server_side=True) if context else conn
            sock.recv(65536)
            if then == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
            elif then == "garbage":  # bytes that are no TLS record, straight onto TCP
                conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" * 4)
                threading.Event().wait(0.5)
            elif then == "silence":
                threading.Event().wait(2.5)
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_connection_refused_is_retryable_not_sent() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/redfish/v1/"
    error, stage = _outcome(url, action=True)
    assert stage is Stage.CONNECTING
    assert isinstance(error, BmcUnreachable) and error.retryable
    assert "cannot connect" in error.message


@pytest.mark.parametrize("action", [True, False])
def test_silence_after_sending_is_outcome_unknown_for_an_action(
    action: bool, listener: socket.socket
) -> None:
    thread = _serve_once(listener, "silence")
    error, stage = _outcome(f"http://127.0.0.1:{listener.getsockname()[1]}/reset", action=action)
    thread.join()
    assert stage is Stage.SENT
    if action:
        assert isinstance(error, OutcomeUnknown) and error.exit_code == 6
    else:
        assert isinstance(error, BmcUnreachable) and not error.retryable


def test_reset_after_the_request_is_outcome_unknown(listener: socket.socket) -> None:
    thread = _serve_once(listener, "reset")
    error, stage = _outcome(f"http://127.0.0.1:{listener.getsockname()[1]}/reset", action=True, timeout=5)
    thread.join()
    assert stage is Stage.SENT
    assert isinstance(error, OutcomeUnknown)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    import trustme

    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@pytest.mark.parametrize("then", ["garbage", "reset"])
def test_tls_failure_while_reading_the_reply_is_outcome_unknown_not_a_handshake_error(
    then: str, listener: socket.socket, tls_material: tuple[ssl.SSLContext, Path]
) -> None:
    """The bug: an SSL error *after* the request was written was read as "handshake
    failed, nothing sent" (and the reset then went out again over IPMI)."""
    context, ca_file = tls_material
    thread = _serve_once(listener, then, context)
    error, stage = _outcome(
        f"https://127.0.0.1:{listener.getsockname()[1]}/reset",
        action=True,
        tls=TlsPolicy("ca_file", cafile=str(ca_file)),
    )
    thread.join()
    assert stage is Stage.SENT
    assert type(error) is OutcomeUnknown


def test_untrusted_certificate_fails_in_the_handshake_and_nothing_is_sent(
    listener: socket.socket, tls_material: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    import trustme

    context, _ = tls_material
    other_ca = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    received: list[bytes] = []

    def run() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls_sock:
                received.append(tls_sock.recv(100))
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    error, stage = _outcome(
        f"https://127.0.0.1:{listener.getsockname()[1]}/reset",
        action=True,
        tls=TlsPolicy("ca_file", cafile=str(other_ca)),
    )
    thread.join()
    assert stage is Stage.HANDSHAKE
    assert isinstance(error, TlsError) and not error.retryable
    assert "not trusted" in error.message
    assert received == []


def test_the_same_exception_is_judged_by_its_stage_not_its_words() -> None:
    """An exception that *says* "certificate verify failed" is outcome-unknown once the
    request was written, and a plain reset is "not sent" before the connection is up."""
    url = "https://127.0.0.1:1/reset"
    words = requests.exceptions.SSLError("certificate verify failed: handshake failure")
    assert isinstance(classify(words, stage=Stage.SENT, expired=False, url=url, action=True), OutcomeUnknown)
    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    for stage in (Stage.CONNECTING, Stage.HANDSHAKE, Stage.CONNECTED):
        assert isinstance(classify(reset, stage=stage, expired=False, url=url, action=True), BmcUnreachable)
    assert isinstance(classify(reset, stage=Stage.SENT, expired=False, url=url, action=True), OutcomeUnknown)


@pytest.mark.parametrize("action", [True, False])
def test_unresolvable_name_is_not_sent(action: bool) -> None:
    # built by hand: a real lookup would send a DNS query off this machine
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    url = "https://bmc.example.invalid/redfish/v1/"
    reason = NameResolutionError(
        "bmc.example.invalid", None, socket.gaierror(-2, "Name or service not known")
    )  # type: ignore[arg-type]
    exc = requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]
    error = classify(exc, stage=Stage.CONNECTING, expired=False, url=url, action=action)
    assert isinstance(error, BmcUnreachable)
    assert error.retryable
    assert "resolve" in error.message
