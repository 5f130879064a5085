"""Cipher suites: pyghmi 1.6.19's trap, and oob's client on both kinds of BMC."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pyghmi
import pytest

from mocks.ipmi_server import IpmiBmc
from oob.drivers.ipmi.session import OobSession
from tests.ipmi.conftest import PASSWORD, USER, ipmitool


def test_stock_pyghmi_client_crashes_on_a_suite_3_answer(add_bmc: Callable[..., IpmiBmc]) -> None:
    """The trap oob's session works around, reproduced by the ``always3`` mock.

    Run in a child process: the half-open session the crash leaves behind must not haunt
    pyghmi's process-wide state in this one.
    """
    if getattr(pyghmi, "__version__", None) not in (None, "1.6.19") and not str(
        getattr(pyghmi, "__version__", "")
    ).startswith("1.6.19"):
        pytest.skip("the crash reproduced here is pyghmi 1.6.19's")
    bmc = add_bmc("always3")
    script = textwrap.dedent(
        f"""
        import os
        from pyghmi.ipmi import command
        command.Command({bmc.address!r}, {USER!r}, os.environ["PW"], port={bmc.port})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PW": PASSWORD},
        check=False,
    )
    assert proc.returncode != 0
    assert "struct.error" in proc.stderr and "pack expected 32 items" in proc.stderr


def test_ipmitool_proposing_suite_17_to_a_strict_bmc_is_told_no_match(
    add_bmc: Callable[..., IpmiBmc],
) -> None:
    bmc = add_bmc("strict")
    proc = ipmitool(bmc, "chassis", "power", "status", extra=("-C", "17"))
    assert proc.returncode != 0
    assert "no matching cipher suite" in proc.stderr
    assert bmc.cipher_refusals == 1


# -- the negotiation step itself, on synthetic Open Session Responses ------------------------


def _open_session_response(
    tag: int, localsid: int, auth: int, integrity: int, confidentiality: int
) -> bytearray:
    return (
        bytearray([tag, 0, 4, 0])
        + localsid.to_bytes(4, "little")
        + bytes([0x11, 0x22, 0x33, 0x44])
        + bytes([0, 0, 0, 8, auth, 0, 0, 0])
        + bytes([1, 0, 0, 8, integrity, 0, 0, 0])
        + bytes([2, 0, 0, 8, confidentiality, 0, 0, 0])
    )


@pytest.fixture
def proposing_17(monkeypatch: pytest.MonkeyPatch) -> tuple[OobSession, list[Any]]:
    """A session in pyghmi's state right after sending a suite-17 Open Session Request."""
    session: OobSession = object.__new__(OobSession)
    session.oob_heard = True
    session.oob_rmcp_status = None
    session.oob_failure = None
    session.oob_cipher_suite = None
    session.bmc = "192.0.2.1"
    session.sessioncontext = "OPENSESSION"
    session.rmcptag = 7
    session.localsid = 2017673556
    session.attemptedhash = 256
    session.currhashlib = hashlib.sha256
    session.currhashlen = 16
    calls: list[Any] = []
    monkeypatch.setattr(session, "_send_rakp1", lambda: calls.append("rakp1"), raising=False)
    monkeypatch.setattr(session, "onlogon", lambda parameter: calls.append(parameter), raising=False)
    return session, calls


def test_a_suite_3_answer_to_a_suite_17_proposal_switches_to_sha1(
    proposing_17: tuple[OobSession, list[Any]],
) -> None:
    session, calls = proposing_17
    session._got_rmcp_response(_open_session_response(7, session.localsid, 1, 1, 1))
    assert (session.attemptedhash, session.currhashlib, session.currhashlen) == (1, hashlib.sha1, 12)
    assert session.oob_cipher_suite == 3 and calls == ["rakp1"]


def test_a_suite_17_answer_keeps_sha256(proposing_17: tuple[OobSession, list[Any]]) -> None:
    session, calls = proposing_17
    session._got_rmcp_response(_open_session_response(7, session.localsid, 3, 4, 1))
    assert (session.attemptedhash, session.currhashlib, session.currhashlen) == (256, hashlib.sha256, 16)
    assert session.oob_cipher_suite == 17 and calls == ["rakp1"]


@pytest.mark.parametrize(
    ("auth", "integrity", "confidentiality"), [(0, 0, 0), (2, 2, 1), (1, 1, 0), (1, 4, 1)]
)
def test_algorithms_oob_cannot_use_fail_clearly(
    proposing_17: tuple[OobSession, list[Any]], auth: int, integrity: int, confidentiality: int
) -> None:
    session, calls = proposing_17
    session._got_rmcp_response(_open_session_response(7, session.localsid, auth, integrity, confidentiality))
    assert calls and calls[0] == {"error": session.oob_failure}
    assert session.oob_failure is not None and "oob speaks cipher suites 3 and 17" in session.oob_failure
