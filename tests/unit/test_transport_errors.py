"""Real loopback sockets decide whether a request certainly did not leave."""

import socket
import threading

import pytest
import requests

from oob.drivers.redfish.transport import classify_transport_error
from oob.errors import BmcUnreachable, OutcomeUnknown


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _error(url: str, timeout: tuple[float, float] = (1.0, 0.5)) -> BaseException:
    session = requests.Session()
    session.trust_env = False
    try:
        session.post(url, json={"ResetType": "Nmi"}, timeout=timeout)
    except requests.RequestException as exc:
        return exc
    raise AssertionError("request unexpectedly succeeded")


def test_connection_refused_is_retryable_not_sent() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/redfish/v1/"
    error = classify_transport_error(_error(url), url=url, action=True)
    assert isinstance(error, BmcUnreachable)
    assert error.retryable
    assert "cannot connect" in error.message


def test_read_timeout_after_sending_an_action_is_outcome_unknown() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/reset"
        error = classify_transport_error(_error(url), url=url, action=True)
        assert isinstance(error, OutcomeUnknown)
        assert error.exit_code == 6
        read_error = classify_transport_error(_error(url), url=url, action=False)
        assert isinstance(read_error, BmcUnreachable) and not read_error.retryable


def test_reset_after_the_request_is_outcome_unknown() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def accept_read_and_reset() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    thread = threading.Thread(target=accept_read_and_reset)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/reset"
    try:
        error = classify_transport_error(_error(url, timeout=(1.0, 5.0)), url=url, action=True)
    finally:
        thread.join()
        server.close()
    assert isinstance(error, OutcomeUnknown)


@pytest.mark.parametrize("action", [True, False])
def test_unresolvable_name_is_not_sent(action: bool) -> None:
    # built by hand: a real lookup would send a DNS query off this machine
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    url = "https://bmc.example.invalid/redfish/v1/"
    reason = NameResolutionError("bmc.example.invalid", None, socket.gaierror(-2, "Name or service not known"))  # type: ignore[arg-type]
    exc = requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]
    error = classify_transport_error(exc, url=url, action=action)
    assert isinstance(error, BmcUnreachable)
    assert error.retryable
    assert "resolve" in error.message
